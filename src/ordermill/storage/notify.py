"""PostgreSQL wake-ups: one commit that made work runnable wakes one worker, not all.

Every worker listens on a channel of its own, named in its listening connection's
``application_name`` (``ordermill-worker:<channel>``), so PostgreSQL's own ``pg_stat_activity``
is the list of live workers: a worker that stops or is killed drops out of it as soon as its
connection closes. A process without a worker of its own (``ordermill api``) sends each wake-up,
in the producing transaction, to the next worker of that list in turn. A process with a worker
(``ordermill worker``, ``ordermill serve``) wakes that worker in memory and sends nothing: the
work it makes runnable (an order's next tasks) is taken by the worker that made it.

The turn passes to the next worker every ``TURN_SECONDS``, not on every commit: the commits of
that time wake one worker, whose claims and outcome batches then hold the work of all of them,
where waking each worker in turn would split it into as many small transactions as there are
workers. Over a second every worker gets its turns.

Every worker also listens on the shared channel, which gets the wake-up while the list is not
known yet or cannot be read. Notifications are lost while a listener reconnects or a worker
dies, so workers also poll (``ORDERMILL_POLL_INTERVAL_SECONDS``); a wake-up only makes one claim
sooner.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Callable

import psycopg
import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url

from ordermill.storage.database import Database

CHANNEL = "ordermill_work"  # every worker's, for when no worker is known
APPLICATION_PREFIX = "ordermill-worker:"
WORKER_CHANNEL = re.compile(r"ordermill_w_[0-9a-f]{12}")
REFRESH_SECONDS = 2.0  # how old the list of live workers may be
TURN_SECONDS = 0.1  # how long one worker gets the wake-ups before the next one
log = structlog.get_logger("ordermill.notify")

_LIVE_WORKERS = text(
    "SELECT DISTINCT application_name FROM pg_stat_activity "
    "WHERE datname = current_database() AND application_name LIKE 'ordermill-worker:%'"
)


def worker_channel() -> str:
    """A new channel name for one worker process."""
    return f"ordermill_w_{secrets.token_hex(6)}"


class Wakeups:
    """Picks the worker a commit wakes: the live workers in turn, from a list at most
    ``REFRESH_SECONDS`` old (read in the background, never inside the caller's transaction).
    While the list is older, wake-ups go to every worker."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._channels: tuple[str, ...] = ()
        self._turn = 0
        self._turned_at = float("-inf")
        self._read_at = float("-inf")
        self._reading: asyncio.Task[None] | None = None

    def next_channel(self) -> str:
        """The channel of the live worker whose turn it is; the shared one while the list is
        being read anew (after ``REFRESH_SECONDS`` the list may name a worker that has gone)."""
        now = time.monotonic()
        if now - self._read_at >= REFRESH_SECONDS:
            if self._reading is None:
                self._reading = asyncio.create_task(self._read())
            return CHANNEL
        if not self._channels:
            return CHANNEL
        if now - self._turned_at >= TURN_SECONDS:
            self._turn, self._turned_at = self._turn + 1, now
        return self._channels[self._turn % len(self._channels)]

    async def _read(self) -> None:
        try:
            async with self.db.read() as conn:
                names = (await conn.execute(_LIVE_WORKERS)).scalars().all()
            channels = (name.removeprefix(APPLICATION_PREFIX) for name in names if name)
            self._channels = tuple(sorted(c for c in channels if WORKER_CHANNEL.fullmatch(c)))
            self._read_at = time.monotonic()
        except Exception as exc:  # the shared channel serves meanwhile
            log.warning("reading the live workers failed; waking all of them", error=str(exc))
            self._channels = ()
            self._read_at = time.monotonic()
        finally:
            self._reading = None

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()


def conninfo(url: str) -> str:
    """A libpq connection string for a SQLAlchemy ``postgresql+psycopg://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def listen(url: str, channel: str, on_notify: Callable[[], None]) -> None:
    """Call ``on_notify`` for every wake-up on ``channel`` or the shared channel until
    cancelled; reconnect with backoff."""
    if not WORKER_CHANNEL.fullmatch(channel):
        raise ValueError(f"not a worker channel: {channel!r}")
    backoff = 0.5
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                conninfo(url),
                autocommit=True,
                connect_timeout=5,
                application_name=f"{APPLICATION_PREFIX}{channel}",
            ) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                await conn.execute(f"LISTEN {channel}")
                backoff = 0.5
                on_notify()  # we may have missed wake-ups while we were away
                async for _ in conn.notifies():
                    on_notify()
        except (psycopg.Error, OSError) as exc:
            log.warning("listening for wake-ups failed; polling meanwhile", error=str(exc))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
