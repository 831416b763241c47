"""order search: one searchable text per order, indexed for substrings

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from ordermill.storage.search import TABLE_NAME, insert_rows, search_row

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "sqlite":
        op.execute(
            f"CREATE VIRTUAL TABLE {TABLE_NAME} USING fts5("
            "order_id UNINDEXED, space_key UNINDEXED, text, tokenize = 'trigram')"
        )
    else:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_table(
            TABLE_NAME,
            sa.Column(
                "order_id",
                sa.String(32),
                sa.ForeignKey("orders.id", ondelete="CASCADE"),
                primary_key=True,
            ),
            sa.Column("space_key", sa.String(64), nullable=False),
            sa.Column("text", sa.Text(), nullable=False),
        )
        op.execute(
            f"CREATE INDEX ix_{TABLE_NAME}_text ON {TABLE_NAME} USING gin (text gin_trgm_ops)"
        )
    orders = sa.table("orders", sa.column("id"), sa.column("space_key"), sa.column("body"))
    last = ""
    while True:
        rows = connection.execute(
            sa.select(orders.c.id, orders.c.space_key, orders.c.body)
            .where(orders.c.id > last)
            .order_by(orders.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        connection.execute(
            insert_rows(connection.dialect.name),
            [search_row(r.id, r.space_key, _body(r.body)) for r in rows],
        )
        last = rows[-1].id


def _body(value: object) -> dict[str, object]:
    if isinstance(value, str):
        loaded = json.loads(value)
        return loaded if isinstance(loaded, dict) else {}
    return value if isinstance(value, dict) else {}


def downgrade() -> None:
    op.execute(f"DROP TABLE {TABLE_NAME}")
