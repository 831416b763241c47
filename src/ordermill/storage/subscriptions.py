"""Subscriptions (SPEC §5.4) and their outbox: events recorded with the change they describe.

``record_outbox`` runs inside every unit of work, just before its timeline is written: for each
subscribable timeline entry of the unit it adds one outbox row per matching subscription, so an
event is stored if and only if its change commits. The dispatcher (``engine/subscriptions.py``)
claims an outbox row only when it is the oldest undelivered row of its subscription and order,
so one order's events reach a subscriber in the order they happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import case, delete, exists, func, insert, literal_column, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import Label

from ordermill.errors import NotFound
from ordermill.flows.model import RetryPolicy
from ordermill.storage import tables as t
from ordermill.storage.advance import UnitOfWork
from ordermill.storage.database import Database
from ordermill.storage.ids import new_id
from ordermill.times import iso

# The events a subscription may ask for, as the order's timeline names them.
EVENT_TYPES = ("order.created", "order.status", "task.failed", "order.amended")
# A subscription is disabled once this many deliveries in a row were given up on.
DISABLE_AFTER = 10
# Each event is attempted this often (about 25 minutes of retries), then given up on.
DELIVERY_RETRY = RetryPolicy(
    max_attempts=8, initial_interval_ms=2000, backoff_coefficient=3.0, max_interval_ms=900_000
)


class OutboxStatus(StrEnum):
    PENDING = "PENDING"  # to deliver (now, or after a backoff, or once the subscription is on)
    DELIVERED = "DELIVERED"
    GAVE_UP = "GAVE_UP"  # retries exhausted or a permanent refusal
    SKIPPED = "SKIPPED"  # held while the subscription was disabled, then dropped


@dataclass(frozen=True)
class Subscription:
    id: str
    space_key: str
    uri: str
    events: tuple[str, ...]
    flow_keys: tuple[str, ...] | None
    enabled: bool
    failures: int
    failing_since: datetime | None
    disabled_at: datetime | None
    created_at: datetime

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uri": self.uri,
            "events": list(self.events),
            "flowKeys": None if self.flow_keys is None else list(self.flow_keys),
            "enabled": self.enabled,
            "failures": self.failures,
            "failingSince": iso(self.failing_since),
            "disabledAt": iso(self.disabled_at),
            "createdAt": iso(self.created_at),
        }


@dataclass(frozen=True)
class OutboxItem:
    """A claimed outbox row with what delivering it needs."""

    id: int
    subscription_id: str
    space_key: str
    uri: str
    order_id: str
    flow_key: str
    order: dict[str, Any]
    event: dict[str, Any]
    delivery_id: str
    body: bytes | None
    attempt: int  # this attempt's number
    budget_attempt: int  # its number since the last redelivery
    created_at: datetime


@dataclass(frozen=True)
class Delivered:
    """How an attempt ended: ``retry_at`` to try again, else ``ok`` or given up."""

    ok: bool
    body: bytes
    retry_at: datetime | None = None
    status_code: int | None = None
    error: str | None = None
    request: dict[str, Any] | None = None
    response_body: str | None = None


def _subscription(row: Any) -> Subscription:
    return Subscription(
        id=row.id,
        space_key=row.space_key,
        uri=row.uri,
        events=tuple(row.events),
        flow_keys=None if row.flow_keys is None else tuple(row.flow_keys),
        enabled=bool(row.enabled),
        failures=row.failures,
        failing_since=row.failing_since,
        disabled_at=row.disabled_at,
        created_at=row.created_at,
    )


def event_of_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """The ``event`` member of a subscription's request for one timeline entry."""
    data = entry.get("data") or {}
    event: dict[str, Any] = {"type": entry["type"], "at": iso(entry["at"])}
    if entry["type"] == "order.status":
        event["from"], event["to"] = data.get("from"), data.get("to")
    if entry.get("task_key") is not None:
        event["taskKey"] = entry["task_key"]
    if entry["type"] == "order.amended":
        event["revision"] = data.get("revision")
        event["changed"] = data.get("changed", [])
    return event


