"""Finding an order by anything a person has in hand: one text per order, indexed for substrings.

Each order has one row in ``order_search``: its id, third-party id and every string in its body
(the customer reference in ``data``, e-mail addresses, cities, ...), lower-cased and joined. The
row is written by intake in the order's own transaction. On PostgreSQL the table is a plain table
with a trigram (``pg_trgm``) GIN index, so ``ILIKE '%…%'`` is an index scan; on SQLite it is an
FTS5 table with the ``trigram`` tokenizer, queried with a phrase ``MATCH``. Queries shorter than
three characters (too short for a trigram) fall back to a ``LIKE`` scan of the same table.

The table is created by migration 0008 with each database's own DDL, so it is not part of
``tables.metadata``. On SQLite each row's ``rowid`` is its order's ``rowid``, so an amendment
rewrites the row by key instead of scanning the (unindexed) ``order_id`` column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Executable,
    Select,
    column,
    insert,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from ordermill.jsoncodec import dumps_text
from ordermill.storage import direct
from ordermill.storage.bulk import Part
from ordermill.storage.tables import orders as orders_table

TABLE_NAME = "order_search"
MAX_TEXT = 4000
MAX_DEPTH = 12

order_search = table(TABLE_NAME, column("order_id"), column("space_key"), column("text"))


def _collect(values: Iterable[Any], depth: int, strings: list[str]) -> None:
    """Append the strings among ``values`` (at ``depth``) and, to MAX_DEPTH, within them."""
    for value in values:
        if isinstance(value, str):
            strings.append(value)
        elif depth < MAX_DEPTH:
            if isinstance(value, dict):
                _collect(value.values(), depth + 1, strings)
            elif isinstance(value, list):
                _collect(value, depth + 1, strings)


def searchable_text(order_id: str, body: dict[str, Any]) -> str:
    """The order's searchable text: its ids and every string of its body, once each, bounded."""
    strings: list[str] = []
    _collect(body.values(), 1, strings)
    seen: dict[str, None] = {order_id.lower(): None}
    for value in strings:
        cleaned = value.replace("\x00", "").strip().lower()
        if cleaned:
            seen.setdefault(cleaned, None)
    return "\n".join(seen)[:MAX_TEXT]


def search_row(order_id: str, space_key: str, body: dict[str, Any]) -> dict[str, str]:
    return {"order_id": order_id, "space_key": space_key, "text": searchable_text(order_id, body)}


def insert_rows(dialect: str) -> Executable:
    """The statement that adds new orders' rows (run with many parameter sets at once)."""
    if dialect == "sqlite":
        return _SQLITE_INSERT
    return insert(order_search)


async def insert_search_rows(conn: AsyncConnection, rows: Sequence[Mapping[str, str]]) -> None:
    """SQLite: add new orders' rows in one statement, straight to the driver (on PostgreSQL
    see :func:`search_part`)."""
    await direct.many(conn, _SQLITE_INSERT, rows)


def search_part(rows: Sequence[Mapping[str, str]]) -> Part:
    """PostgreSQL: new orders' rows as a part of one statement (one text for any number)."""
    return Part(_PG_INSERT_RECORDS, dumps_text(rows))


def replace_text(dialect: str) -> Executable:
    """The statement that rewrites one order's text after an amendment."""
    return _SQLITE_REPLACE if dialect == "sqlite" else _REPLACE


_SQLITE_INSERT = text(
    "INSERT INTO order_search (rowid, order_id, space_key, text) "
    "SELECT rowid, :order_id, :space_key, :text FROM orders WHERE id = :order_id"
)
_PG_INSERT_RECORDS = (
    "INSERT INTO order_search (order_id, space_key, text) SELECT order_id, space_key, text "
    "FROM json_to_recordset(%s::json) AS v(order_id text, space_key text, text text)"
)
_REPLACE = text("UPDATE order_search SET text = :text WHERE order_id = :order_id")
_SQLITE_REPLACE = text(
    "UPDATE order_search SET text = :text "
    "WHERE rowid = (SELECT rowid FROM orders WHERE id = :order_id) AND order_id = :order_id"
)


def _like_pattern(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
    return f"%{escaped}%"


def fts_phrase(dialect: str, query: str | None) -> str | None:
    """The FTS5 phrase of a search on SQLite; None where the FTS index cannot answer it (on
    PostgreSQL, or for a search shorter than a trigram)."""
    wanted = (query or "").replace("\x00", "").strip().lower()
    if dialect != "sqlite" or len(wanted) < 3:
        return None
    return '"' + wanted.replace('"', '""') + '"'


def stored_order_first(phrase: str, space_key: str | None, after: str | None) -> Select[Any]:
    """SQLite: the orders whose text matches ``phrase``, latest stored first, read from the FTS
    index in its own (rowid) order, so a page stops after its last row however many match.

    A search row's rowid is its order's rowid, the order in which orders were stored: newest
    first, except that orders stored within one millisecond may come in either order. ``after``
    continues from that order's row."""
    rowid: ColumnElement[Any] = literal_column(f"{TABLE_NAME}.rowid")
    query = (
        select(orders_table)
        .select_from(order_search.join(orders_table, literal_column("orders.rowid") == rowid))
        .where(order_search.c.text.op("MATCH")(phrase))
        .order_by(rowid.desc())
    )
    if space_key is not None:
        query = query.where(order_search.c.space_key == space_key)
    if after:
        stored: Select[Any] = select(literal_column("orders.rowid")).where(
            orders_table.c.id == after
        )
        query = query.where(rowid < stored.scalar_subquery())
    return query


def matching_ids(dialect: str, space_key: str | None, query: str) -> Select[Any]:
    """The ids of the orders whose searchable text contains ``query`` (case-insensitive)."""
    wanted = query.replace("\x00", "").strip().lower()
    condition: ColumnElement[bool]
    phrase = fts_phrase(dialect, query)
    if phrase is not None:
        condition = order_search.c.text.op("MATCH")(phrase)
    else:
        condition = order_search.c.text.ilike(_like_pattern(wanted), escape="\\")
    found = select(order_search.c.order_id).where(condition)
    if space_key is not None:
        found = found.where(order_search.c.space_key == space_key)
    return found
