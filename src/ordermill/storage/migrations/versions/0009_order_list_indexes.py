"""orders list at volume: each filter of the list reads an index in the list's order

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_orders_space_id", "orders", ["space_key", "id"])
    op.drop_index("ix_orders_space_status", table_name="orders")
    op.create_index("ix_orders_space_status", "orders", ["space_key", "status", "id"])
    op.create_index("ix_orders_space_flow", "orders", ["space_key", "flow_key", "id"])
    op.create_index("ix_orders_space_deadline", "orders", ["space_key", "deadline", "id"])


def downgrade() -> None:
    op.drop_index("ix_orders_space_deadline", table_name="orders")
    op.drop_index("ix_orders_space_flow", table_name="orders")
    op.drop_index("ix_orders_space_status", table_name="orders")
    op.create_index("ix_orders_space_status", "orders", ["space_key", "status"])
    op.drop_index("ix_orders_space_id", table_name="orders")