# Whether an order's space has any subscription: read with the order's row where a unit reads
# it anyway (its lock, its insert), so a unit of such orders needs no _MATCHES query.
_ANY_SUBSCRIPTION = (
    "EXISTS (SELECT 1 FROM subscriptions WHERE subscriptions.space_key = orders.space_key)"
)
SUBSCRIBED: Label[bool] = literal_column(_ANY_SUBSCRIPTION).label("subscribed")  # select of orders
SUBSCRIBED_SQL = f"{_ANY_SUBSCRIPTION} AS subscribed"  # in a statement's text
_MATCHES = select(
    t.subscriptions.c.id,
    t.subscriptions.c.events,
    t.subscriptions.c.flow_keys,
    t.orders.c.id.label("order_id"),
    t.orders.c.flow_key,
).select_from(t.subscriptions.join(t.orders, t.orders.c.space_key == t.subscriptions.c.space_key))


async def record_outbox(uow: UnitOfWork) -> None:
    """Add the unit's subscribable timeline entries to the outbox of every matching
    subscription, written with the timeline in the unit's transaction (called just before)."""
    wanted = [
        entry
        for entry in uow.events
        if entry["type"] in EVENT_TYPES and entry["order_id"] not in uow.unsubscribed
    ]
    if not wanted:
        return
    order_ids = sorted({entry["order_id"] for entry in wanted})
    matches = (await uow.conn.execute(_MATCHES.where(t.orders.c.id.in_(order_ids)))).all()
    if not matches:
        return
    rows = []
    for entry in wanted:
        for match in matches:
            if match.order_id != entry["order_id"] or entry["type"] not in match.events:
                continue
            if match.flow_keys is not None and match.flow_key not in match.flow_keys:
                continue
            rows.append(
                {
                    "subscription_id": match.id,
                    "order_id": entry["order_id"],
                    "event": event_of_entry(entry),
                    "status": OutboxStatus.PENDING.value,
                    "delivery_id": new_id("evt_"),
                    "attempts": 0,
                    "budget_base": 0,
                    "due_at": uow.now,
                    "created_at": uow.now,
                }
            )
    uow.append(t.outbox, rows)


_EARLIER = aliased(t.outbox)
_HEADS = (
    select(t.outbox.c.id)
    .select_from(t.outbox.join(t.subscriptions, t.subscriptions.c.id == t.outbox.c.subscription_id))
    .where(t.outbox.c.status == OutboxStatus.PENDING.value, t.subscriptions.c.enabled)
    .where(
        ~exists().where(
            _EARLIER.c.subscription_id == t.outbox.c.subscription_id,
            _EARLIER.c.order_id == t.outbox.c.order_id,
            _EARLIER.c.status == OutboxStatus.PENDING.value,
            _EARLIER.c.id < t.outbox.c.id,
        )
    )
)
_CLAIMED = select(
    t.outbox.c.id,
    t.outbox.c.subscription_id,
    t.outbox.c.order_id,
    t.outbox.c.event,
    t.outbox.c.delivery_id,
    t.outbox.c.body,
    t.outbox.c.attempts,
    t.outbox.c.budget_base,
    t.outbox.c.created_at,
    t.subscriptions.c.space_key,
    t.subscriptions.c.uri,
    t.orders.c.flow_key,
    t.orders.c.body.label("order"),
).select_from(
    t.outbox.join(t.subscriptions, t.subscriptions.c.id == t.outbox.c.subscription_id).join(
        t.orders, t.orders.c.id == t.outbox.c.order_id
    )
)


