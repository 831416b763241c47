"""Orders: idempotent intake, reading, listing, and their timelines and delivery logs."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, Select, String, any_, bindparam, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect

from ordermill.errors import Conflict, NotFound
from ordermill.flows.explain import OrderFacts, Pause, TaskFacts
from ordermill.flows.order import earliest_deadline, order_value
from ordermill.flows.status import OrderStatus, TaskStatus
from ordermill.jsoncodec import dumps
from ordermill.storage import direct
from ordermill.storage import tables as t
from ordermill.storage.advance import UnitOfWork
from ordermill.storage.bulk import records, recordset
from ordermill.storage.search import fts_phrase, matching_ids, search_row, stored_order_first
from ordermill.storage.subscriptions import SUBSCRIBED, SUBSCRIBED_SQL


@dataclass(frozen=True)
class TaskView:
    id: int
    order_id: str
    key: str
    stage_key: str
    stage_index: int
    handler_key: str
    status: TaskStatus
    attempts: int
    due_at: datetime | None
    delivery_id: str
    result: Any
    error: Any
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    asks_question: bool = False  # it waits, or waited, for a person's answer
    wake: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    held_due_at: datetime | None = None  # its due time, kept aside while the order is paused


@dataclass(frozen=True)
class PauseView:
    at: datetime
    by: str | None
    reason: str | None


@dataclass(frozen=True)
class OrderView:
    id: str
    space_key: str
    flow_key: str
    flow_id: int
    flow_version: int
    third_party_order_id: str
    status: OrderStatus
    body: dict[str, Any]
    value: float
    deadline: datetime | None
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    tasks: tuple[TaskView, ...] = field(default=())
    pause: PauseView | None = None  # set while an operator holds the order
    cancel_reason: str | None = None
    restarts: tuple[dict[str, Any], ...] = ()  # each move onto another version of the flow
    revision: int = 1  # the content's revision; one more per amendment


@dataclass(frozen=True)
class EventView:
    id: int
    at: datetime
    type: str
    task_key: str | None
    actor: str | None
    data: Any


@dataclass(frozen=True)
class AttemptView:
    number: int
    started_at: datetime
    ended_at: datetime
    outcome: str
    status_code: int | None
    latency_ms: float | None
    request: Any
    response_body: str | None
    error_class: str | None
    error_message: str | None


@dataclass(frozen=True)
class OrderFilter:
    status: Sequence[OrderStatus] = ()
    flow_key: str | None = None
    third_party_order_id: str | None = None
    search: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    deadline_from: datetime | None = None
    deadline_to: datetime | None = None


def body_hash(flow_key: str, body: dict[str, Any]) -> str:
    return hashlib.sha256(dumps([flow_key, body], sort_keys=True)).hexdigest()


def task_view(row: Any) -> TaskView:
    return TaskView(
        id=row.id,
        order_id=row.order_id,
        key=row.task_key,
        stage_key=row.stage_key,
        stage_index=row.stage_index,
        handler_key=row.handler_key,
        status=TaskStatus(row.status),
        attempts=row.attempts,
        due_at=row.due_at,
        delivery_id=row.delivery_id,
        result=row.result,
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        ended_at=row.ended_at,
        asks_question=row.asks_question,
        # (a task row built for a new order has none of these yet)
        wake=getattr(row, "wake", None),
        lease_owner=getattr(row, "lease_owner", None),
        lease_expires_at=getattr(row, "lease_expires_at", None),
        held_due_at=getattr(row, "held_due_at", None),
    )


def order_view(row: Any, tasks: Sequence[TaskView] = ()) -> OrderView:
    return OrderView(
        id=row.id,
        space_key=row.space_key,
        flow_key=row.flow_key,
        flow_id=row.flow_id,
        flow_version=row.flow_version,
        third_party_order_id=row.third_party_order_id,
        status=OrderStatus(row.status),
        body=row.body,
        value=row.value,
        deadline=row.deadline,
        created_at=row.created_at,
        updated_at=row.updated_at,
        ended_at=row.ended_at,
        tasks=tuple(tasks),
        pause=(
            None
            if row.paused_at is None
            else PauseView(row.paused_at, row.paused_by, row.paused_reason)
        ),
        cancel_reason=row.cancel_reason,
        restarts=tuple(row.restarts or ()),
        revision=getattr(row, "revision", 1),
    )


def filter_conditions(
    dialect: str, space_key: str | None, filters: OrderFilter
) -> list[ColumnElement[bool]]:
    """The conditions of a filter's search and time ranges, shared by every list of orders."""
    orders = t.orders.c
    found: list[ColumnElement[bool]] = []
    if filters.search:
        found.append(orders.id.in_(matching_ids(dialect, space_key, filters.search)))
    for col, low, high in (
        (orders.created_at, filters.created_from, filters.created_to),
        (orders.deadline, filters.deadline_from, filters.deadline_to),
    ):
        if low:
            found.append(col >= low)
        if high:
            found.append(col < high)
    return found


