"""connector delivery

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import ordermill.storage.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "signing_secrets",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("space_key", sa.String(length=128), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("expires_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["space_key"],
            ["spaces.key"],
            name=op.f("fk_signing_secrets_space_key_spaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_secrets")),
    )
    with op.batch_alter_table("signing_secrets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signing_secrets_space_key"), ["space_key"], unique=False
        )

    op.create_table(
        "order_assets",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("item_id", sa.String(length=200), nullable=True),
        sa.Column("asset_id", sa.String(length=200), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("blob_key", sa.Text(), nullable=True),
        sa.Column("file_name", sa.String(length=300), nullable=True),
        sa.Column("content_type", sa.String(length=200), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("task_key", sa.String(length=128), nullable=True),
        sa.Column(
            "created_at", ordermill.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_assets_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_assets")),
    )
    with op.batch_alter_table("order_assets", schema=None) as batch_op:
        batch_op.create_index("ix_order_assets_order", ["order_id", "id"], unique=False)

    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "problem",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column(
                "assets",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:

    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_column("assets")
        batch_op.drop_column("problem")

    with op.batch_alter_table("order_assets", schema=None) as batch_op:
        batch_op.drop_index("ix_order_assets_order")

    op.drop_table("order_assets")
    with op.batch_alter_table("signing_secrets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signing_secrets_space_key"))

    op.drop_table("signing_secrets")
