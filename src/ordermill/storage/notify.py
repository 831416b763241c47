"""PostgreSQL wake-ups: NOTIFY in the producing transaction, LISTEN in every worker.

Notifications are lost while a listener reconnects, so workers also poll; a wake-up only
makes them claim sooner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg
import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

CHANNEL = "ordermill_work"
log = structlog.get_logger("ordermill.notify")


async def notify(conn: AsyncConnection) -> None:
    """Queue a wake-up; PostgreSQL delivers it when the transaction commits."""
    await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def conninfo(url: str) -> str:
    """A libpq connection string for a SQLAlchemy ``postgresql+psycopg://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def listen(url: str, on_notify: Callable[[], None]) -> None:
    """Call ``on_notify`` for every wake-up until cancelled; reconnect with backoff."""
    backoff = 0.5
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                conninfo(url), autocommit=True, connect_timeout=5
            ) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                backoff = 0.5
                on_notify()  # we may have missed wake-ups while we were away
                async for _ in conn.notifies():
                    on_notify()
        except (psycopg.Error, OSError) as exc:
            log.warning("listening for wake-ups failed; polling meanwhile", error=str(exc))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