RANGE_CANDIDATES = 5_000
_ID_ARRAY = postgresql.ARRAY(String())  # one parameter, however many ids


def _has_range(filters: OrderFilter) -> bool:
    return any(
        (filters.created_from, filters.created_to, filters.deadline_from, filters.deadline_to)
    )


async def _within_range(
    conn: Any, query: Select[Any], space_key: str | None, filters: OrderFilter
) -> Select[Any]:
    """PostgreSQL: a list narrowed by a time range, taken from the range's own index.

    The planner takes a range's rows to be spread evenly through the id order, so for "newest
    first" it walks the primary key backwards and filters — through most of the table when the
    range lies in the past. When the range holds at most ``RANGE_CANDIDATES`` orders, their ids
    are read from the range's index first and the list is taken among those; a wider range is
    dense enough for the backward walk."""
    ranged = OrderFilter(
        created_from=filters.created_from,
        created_to=filters.created_to,
        deadline_from=filters.deadline_from,
        deadline_to=filters.deadline_to,
    )
    candidates = select(t.orders.c.id).where(*filter_conditions("postgresql", space_key, ranged))
    if space_key is not None:
        candidates = candidates.where(t.orders.c.space_key == space_key)
    ids = (await conn.execute(candidates.limit(RANGE_CANDIDATES + 1))).scalars().all()
    if len(ids) > RANGE_CANDIDATES:
        return query
    return query.where(t.orders.c.id == any_(bindparam("range_ids", list(ids), type_=_ID_ARRAY)))


class OrderReads:
    """Reading orders; mixed into the Store."""

    db: Any

    async def get_order(self, space_key: str | None, order_id: str) -> OrderView:
        """The order with its tasks; ``space_key`` None (an admin) reads any space."""
        query = select(t.orders).where(t.orders.c.id == order_id)
        if space_key is not None:
            query = query.where(t.orders.c.space_key == space_key)
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
            if row is None:
                raise NotFound(f"order {order_id!r} does not exist")
            task_rows = (
                await conn.execute(
                    select(t.tasks)
                    .where(t.tasks.c.order_id == order_id)
                    .order_by(t.tasks.c.stage_index, t.tasks.c.id)
                )
            ).all()
        return order_view(row, [task_view(r) for r in task_rows])

    async def find_order(self, space_key: str, third_party_order_id: str) -> OrderView | None:
        async with self.db.read() as conn:
            order_id = (
                await conn.execute(
                    select(t.orders.c.id).where(
                        t.orders.c.space_key == space_key,
                        t.orders.c.third_party_order_id == third_party_order_id,
                    )
                )
            ).scalar()
        return None if order_id is None else await self.get_order(space_key, order_id)

    async def list_orders(
        self, space_key: str | None, filters: OrderFilter, *, limit: int, after: str | None
    ) -> list[OrderView]:
        """Newest first; ``after`` is the id of the last order of the previous page.

        A search on SQLite reads the FTS index in the order orders were stored (see
        ``search.stored_order_first``); every other list reads an index in id order."""
        phrase = fts_phrase(self.db.dialect, filters.search)
        if phrase is not None:
            query = stored_order_first(phrase, space_key, after).limit(limit)
            filters = replace(filters, search=None)
            after = None
        else:
            query = select(t.orders).order_by(t.orders.c.id.desc()).limit(limit)
        if space_key is not None:
            query = query.where(t.orders.c.space_key == space_key)
        if filters.status:
            query = query.where(t.orders.c.status.in_([s.value for s in filters.status]))
        if filters.flow_key:
            query = query.where(t.orders.c.flow_key == filters.flow_key)
        if filters.third_party_order_id:
            query = query.where(t.orders.c.third_party_order_id == filters.third_party_order_id)
        query = query.where(*filter_conditions(self.db.dialect, space_key, filters))
        if after:
            query = query.where(t.orders.c.id < after)
        async with self.db.read() as conn:
            if self.db.dialect == "postgresql" and _has_range(filters):
                query = await _within_range(conn, query, space_key, filters)
            rows = (await conn.execute(query)).all()
        return [order_view(row) for row in rows]

    async def list_events(self, space_key: str | None, order_id: str) -> list[EventView]:
        await self.get_order(space_key, order_id)
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(t.events).where(t.events.c.order_id == order_id).order_by(t.events.c.id)
                )
            ).all()
        return [EventView(r.id, r.at, r.type, r.task_key, r.actor, r.data) for r in rows]

    async def list_attempts(
        self, space_key: str | None, order_id: str, task_key: str
    ) -> list[AttemptView]:
        order = await self.get_order(space_key, order_id)
        task = next((task for task in order.tasks if task.key == task_key), None)
        if task is None:
            raise NotFound(f"order {order_id!r} has no task {task_key!r}")
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(t.attempts)
                    .where(t.attempts.c.task_id == task.id)
                    .order_by(t.attempts.c.number)
                )
            ).all()
        return [
            AttemptView(
                r.number,
                r.started_at,
                r.ended_at,
                r.outcome,
                r.status_code,
                r.latency_ms,
                r.request,
                r.response_body,
                r.error_class,
                r.error_message,
            )
            for r in rows
        ]


