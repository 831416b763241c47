"""operators steer orders: pause flag, cancel reason, restarts, held due times

Revision ID: 0006
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ordermill.storage.tables import Json, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("paused_by", sa.String(200), nullable=True))
        batch_op.add_column(sa.Column("paused_reason", sa.String(2000), nullable=True))
        batch_op.add_column(sa.Column("cancel_reason", sa.String(2000), nullable=True))
        batch_op.add_column(sa.Column("restarts", Json, nullable=True))
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_due_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("held_due_at")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        for column in ("restarts", "cancel_reason", "paused_reason", "paused_by", "paused_at"):
            batch_op.drop_column(column)
