"""Many rows in one statement whose text does not depend on how many rows there are.

On PostgreSQL a batch travels as one JSON array of records that the server reads with
``json_to_recordset``: a table's insert (or update of a set of columns) has one statement text
for any batch size, so psycopg parses it once and PostgreSQL prepares it once, and the rows
are encoded by one call of the JSON encoder instead of value by value. (A multi-row ``VALUES``
list has a new text for every batch size, and psycopg re-parses texts that long on every
execution; arrays per column are adapted element by element in Python.) On SQLite a batch is
one ``executemany`` of a one-row statement, stepped in C by the ``sqlite3`` module, with values
through each column's own bind processing, sent to the driver directly (``direct``).

Table and column names come from ``storage/tables.py``, never from input. Times are aware
datetimes (UTC), written with their offset; a JSON column's ``None`` is SQL NULL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from ordermill.jsoncodec import dumps_text
from ordermill.storage import direct
from ordermill.storage.direct import Processor

_POSTGRESQL: Dialect = postgresql.dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class _Statement:
    sql: str
    columns: tuple[str, ...]
    processors: tuple[Processor, ...] = ()


_BUILT: dict[tuple[str, str, str, tuple[str, ...], str], _Statement] = {}


@cache
def recordset(table: Table, columns: tuple[str, ...], extra: str = "") -> str:
    """PostgreSQL: ``json_to_recordset(%s::json) AS v(…)`` typed as ``table``'s ``columns``
    (and ``extra``, more typed fields that are no column); pass ``records(rows)`` for its one
    parameter."""
    types = (table.c[name].type.compile(dialect=_POSTGRESQL) for name in columns)
    typed = ", ".join(f"{name} {kind}" for name, kind in zip(columns, types, strict=True))
    return f"json_to_recordset(%s::json) AS v({typed}{', ' + extra if extra else ''})"


def records(rows: Sequence[Mapping[str, Any]]) -> str:
    return dumps_text(rows)


def _insert(table: Table, columns: tuple[str, ...], returning: str, dialect: Dialect) -> _Statement:
    names = ", ".join(columns)
    if dialect.name == "postgresql":
        source = recordset(table, columns)
        sql = f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {source}"  # noqa: S608
        processors: tuple[Processor, ...] = ()
    else:
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608
        processors = tuple(direct.bind_processor(table.c[name].type, dialect) for name in columns)
    if returning:
        sql += f" RETURNING {returning}"
    return _Statement(sql, columns, processors)


def _update(table: Table, columns: tuple[str, ...], extra: str, dialect: Dialect) -> _Statement:
    """PostgreSQL only: ``UPDATE … FROM json_to_recordset(…)`` keyed by the table's ``id``."""
    sets = [f"{name} = v.{name}" for name in columns]
    if extra:
        sets.append(extra)
    source = recordset(table, ("id", *columns))
    sql = f"UPDATE {table.name} SET {', '.join(sets)} FROM {source} WHERE {table.name}.id = v.id"  # noqa: S608
    return _Statement(sql, ("id", *columns))


def _built(
    kind: str, table: Table, columns: tuple[str, ...], detail: str, dialect: Dialect
) -> _Statement:
    key = (dialect.name, kind, table.name, columns, detail)
    statement = _BUILT.get(key)
    if statement is None:
        build = _insert if kind == "insert" else _update
        statement = _BUILT[key] = build(table, columns, detail, dialect)
    return statement


def bind(statement: _Statement, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """SQLite: each row's values through the columns' bind processors."""
    pairs = tuple(zip(statement.columns, statement.processors, strict=True))
    return [
        tuple(row[name] if process is None else process(row[name]) for name, process in pairs)
        for row in rows
    ]


async def insert_many(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    ids_by: str = "",
) -> list[int]:
    """Insert ``rows`` (all with the same keys). With ``ids_by``, a unique column the rows
    carry, answers the new rows' ids in the order of ``rows``; otherwise nothing."""
    if not rows:
        return []
    dialect = conn.dialect
    returning = ""
    if ids_by:
        returning = f"id, {ids_by}" if dialect.name == "postgresql" else "id"
    statement = _built("insert", table, tuple(rows[0]), returning, dialect)
    if dialect.name == "postgresql":
        written = await direct.pg_rows(conn, statement.sql, (records(rows),))
        if not ids_by:
            return []
        ids = {key: row_id for row_id, key in written}
        return [ids[row[ids_by]] for row in rows]
    if ids_by:  # SQLite: each row's RETURNING, one statement stepped per row
        bound = bind(statement, rows)
        return [direct.sqlite_rows(conn, statement.sql, values)[0][0] for values in bound]
    direct.sqlite_many(conn, statement.sql, bind(statement, rows))
    return []


@dataclass(frozen=True)
class Part:
    """PostgreSQL: one data-changing statement with one ``%s`` parameter (JSON records), to be
    sent with others as one statement by :func:`write_together`."""

    sql: str
    records: str


def insert_part(conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]) -> Part:
    """The insert of ``rows`` (all with the same keys) as a part of :func:`write_together`."""
    statement = _built("insert", table, tuple(rows[0]), "", conn.dialect)
    return Part(statement.sql, records(rows))


async def write_together(
    conn: AsyncConnection, parts: Sequence[Part], *, notify: str | None = None
) -> None:
    """PostgreSQL: the ``parts`` and a wake-up on the channel ``notify`` as one statement, so
    one round trip: each part is a data-changing ``WITH`` item, which PostgreSQL runs once and
    to the end whether or not the main query reads it. Its text depends only on how many parts
    there are, so the server and the driver keep one prepared statement per shape."""
    if not parts and notify is None:
        return
    items = ", ".join(f"w{n} AS ({part.sql})" for n, part in enumerate(parts))
    main = "SELECT pg_notify(%s, '')" if notify is not None else "SELECT 1"
    sql = f"WITH {items} {main}" if parts else main
    params = [part.records for part in parts]
    if notify is not None:
        params.append(notify)
    await direct.pg_rows(conn, sql, tuple(params))


def update_part(
    conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]], *, extra: str = ""
) -> Part:
    """PostgreSQL: set the columns of each row (keyed by ``id``, all rows with the same keys)
    in one statement; ``extra`` is one more ``SET`` item applied to every row (``version =
    orders.version + 1``). A part of :func:`write_together`, or run alone."""
    columns = tuple(name for name in rows[0] if name != "id")
    statement = _built("update", table, columns, extra, conn.dialect)
    return Part(statement.sql, records(rows))
