"""The unit of work every write runs in, and the feedback token of a task's updateUrl.

A unit collects the timeline entries of its transaction and counts the tasks it made runnable,
so the caller can wake workers once it commits. Status changes go through
``storage/writer.py``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from ordermill.storage import tables as t
from ordermill.storage.bulk import Part, insert_many, insert_part, write_together
from ordermill.storage.search import insert_search_rows, search_part


def feedback_token(secret: str, delivery_id: str) -> str:
    """The task's updateUrl token: derived, so it is stable across attempts yet never stored."""
    digest = hmac.new(secret.encode(), b"feedback:" + delivery_id.encode(), hashlib.sha256)
    return digest.hexdigest()


@dataclass
class UnitOfWork:
    """What one transaction changed, so the caller can wake workers once it commits."""

    conn: AsyncConnection
    now: datetime
    token_secret: str
    new_tasks: int = 0
    created_tasks: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    searchable: list[dict[str, str]] = field(default_factory=list)  # new orders' search rows
    # Rows nothing in the unit reads back (attempts, subscriptions' deliveries): written by
    # ``flush`` with the timeline, per table in one statement.
    appended: dict[Table, list[dict[str, Any]]] = field(default_factory=dict)
    # PostgreSQL: the writer's updates of tasks and orders, when a caller lets it leave them
    # to ``flush`` (``writer.apply(…, last=True)``); written before the writer reads again.
    deferred: list[Part] = field(default_factory=list)
    # Orders whose space had no subscription when the unit read the order's row (with its lock
    # or its insert): ``record_outbox`` looks for no match for their entries.
    unsubscribed: set[str] = field(default_factory=set)

    def event(
        self,
        order_id: str,
        type_: str,
        *,
        task_key: str | None = None,
        actor: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.events.append(
            {
                "order_id": order_id,
                "at": self.now,
                "type": type_,
                "task_key": task_key,
                "actor": actor,
                "data": data,
            }
        )

    async def flush(self, wake: str | None = None) -> None:
        """Write what the unit collected: each kind in one statement, and on PostgreSQL all of
        them and the wake-up (``wake``, a worker's channel) in one statement."""
        if self.conn.dialect.name == "postgresql":
            parts, self.deferred = self.deferred, []
            if self.searchable:
                parts.append(search_part(self.searchable))
            parts += [insert_part(self.conn, table, rows) for table, rows in self._inserts()]
            await write_together(self.conn, parts, notify=wake)
        else:
            if self.searchable:
                await insert_search_rows(self.conn, self.searchable)
            for table, rows in self._inserts():
                await insert_many(self.conn, table, rows)
        self.searchable, self.appended, self.events = [], {}, []

    async def write_deferred(self) -> None:
        """Write the deferred updates now (before a read that must see them)."""
        if self.deferred:
            parts, self.deferred = self.deferred, []
            await write_together(self.conn, parts)

    def append(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Rows to insert when the unit flushes (all of one table with the same keys)."""
        if rows:
            self.appended.setdefault(table, []).extend(rows)

    def _inserts(self) -> Iterator[tuple[Table, list[dict[str, Any]]]]:
        yield from self.appended.items()
        if self.events:
            yield t.events, self.events
