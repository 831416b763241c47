"""Connections and transactions for SQLite and PostgreSQL, with driver errors translated.

Writers and readers are separated: on SQLite every write transaction starts with
``BEGIN IMMEDIATE`` on a single pooled connection, so writers queue in Python instead of
spinning on "database is locked", while readers use their own connections under WAL.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ordermill.errors import DatabaseUnavailable, StorageError
from ordermill.jsoncodec import dumps_text, loads
from ordermill.private import private_file
from ordermill.storage import direct
from ordermill.storage.sqlite import inline_connector

IDLE_BEFORE_PING = 1.0  # seconds a pooled PostgreSQL connection sits unused before a ping


def _sqlite_engine(url: str, *, immediate: bool, synchronous: str, pool_size: int) -> AsyncEngine:
    database = make_url(url).database or ":memory:"
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=60,
        async_creator=inline_connector(database),
        json_serializer=dumps_text,
        json_deserializer=loads,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so we can issue BEGIN IMMEDIATE ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        direct.sqlite_begin(conn, "BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Ping a pooled connection before use when it sat unused for ``idle_seconds``; a dead one
    is replaced, so API callers see no failure after a database restart (which takes longer
    than that). A connection in steady use goes without the round trip: if the database died
    under it, the statement fails as a transaction in flight would, the pool drops its
    connections, and the next checkout connects anew. Workers retry anyway and skip the ping.
    """
    dialect = engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError("the pooled connection is gone") from exc
            raise


class Database:
    """The database ordermill stores everything in: one writer and one reader engine."""

    def __init__(
        self,
        url: str,
        *,
        sqlite_synchronous: str = "NORMAL",
        pool_size: int = 10,
        pre_ping: bool = True,
        idle_before_ping: float = IDLE_BEFORE_PING,
    ) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                private_file(Path(parsed.database))
            self.writer = _sqlite_engine(
                url, immediate=True, synchronous=sqlite_synchronous, pool_size=1
            )
            self.reader = _sqlite_engine(
                url, immediate=False, synchronous=sqlite_synchronous, pool_size=4
            )
        else:
            # A bounded connect timeout turns a database outage into a prompt 503, not a hang.
            self.writer = create_async_engine(
                url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_timeout=10,
                connect_args={"connect_timeout": 5},
                json_serializer=dumps_text,
                json_deserializer=loads,
            )
            if pre_ping:
                _ping_when_idle(self.writer, idle_before_ping)
            self.reader = self.writer

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block ends, rolled back when it raises."""
        async with _translated(), self.writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A writer connection without a transaction: each statement commits on its own."""
        async with _translated(), self.writer.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """For reading. SQLite: a read transaction, one snapshot for all its statements.
        PostgreSQL: no transaction, each statement on its own; under READ COMMITTED each
        statement has a snapshot of its own either way, and this spares a read its BEGIN and
        ROLLBACK round trips."""
        if self.is_sqlite:
            async with _translated(), self.reader.connect() as conn:
                yield conn
        else:
            async with self.autocommit() as conn:
                yield conn

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    """Driver errors become storage errors; integrity errors pass for callers to interpret."""
    try:
        yield
    except IntegrityError:
        raise
    except DBAPIError as exc:
        raise _translate(exc) from exc
    except OSError as exc:
        raise DatabaseUnavailable() from exc


def _translate(exc: DBAPIError) -> StorageError:
    text = str(exc.orig).lower()
    if exc.connection_invalidated or any(
        marker in text
        for marker in (
            "connection",
            "server closed",
            "terminating",
            "shutting down",
            "starting up",
            "could not connect",
        )
    ):
        return DatabaseUnavailable()
    return StorageError(f"database error: {type(exc.orig).__name__}")