_ORDER_CONSTANTS: dict[str, Any] = {
    "id": String(),
    "space_key": String(),
    "third_party_order_id": String(),
    "status": String(),
    "body": t.Json,
    "body_hash": String(),
    "value": Float(),
    "deadline": t.UTCDateTime(),
    "created_at": t.UTCDateTime(),
    "updated_at": t.UTCDateTime(),
}
# Built once per dialect: the statement's cache key is then computed once, not on every order.
# A resend (the same thirdPartyOrderId) inserts nothing and returns no row, like an unknown
# flow; the caller tells the two apart after its transaction, so one resend does not abort
# the other orders that share the transaction.
_ORDER_SOURCE = select(
    *(bindparam(f"o_{name}", type_=kind) for name, kind in _ORDER_CONSTANTS.items()),
    t.flows.c.id,
    t.flows.c.key,
    t.flows.c.current_version,
).where(
    t.flows.c.space_key == bindparam("o_space_key"),
    t.flows.c.key == bindparam("o_flow_key"),
    t.flows.c.deleted_at.is_(None),
)
_ORDER_COLUMNS = [*_ORDER_CONSTANTS, "flow_id", "flow_key", "flow_version"]
_RESEND = ["space_key", "third_party_order_id"]
_INSERT_ORDER_SQLITE = (
    sqlite_dialect.insert(t.orders)
    .from_select(_ORDER_COLUMNS, _ORDER_SOURCE)
    .on_conflict_do_nothing(index_elements=_RESEND)
    .returning(t.orders.c.flow_id, t.orders.c.flow_version, SUBSCRIBED)
)


@dataclass(frozen=True)
class NewOrder:
    """One order posted to the API, with the id it will have, waiting for its batch."""

    order_id: str
    space_key: str
    flow_key: str
    body: dict[str, Any]
    start: bool
    actor: str

    def columns(self, now: datetime) -> dict[str, Any]:
        """The order's row (without the flow's id and version, which the insert reads)."""
        status = OrderStatus.IN_PROGRESS if self.start else OrderStatus.CREATED
        return {
            "id": self.order_id,
            "space_key": self.space_key,
            "flow_key": self.flow_key,
            "third_party_order_id": self.body["thirdPartyOrderId"],
            "status": status.value,
            "body": self.body,
            "body_hash": body_hash(self.flow_key, self.body),
            "value": order_value(self.body),
            "deadline": earliest_deadline(self.body),
            "created_at": now,
            "updated_at": now,
        }


