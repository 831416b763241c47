"""The hot statements of intake, claims and outcomes, run straight through the driver.

A statement of intake, claims or outcomes takes microseconds in SQLite and one round trip to
PostgreSQL, while SQLAlchemy's execution of it (the compiled cache's look-up, building and
processing the parameters, rendering ``IN`` lists, the execution context, the greenlet hop,
the result's metadata, events) costs 100–250 µs of Python each time. So the hot statements go
to the driver directly, on the connection the caller's SQLAlchemy transaction holds (and so in
that transaction):

- :func:`rows` and :func:`many` take a SQLAlchemy Core statement, compile it once per dialect
  and then do only what the statement needs: each parameter through its type's bind
  processing, each column of the result through its type's result processing. A list for an
  expanding ``IN`` parameter travels as one value, so the text is the same for any number of
  values: a JSON array read by ``json_each`` on SQLite, an array (``= ANY``) on PostgreSQL.
- :func:`pg_rows`, :func:`sqlite_rows` and :func:`sqlite_many` run a statement written as
  text for one driver (``bulk``'s batch statements), its values already bound.

Rows of :func:`rows` answer by attribute and by position, like SQLAlchemy's. Driver errors
come out as SQLAlchemy's (``IntegrityError`` and the rest, without their parameters), as
from ``conn.execute``, so ``database._translated`` and callers treat them alike.
"""

from __future__ import annotations

import re
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import Executable
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

from ordermill.jsoncodec import dumps_text
from ordermill.storage.sqlite import InlineConnection
from ordermill.storage.tables import UTCDateTime

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
    positional: bool  # SQLite's ``?`` in the order of ``parameters``; else named
    row: Callable[..., Any] | None
    results: tuple[Processor, ...]  # empty when no column needs processing

    def values(self, params: Mapping[str, Any]) -> Any:
        values = []
        for parameter in self.parameters:
            value = params.get(parameter.name, parameter.default)
            process = parameter.process
            if parameter.expanding:
                items = list(value) if process is None else [process(item) for item in value]
                values.append(dumps_text(items) if self.positional else items)
            else:
                values.append(value if process is None else process(value))
        if self.positional:
            return tuple(values)
        return {p.name: v for p, v in zip(self.parameters, values, strict=True)}

    def read(self, raw: Sequence[Any]) -> list[Any]:
        if self.row is None:
            return list(raw)
        make, results = self.row, self.results
        if not results:
            return [make(*values) for values in raw]
        return [
            make(*(v if p is None else p(v) for p, v in zip(results, values, strict=True)))
            for values in raw
        ]


_BUILT: dict[tuple[str, Executable], _Direct] = {}


def bind_processor(kind: TypeEngine[Any], dialect: Dialect) -> Processor:
    """``kind``'s bind processing for ``dialect``; for a time, remembered (see _remembered)."""
    return _remembered(kind, kind._cached_bind_processor(dialect))


def result_processor(kind: TypeEngine[Any], dialect: Dialect) -> Processor:
    """``kind``'s result processing for ``dialect``; for a time, remembered."""
    return _remembered(kind, kind._cached_result_processor(dialect, None))


def _remembered(kind: TypeEngine[Any], process: Processor) -> Processor:
    """A time's conversion (to SQLite's text and back, through UTC) costs microseconds of
    Python, and a unit writes and reads its one ``now`` many times: so ``UTCDateTime``'s
    processing keeps its recent answers. It is a pure function of the instant (equal
    instants in other zones convert alike, through UTC), as a cache keyed by equality needs."""
    if process is None or not isinstance(kind, UTCDateTime):
        return process
    return lru_cache(maxsize=256)(process)


def _row_type(keys: list[str]) -> Callable[..., Any]:
    made: Callable[..., Any] = namedtuple("Row", keys, rename=True)  # type: ignore[misc]
    return made