class SubscriptionStore:
    """Subscriptions of a space, and the outbox the dispatcher works through."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the API's side ------------------------------------------------------------------------

    async def create(
        self,
        space_key: str,
        uri: str,
        events: Sequence[str],
        flow_keys: Sequence[str] | None,
        now: datetime,
    ) -> Subscription:
        row = {
            "id": new_id("sub_"),
            "space_key": space_key,
            "uri": uri,
            "events": list(events),
            "flow_keys": None if flow_keys is None else list(flow_keys),
            "enabled": True,
            "failures": 0,
            "failing_since": None,
            "disabled_at": None,
            "created_at": now,
            "updated_at": now,
        }
        async with self.db.transaction() as conn:
            await conn.execute(insert(t.subscriptions), row)
        return _subscription(_Row(row))

    async def of_space(self, space_key: str) -> list[Subscription]:
        query = (
            select(t.subscriptions)
            .where(t.subscriptions.c.space_key == space_key)
            .order_by(t.subscriptions.c.id)
        )
        async with self.db.read() as conn:
            return [_subscription(row) for row in await conn.execute(query)]

    async def get(self, space_key: str, subscription_id: str) -> Subscription:
        query = select(t.subscriptions).where(
            t.subscriptions.c.space_key == space_key, t.subscriptions.c.id == subscription_id
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise NotFound(f"space {space_key!r} has no subscription {subscription_id!r}")
        return _subscription(row)

    async def update(
        self, space_key: str, subscription_id: str, changes: dict[str, Any], now: datetime
    ) -> Subscription:
        """Change uri, events or flow keys (the keys of ``changes`` are column names)."""
        await self.get(space_key, subscription_id)
        async with self.db.transaction() as conn:
            await conn.execute(
                update(t.subscriptions)
                .where(t.subscriptions.c.id == subscription_id)
                .values(**changes, updated_at=now)
            )
        return await self.get(space_key, subscription_id)

    async def delete(self, space_key: str, subscription_id: str) -> None:
        await self.get(space_key, subscription_id)
        async with self.db.transaction() as conn:
            await conn.execute(
                delete(t.outbox).where(t.outbox.c.subscription_id == subscription_id)
            )
            await conn.execute(
                delete(t.subscriptions).where(t.subscriptions.c.id == subscription_id)
            )

    async def enable(
        self, space_key: str, subscription_id: str, *, redeliver: bool, now: datetime
    ) -> Subscription:
        """Turn a subscription on again. With ``redeliver``, everything since its failures
        began is delivered again (the events given up on and those held while it was off);
        without, the held events are dropped and only new ones are delivered."""
        current = await self.get(space_key, subscription_id)
        line = t.outbox.c.subscription_id == subscription_id
        async with self.db.transaction() as conn:
            if redeliver:
                since = current.failing_since or current.disabled_at or now
                await conn.execute(
                    update(t.outbox)
                    .where(
                        line,
                        t.outbox.c.status == OutboxStatus.GAVE_UP.value,
                        t.outbox.c.ended_at >= since,
                    )
                    .values(_again(now))
                )
            else:
                await conn.execute(
                    update(t.outbox)
                    .where(line, t.outbox.c.status == OutboxStatus.PENDING.value)
                    .values(status=OutboxStatus.SKIPPED.value, ended_at=now)
                )
            await conn.execute(
                update(t.subscriptions)
                .where(t.subscriptions.c.id == subscription_id)
                .values(
                    enabled=True, failures=0, failing_since=None, disabled_at=None, updated_at=now
                )
            )
        return await self.get(space_key, subscription_id)

    async def deliveries(
        self, space_key: str, subscription_id: str, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The delivery log of a subscription, newest first."""
        await self.get(space_key, subscription_id)
        query = (
            select(t.outbox)
            .where(t.outbox.c.subscription_id == subscription_id)
            .order_by(t.outbox.c.id.desc())
            .limit(limit)
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            {
                "id": row.id,
                "orderId": row.order_id,
                "event": row.event,
                "status": row.status,
                "deliveryId": row.delivery_id,
                "attempts": row.attempts,
                "statusCode": row.status_code,
                "error": row.error,
                "request": row.request,
                "responseBody": row.response_body,
                "createdAt": iso(row.created_at),
                "endedAt": iso(row.ended_at),
            }
            for row in rows
        ]

    async def redeliver(
        self, space_key: str, subscription_id: str, delivery: int, now: datetime
    ) -> None:
        """Deliver one event again (same delivery id, same bytes, a fresh retry budget)."""
        await self.get(space_key, subscription_id)
        async with self.db.transaction() as conn:
            result = await conn.execute(
                update(t.outbox)
                .where(
                    t.outbox.c.id == delivery,
                    t.outbox.c.subscription_id == subscription_id,
                    t.outbox.c.status != OutboxStatus.PENDING.value,
                )
                .values(_again(now))
            )
        if result.rowcount != 1:
            raise NotFound(f"no ended delivery {delivery} of subscription {subscription_id!r}")

    # -- the dispatcher's side -----------------------------------------------------------------

    async def claim(
        self, owner: str, limit: int, lease_seconds: float, now: datetime
    ) -> list[OutboxItem]:
        """Claim up to ``limit`` due outbox rows, each the oldest undelivered one of its
        subscription and order, under a lease."""
        free = (t.outbox.c.lease_expires_at.is_(None)) | (t.outbox.c.lease_expires_at < now)
        heads = _HEADS.where(t.outbox.c.due_at <= now, free).order_by(t.outbox.c.id).limit(limit)
        async with self.db.transaction() as conn:
            ids = list((await conn.execute(heads)).scalars())
            claimed = []
            for outbox_id in ids:
                result = await conn.execute(
                    update(t.outbox)
                    .where(
                        t.outbox.c.id == outbox_id,
                        t.outbox.c.status == OutboxStatus.PENDING.value,
                        free,
                    )
                    .values(
                        lease_owner=owner,
                        lease_expires_at=now + timedelta(seconds=lease_seconds),
                        attempts=t.outbox.c.attempts + 1,
                    )
                )
                if result.rowcount == 1:
                    claimed.append(outbox_id)
            if not claimed:
                return []
            rows = (await conn.execute(_CLAIMED.where(t.outbox.c.id.in_(claimed)))).all()
        return [
            OutboxItem(
                id=row.id,
                subscription_id=row.subscription_id,
                space_key=row.space_key,
                uri=row.uri,
                order_id=row.order_id,
                flow_key=row.flow_key,
                order=row.order,
                event=row.event,
                delivery_id=row.delivery_id,
                body=row.body,
                attempt=row.attempts,
                budget_attempt=row.attempts - row.budget_base,
                created_at=row.created_at,
            )
            for row in sorted(rows, key=lambda r: r.id)
        ]

    async def finish(self, item: OutboxItem, owner: str, done: Delivered, now: datetime) -> bool:
        """Record how an attempt ended, if ``owner`` still holds the row's lease."""
        if done.ok:
            status = OutboxStatus.DELIVERED
        elif done.retry_at is not None:
            status = OutboxStatus.PENDING
        else:
            status = OutboxStatus.GAVE_UP
        values: dict[str, Any] = {
            "status": status.value,
            "lease_owner": None,
            "lease_expires_at": None,
            "body": func.coalesce(t.outbox.c.body, done.body),
            "status_code": done.status_code,
            "error": done.error,
            "request": done.request,
            "response_body": done.response_body,
            "ended_at": None if status is OutboxStatus.PENDING else now,
        }
        if done.retry_at is not None:
            values["due_at"] = done.retry_at
        async with self.db.transaction() as conn:
            result = await conn.execute(
                update(t.outbox)
                .where(
                    t.outbox.c.id == item.id,
                    t.outbox.c.lease_owner == owner,
                    t.outbox.c.attempts == item.attempt,
                )
                .values(values)
            )
            if result.rowcount != 1:
                return False
            subscription = t.subscriptions.c.id == item.subscription_id
            if status is OutboxStatus.DELIVERED:
                await conn.execute(
                    update(t.subscriptions)
                    .where(subscription, t.subscriptions.c.failures > 0)
                    .values(failures=0, failing_since=None)
                )
            elif status is OutboxStatus.GAVE_UP:
                await conn.execute(
                    update(t.subscriptions)
                    .where(subscription)
                    .values(
                        failures=t.subscriptions.c.failures + 1,
                        # The earliest ending wins: attempts end concurrently and may commit
                        # out of order, and ``enable(redeliver=True)`` reads everything that
                        # ended since this moment.
                        failing_since=case(
                            (t.subscriptions.c.failing_since.is_(None), now),
                            (t.subscriptions.c.failing_since > now, now),
                            else_=t.subscriptions.c.failing_since,
                        ),
                    )
                )
                await conn.execute(
                    update(t.subscriptions)
                    .where(
                        subscription,
                        t.subscriptions.c.enabled,
                        t.subscriptions.c.failures >= DISABLE_AFTER,
                    )
                    .values(enabled=False, disabled_at=now)
                )
        return True


def _again(now: datetime) -> dict[str, Any]:
    """The columns that put an ended outbox row back in line, with a fresh retry budget."""
    return {
        "status": OutboxStatus.PENDING.value,
        "due_at": now,
        "budget_base": t.outbox.c.attempts,
        "lease_owner": None,
        "lease_expires_at": None,
        "ended_at": None,
    }


class _Row:
    """A dict read like a result row."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
