"""order version, task heartbeat and question, orders in progress

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("heartbeat_ms", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("asks_question", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # Until now only manual-confirmation tasks asked a question.
    op.execute("UPDATE tasks SET asks_question = true WHERE handler_key = 'manual-confirmation'")
    op.create_index(
        "ix_orders_in_progress",
        "orders",
        ["id"],
        unique=False,
        sqlite_where=sa.text("status = 'IN_PROGRESS'"),
        postgresql_where=sa.text("status = 'IN_PROGRESS'"),
    )


def downgrade() -> None:
    op.drop_index("ix_orders_in_progress", table_name="orders")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("asks_question")
        batch_op.drop_column("heartbeat_ms")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("version")