def _direct(statement: Executable, dialect: Dialect) -> _Direct:
    built = _BUILT.get((dialect.name, statement))
    if built is not None:
        return built
    done = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    assert isinstance(done, SQLCompiler)
    sql = done.string
    positional = dialect.name == "sqlite"
    if positional:
        names = list(done.positiontup or ())
    else:
        names = list(dict.fromkeys(done.bind_names.values()))
    parameters = []
    for name in names:
        bind = done.binds[name]
        if bind.expanding:
            token = f"(__[POSTCOMPILE_{name}])"
            if positional:
                sql = sql.replace(token, "(SELECT value FROM json_each(?))")
            else:
                element = bind.type.compile(dialect=dialect)
                pattern = rf"(?<!NOT) IN {re.escape(token)}"
                sql = re.sub(pattern, f" = ANY(CAST(%({name})s AS {element}[]))", sql)
        parameters.append(
            _Parameter(
                name,
                bind_processor(bind.type, dialect),
                None if bind.callable is not None else bind.value,
                bind.expanding,
            )
        )
    assert "POSTCOMPILE" not in sql, sql
    row: Callable[..., Any] | None = None
    results: tuple[Processor, ...] = ()
    if done._result_columns:
        row = _row_type([column[0] for column in done._result_columns])
        results = tuple(result_processor(column[3], dialect) for column in done._result_columns)
        if not any(results):
            results = ()  # (rows made as they come)
    built = _BUILT[dialect.name, statement] = _Direct(
        sql, tuple(parameters), positional, row, results
    )
    return built


def _driver(conn: AsyncConnection | Connection) -> Any:
    """The driver's connection under ``conn`` (async, or the synchronous one of an event),
    which holds it."""
    sync = conn.sync_connection if isinstance(conn, AsyncConnection) else conn
    assert sync is not None
    return sync.connection.driver_connection


def _sqlite(conn: AsyncConnection | Connection) -> sqlite3.Connection:
    inline = _driver(conn)
    assert isinstance(inline, InlineConnection)
    return inline._conn


@contextmanager
def _as_sqlalchemy_errors(sql: str) -> Iterator[None]:
    """A driver's error as the SQLAlchemy error ``conn.execute`` would raise, without its
    parameters."""
    try:
        yield
    except (sqlite3.Error, psycopg.Error) as exc:
        base = sqlite3.Error if isinstance(exc, sqlite3.Error) else psycopg.Error
        wrapped = DBAPIError.instance(sql, None, exc, base, hide_parameters=True)
        assert isinstance(wrapped, DBAPIError)
        raise wrapped from exc


def sqlite_rows(conn: AsyncConnection, sql: str, params: Sequence[Any]) -> list[Any]:
    """SQLite: a statement written as text (``?`` parameters, already bound: ``bulk.bind``),
    its rows as the driver's tuples."""
    with _as_sqlalchemy_errors(sql):
        return _sqlite(conn).execute(sql, params).fetchall()


def sqlite_begin(connection: Connection, sql: str) -> None:
    """SQLite: start ``connection``'s transaction with ``sql`` (``BEGIN IMMEDIATE``), from
    SQLAlchemy's ``begin`` event, where ``connection`` is the synchronous one."""
    with _as_sqlalchemy_errors(sql):
        _sqlite(connection).execute(sql)


def sqlite_many(conn: AsyncConnection, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """:func:`sqlite_rows` for many rows of one statement (``executemany``), nothing read."""
    with _as_sqlalchemy_errors(sql):
        _sqlite(conn).executemany(sql, rows)


def _psycopg(conn: AsyncConnection) -> psycopg.AsyncConnection[Any]:
    driver = _driver(conn)
    assert isinstance(driver, psycopg.AsyncConnection)
    return driver


async def rows(
    conn: AsyncConnection, statement: Executable, params: Mapping[str, Any] | None = None
) -> list[Any]:
    """Run ``statement`` with ``params`` in ``conn``'s transaction; its rows (none for a
    statement without a result)."""
    direct = _direct(statement, conn.dialect)
    values = direct.values(params or {})
    if direct.positional:
        return direct.read(sqlite_rows(conn, direct.sql, values))
    return direct.read(await pg_rows(conn, direct.sql, values))


async def many(
    conn: AsyncConnection, statement: Executable, params: Iterable[Mapping[str, Any]]
) -> None:
    """``statement`` once for each of ``params`` (``executemany``), nothing read."""
    batch = list(params)
    if not batch:
        return
    direct = _direct(statement, conn.dialect)
    if direct.positional:
        sqlite_many(conn, direct.sql, [direct.values(p) for p in batch])
        return
    with _as_sqlalchemy_errors(direct.sql):
        async with _psycopg(conn).cursor() as cursor:
            await cursor.executemany(direct.sql, [direct.values(p) for p in batch])


async def pg_rows(
    conn: AsyncConnection, sql: str, params: Sequence[Any] | Mapping[str, Any]
) -> list[Any]:
    """PostgreSQL: a statement written as text (``%s`` or ``%(name)s`` parameters, already
    bound), its rows as tuples (none for a statement without a result)."""
    with _as_sqlalchemy_errors(sql):
        async with _psycopg(conn).cursor() as cursor:
            await cursor.execute(sql, params)
            return [] if cursor.description is None else await cursor.fetchall()
