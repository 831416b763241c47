"""initial schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import ordermill.storage.tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "instance",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_instance")),
    )
    op.create_table(
        "spaces",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "created_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_spaces")),
    )
    op.create_table(
        "api_keys",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("space_key", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("revoked_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["space_key"],
            ["spaces.key"],
            name=op.f("fk_api_keys_space_key_spaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "flows",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("space_key", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("deleted_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["space_key"],
            ["spaces.key"],
            name=op.f("fk_flows_space_key_spaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flows")),
        sa.UniqueConstraint("space_key", "key", name=op.f("uq_flows_space_key_key")),
    )
    op.create_table(
        "flow_versions",
        sa.Column("flow_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "definition",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "created_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["flow_id"],
            ["flows.id"],
            name=op.f("fk_flow_versions_flow_id_flows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("flow_id", "version", name=op.f("pk_flow_versions")),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("space_key", sa.String(length=128), nullable=False),
        sa.Column("flow_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("flow_key", sa.String(length=128), nullable=False),
        sa.Column("flow_version", sa.Integer(), nullable=False),
        sa.Column("third_party_order_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "body",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("deadline", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("ended_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["flow_id"], ["flows.id"], name=op.f("fk_orders_flow_id_flows")),
        sa.ForeignKeyConstraint(
            ["space_key"],
            ["spaces.key"],
            name=op.f("fk_orders_space_key_spaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint(
            "space_key",
            "third_party_order_id",
            name=op.f("uq_orders_space_key_third_party_order_id"),
        ),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orders_space_created", ["space_key", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_orders_space_status", ["space_key", "status"], unique=False)

    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("task_key", sa.String(length=128), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_events_order_id_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_order", ["order_id", "id"], unique=False)

    op.create_table(
        "tasks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("stage_index", sa.Integer(), nullable=False),
        sa.Column("stage_key", sa.String(length=128), nullable=False),
        sa.Column("task_key", sa.String(length=128), nullable=False),
        sa.Column("handler_key", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("budget_base", sa.Integer(), nullable=False),
        sa.Column("due_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("wake", sa.String(length=16), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column(
            "lease_expires_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("feedback_token_hash", sa.String(length=64), nullable=True),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "error",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "created_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("ended_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_tasks_order_id_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_tasks_delivery_id")),
        sa.UniqueConstraint("feedback_token_hash", name=op.f("uq_tasks_feedback_token_hash")),
        sa.UniqueConstraint("order_id", "task_key", name=op.f("uq_tasks_order_id_task_key")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tasks_due",
            ["due_at"],
            unique=False,
            sqlite_where=sa.text("status IN ('PENDING', 'WAITING')"),
            postgresql_where=sa.text("status IN ('PENDING', 'WAITING')"),
        )
        batch_op.create_index(
            "ix_tasks_lease",
            ["lease_expires_at"],
            unique=False,
            sqlite_where=sa.text("status = 'RUNNING'"),
            postgresql_where=sa.text("status = 'RUNNING'"),
        )

    op.create_table(
        "attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column(
            "started_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("ended_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column(
            "request",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("error_class", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_attempts_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
        sa.UniqueConstraint("task_id", "number", name=op.f("uq_attempts_task_id_number")),
    )
    op.create_table(
        "feedback",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "received_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_feedback_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_task_id"), ["task_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_task_id"))

    op.drop_table("feedback")
    op.drop_table("attempts")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_tasks_lease",
            sqlite_where=sa.text("status = 'RUNNING'"),
            postgresql_where=sa.text("status = 'RUNNING'"),
        )
        batch_op.drop_index(
            "ix_tasks_due",
            sqlite_where=sa.text("status IN ('PENDING', 'WAITING')"),
            postgresql_where=sa.text("status IN ('PENDING', 'WAITING')"),
        )

    op.drop_table("tasks")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_order")

    op.drop_table("events")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_space_status")
        batch_op.drop_index("ix_orders_space_created")

    op.drop_table("orders")
    op.drop_table("flow_versions")
    op.drop_table("flows")
    op.drop_table("api_keys")
    op.drop_table("spaces")
    op.drop_table("instance")