# PostgreSQL: a batch of orders in one statement, as one JSON array of records. The rows go in
# in the order of (space, third-party id), so two API processes whose batches share an order
# lock its key in the same order and cannot deadlock; of two equal ones in a batch the one
# posted first (``posted``, its place in the batch) inserts and the other, like any resend,
# inserts nothing.
_INTAKE_COLUMNS = (*_ORDER_CONSTANTS, "flow_key")
_INSERT_ORDERS = (
    "INSERT INTO orders (id, space_key, third_party_order_id, status, body, body_hash, value, "  # noqa: S608
    "deadline, created_at, updated_at, flow_id, flow_key, flow_version) "
    "SELECT v.id, v.space_key, v.third_party_order_id, v.status, v.body, v.body_hash, v.value, "
    "v.deadline, v.created_at, v.updated_at, flows.id, flows.key, flows.current_version "
    f"FROM {recordset(t.orders, _INTAKE_COLUMNS, 'posted integer')} "
    "JOIN flows ON flows.space_key = v.space_key AND flows.key = v.flow_key "
    "AND flows.deleted_at IS NULL "
    "ORDER BY v.space_key, v.third_party_order_id, v.posted "
    "ON CONFLICT (space_key, third_party_order_id) DO NOTHING "
    f"RETURNING id, flow_id, flow_version, {SUBSCRIBED_SQL}"
)


async def insert_orders(
    uow: UnitOfWork, orders: Sequence[NewOrder]
) -> list[tuple[int, int] | None]:
    """Insert new orders, each on its flow's current version, read in the same statement.

    Answers (flow id, version) per order, or None when the space has no such flow or already
    has an order with this third-party id.
    """
    conn = uow.conn
    pins: dict[str, tuple[int, int]] = {}
    if conn.dialect.name == "postgresql":
        rows = [{**order.columns(uow.now), "posted": n} for n, order in enumerate(orders)]
        written = await direct.pg_rows(conn, _INSERT_ORDERS, (records(rows),))
        for order_id, flow_id, flow_version, subscribed in written:
            pins[order_id] = (int(flow_id), int(flow_version))
            if not subscribed:
                uow.unsubscribed.add(order_id)
    else:
        for order in orders:
            params = {f"o_{name}": value for name, value in order.columns(uow.now).items()}
            for row in await direct.rows(conn, _INSERT_ORDER_SQLITE, params):
                pins[order.order_id] = (int(row.flow_id), int(row.flow_version))
                if not row.subscribed:
                    uow.unsubscribed.add(order.order_id)
    answers: list[tuple[int, int] | None] = []
    for order in orders:
        pin = pins.get(order.order_id)
        answers.append(pin)
        if pin is None:
            continue
        uow.searchable.append(search_row(order.order_id, order.space_key, order.body))
        uow.event(order.order_id, "order.created", actor=order.actor, data={"flowVersion": pin[1]})
        if order.start:
            uow.event(order.order_id, "order.started", actor=order.actor)
    return answers


def existing_or_conflict(
    existing: OrderView | None, flow_key: str, body: dict[str, Any]
) -> OrderView:
    """Resolve a duplicate third-party id: the same order again, or a conflict."""
    if existing is None:
        raise Conflict("the order was created concurrently and then vanished; try again")
    if body_hash(existing.flow_key, existing.body) != body_hash(flow_key, body):
        raise Conflict(
            f"an order with thirdPartyOrderId {body['thirdPartyOrderId']!r} already exists "
            "with a different body"
        )
    return existing


def order_facts(order: OrderView, progress: Mapping[str, tuple[str, datetime]]) -> OrderFacts:
    """What ``ordermill.flows.explain`` reads of an order; ``progress``: each task's last
    progress message and when it came."""
    tasks = []
    for task in order.tasks:
        result = task.result if isinstance(task.result, dict) else {}
        question = result.get("confirmation") if task.asks_question else None
        assignees = tuple(question.get("assignees") or ()) if isinstance(question, dict) else ()
        error = task.error.get("message") if isinstance(task.error, dict) else None
        message, at = progress.get(task.key, (None, None))
        tasks.append(
            TaskFacts(
                key=task.key,
                status=task.status,
                since=task.updated_at,
                due_at=task.due_at,
                held_due_at=task.held_due_at,
                wake=task.wake,
                error=error,
                lease_owner=task.lease_owner,
                lease_expires_at=task.lease_expires_at,
                asks_question=task.asks_question,
                assignees=assignees,
                last_progress=message,
                last_progress_at=at,
            )
        )
    pause = (
        None if order.pause is None else Pause(order.pause.at, order.pause.by, order.pause.reason)
    )
    return OrderFacts(order.status, tuple(tasks), order.body, pause)
