"""PostgreSQL: a pooled connection is pinged before use only after it sat idle.

A connection whose server process was ended while it sat idle is replaced unseen; one in steady
use goes without the ping's round trip, so its loss surfaces once as the 503 error (as for a
transaction in flight) and the pool connects anew for the next caller.
"""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from sqlalchemy import text

from ordermill.errors import DatabaseUnavailable
from ordermill.storage.database import Database
from ordermill.storage.notify import conninfo


async def _backend_pid(db: Database) -> int:
    async with db.transaction() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


def _terminate(url: str, pid: int) -> None:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        ended = conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
        assert ended == (True,)


async def test_an_idle_connection_that_died_is_replaced_before_use(postgres_url: str) -> None:
    db = Database(postgres_url, pool_size=1, idle_before_ping=0.05)
    try:
        first = await _backend_pid(db)
        await asyncio.to_thread(_terminate, postgres_url, first)
        await asyncio.sleep(0.1)  # idle longer than idle_before_ping

        second = await _backend_pid(db)

        assert second != first
    finally:
        await db.dispose()


async def test_a_busy_connection_goes_without_a_ping_and_its_loss_fails_once(
    postgres_url: str,
) -> None:
    db = Database(postgres_url, pool_size=1, idle_before_ping=60.0)
    try:
        first = await _backend_pid(db)
        await asyncio.to_thread(_terminate, postgres_url, first)

        with pytest.raises(DatabaseUnavailable):
            await _backend_pid(db)
        second = await _backend_pid(db)

        assert second != first
    finally:
        await db.dispose()


async def test_without_pre_ping_a_dead_idle_connection_fails_once(postgres_url: str) -> None:
    db = Database(postgres_url, pool_size=1, pre_ping=False, idle_before_ping=0.0)
    try:
        first = await _backend_pid(db)
        await asyncio.to_thread(_terminate, postgres_url, first)
        await asyncio.sleep(0.05)

        with pytest.raises(DatabaseUnavailable):
            await _backend_pid(db)
        assert await _backend_pid(db) != first
    finally:
        await db.dispose()
