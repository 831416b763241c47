"""Many rows in one statement whose text does not depend on how many rows there are.

On PostgreSQL a batch travels as one array per column that the server unnests, so a table's
insert (or update of a set of columns) has one statement text for any batch size: psycopg
parses it once and PostgreSQL prepares it once. A multi-row ``VALUES`` list has a new text for
every batch size, and psycopg re-parses texts that long on every execution. On SQLite a batch
is one ``executemany`` of a one-row statement, stepped in C by the ``sqlite3`` module.

Table and column names come from ``storage/tables.py``, never from input. Values go through
each column's own bind processing (JSON serialisation, UTC times), so they are stored exactly
as a SQLAlchemy statement would store them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Statement:
    sql: str
    columns: tuple[str, ...]
    processors: tuple[Processor, ...]


_BUILT: dict[tuple[str, str, str, tuple[str, ...], str], _Statement] = {}


def _processors(table: Table, columns: Sequence[str], dialect: Dialect) -> tuple[Processor, ...]:
    return tuple(table.c[name].type._cached_bind_processor(dialect) for name in columns)


def _array_type(table: Table, name: str, dialect: Dialect) -> str:
    return f"{table.c[name].type.compile(dialect=dialect)}[]"


def _insert(table: Table, columns: tuple[str, ...], returning: str, dialect: Dialect) -> _Statement:
    names = ", ".join(columns)
    if dialect.name == "postgresql":
        arrays = ", ".join(f"%s::{_array_type(table, name, dialect)}" for name in columns)
        sql = f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays})"  # noqa: S608
    else:
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608
    if returning:
        sql += f" RETURNING {returning}"
    return _Statement(sql, columns, _processors(table, columns, dialect))


def _update(table: Table, columns: tuple[str, ...], extra: str, dialect: Dialect) -> _Statement:
    """PostgreSQL only: ``UPDATE … FROM unnest(…)`` keyed by the table's ``id``."""
    keyed = ("id", *columns)
    arrays = ", ".join(f"%s::{_array_type(table, name, dialect)}" for name in keyed)
    sets = [f"{name} = v.{name}" for name in columns]
    if extra:
        sets.append(extra)
    source = f"unnest({arrays}) AS v({', '.join(keyed)})"
    sql = f"UPDATE {table.name} SET {', '.join(sets)} FROM {source} WHERE {table.name}.id = v.id"  # noqa: S608
    return _Statement(sql, keyed, _processors(table, keyed, dialect))


def _built(
    kind: str, table: Table, columns: tuple[str, ...], detail: str, dialect: Dialect
) -> _Statement:
    key = (dialect.name, kind, table.name, columns, detail)
    statement = _BUILT.get(key)
    if statement is None:
        build = _insert if kind == "insert" else _update
        statement = _BUILT[key] = build(table, columns, detail, dialect)
    return statement


def _values(statement: _Statement, row: Mapping[str, Any]) -> list[Any]:
    return [
        row[name] if process is None else process(row[name])
        for name, process in zip(statement.columns, statement.processors, strict=True)
    ]


def _arrays(statement: _Statement, rows: Sequence[Mapping[str, Any]]) -> tuple[list[Any], ...]:
    values = [_values(statement, row) for row in rows]
    return tuple(list(column) for column in zip(*values, strict=True))


def column_arrays(
    conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> tuple[list[Any], ...]:
    """PostgreSQL: the rows (all with the same keys, named after ``table``'s columns) as one
    array per column, in the rows' key order, for a statement of one's own that unnests them."""
    columns = tuple(rows[0])
    statement = _Statement("", columns, _processors(table, columns, conn.dialect))
    return _arrays(statement, rows)


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
        result = await conn.exec_driver_sql(statement.sql, _arrays(statement, rows))
        if not ids_by:
            return []
        written: list[Any] = list(result)
        ids = {key: row_id for row_id, key in written}
        return [ids[row[ids_by]] for row in rows]
    if ids_by:  # SQLite: each row's RETURNING, one cached statement stepped per row
        found = []
        for row in rows:
            result = await conn.exec_driver_sql(statement.sql, tuple(_values(statement, row)))
            found.append(result.scalar_one())
        return found
    await conn.exec_driver_sql(statement.sql, [tuple(_values(statement, row)) for row in rows])
    return []


async def update_many(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    extra: str = "",
) -> None:
    """PostgreSQL: set the columns of each row (keyed by ``id``) in one statement; ``extra`` is
    one more ``SET`` item applied to every row (``version = orders.version + 1``)."""
    if not rows:
        return
    columns = tuple(name for name in rows[0] if name != "id")
    statement = _built("update", table, columns, extra, conn.dialect)
    await conn.exec_driver_sql(statement.sql, _arrays(statement, rows))
