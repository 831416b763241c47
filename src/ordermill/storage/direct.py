"""The hot SQLAlchemy Core statements, on SQLite run straight through ``sqlite3``.

A statement of intake, claims or outcomes takes microseconds in SQLite, while SQLAlchemy's
execution of it (the compiled cache's look-up, building and processing the parameters,
rendering ``IN`` lists, the execution context, the result's metadata, events) takes 100–250
µs of Python. :func:`rows` compiles such a statement once per dialect and then does only what
the statement needs: each parameter through its type's bind processing, each column of the
result through its type's result processing. A list for an expanding ``IN`` parameter travels
as one JSON array, read by ``json_each``, so the text is the same for any number of values.

It runs on the connection the caller's transaction holds (``sqlite.run``); on PostgreSQL it is
``conn.execute`` (whose hot statements are already one statement per batch, see ``bulk``).
Rows answer by attribute and by position, like SQLAlchemy's.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler

from ordermill.jsoncodec import dumps_text
from ordermill.storage import sqlite

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Parameter:
    name: str
    process: Processor
    default: Any  # a literal's own value, for a parameter the caller does not pass
    expanding: bool


@dataclass(frozen=True)
class _Direct:
    sql: str
    parameters: tuple[_Parameter, ...]
    row: Callable[..., Any] | None
    results: tuple[Processor, ...]

    def values(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        values = []
        for parameter in self.parameters:
            value = params.get(parameter.name, parameter.default)
            process = parameter.process
            if parameter.expanding:
                items = value if process is None else [process(item) for item in value]
                values.append(dumps_text(list(items)))
            else:
                values.append(value if process is None else process(value))
        return tuple(values)

    def read(self, raw: list[Any]) -> list[Any]:
        if self.row is None:
            return raw
        make, results = self.row, self.results
        if not any(results):
            return [make(*values) for values in raw]
        return [
            make(*(v if p is None else p(v) for p, v in zip(results, values, strict=True)))
            for values in raw
        ]


_BUILT: dict[Executable, _Direct] = {}


def _row_type(keys: list[str]) -> Callable[..., Any]:
    made: Callable[..., Any] = namedtuple("Row", keys, rename=True)  # type: ignore[misc]
    return made


def _direct(statement: Executable, dialect: Dialect) -> _Direct:
    built = _BUILT.get(statement)
    if built is not None:
        return built
    done = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    assert isinstance(done, SQLCompiler)
    sql = done.string
    parameters = []
    for name in done.positiontup or ():
        bind = done.binds[name]
        kind = bind.type
        if bind.expanding:
            sql = sql.replace(f"(__[POSTCOMPILE_{name}])", "(SELECT value FROM json_each(?))")
        parameters.append(
            _Parameter(
                name,
                kind._cached_bind_processor(dialect),
                None if bind.callable is not None else bind.value,
                bind.expanding,
            )
        )
    assert "POSTCOMPILE" not in sql, sql
    row: Callable[..., Any] | None = None
    results: tuple[Processor, ...] = ()
    if done._result_columns:
        keys = [column[0] for column in done._result_columns]
        row = _row_type(keys)
        results = tuple(
            column[3]._cached_result_processor(dialect, None) for column in done._result_columns
        )
    built = _BUILT[statement] = _Direct(sql, tuple(parameters), row, results)
    return built


async def rows(
    conn: AsyncConnection, statement: Executable, params: Mapping[str, Any] | None = None
) -> list[Any]:
    """Run ``statement`` with ``params`` in ``conn``'s transaction; its rows (none for a
    statement without a result)."""
    params = params or {}
    if conn.dialect.name != "sqlite":
        result = await conn.execute(statement, dict(params))
        return list(result.all()) if result.returns_rows else []
    direct = _direct(statement, conn.dialect)
    return direct.read(sqlite.run(conn, direct.sql, direct.values(params)))


async def many(
    conn: AsyncConnection, statement: Executable, params: Iterable[Mapping[str, Any]]
) -> None:
    """``statement`` once for each of ``params`` (``executemany``), nothing read."""
    batch = list(params)
    if not batch:
        return
    if conn.dialect.name != "sqlite":
        await conn.execute(statement, [dict(p) for p in batch])
        return
    direct = _direct(statement, conn.dialect)
    sqlite.run_many(conn, direct.sql, [direct.values(p) for p in batch])
