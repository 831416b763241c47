"""The one writer of task and order statuses: lock, read, decide, write, in one transaction.

``apply`` takes a batch of lifecycle events for any number of orders. It locks the orders'
rows in id order (then the tasks whose lease an outcome holds), so two writers never deadlock
and never decide on state the other is changing; it reads each order's state, asks the pure core
(``ordermill.flows.lifecycle``) what every event means, and writes the task changes, the new
tasks, the orders' statuses and versions, and the timeline, in a fixed number of statements
for the whole batch (group commit). An event the core refuses changes nothing.

Claiming (PENDING to RUNNING under a lease) is the one status write elsewhere
(``storage/work.py``): it changes nothing the planner decides on, so it takes no order lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BindParameter, bindparam, case, select, update

from ordermill.flows.lifecycle import (
    AttemptEnded,
    Decision,
    Event,
    Operator,
    OperatorAction,
    OrderState,
    Refusal,
    Restart,
    decide,
)
from ordermill.flows.model import FlowDefinition
from ordermill.flows.planner import TaskRef
from ordermill.flows.status import OrderStatus, TaskStatus
from ordermill.storage import direct
from ordermill.storage import tables as t
from ordermill.storage.advance import UnitOfWork, feedback_token
from ordermill.storage.bulk import Part, insert_many, update_part
from ordermill.storage.ids import new_id
from ordermill.storage.spaces import hash_secret
from ordermill.storage.subscriptions import SUBSCRIBED

_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_LOCK_ORDERS = (
    select(
        t.orders.c.id,
        t.orders.c.status,
        t.orders.c.version,
        t.orders.c.paused_at,
        t.orders.c.flow_version,
        SUBSCRIBED,
    )
    .where(t.orders.c.id.in_(_IDS))
    .order_by(t.orders.c.id)
    .with_for_update(of=t.orders)
)
# Read after the order locks, so every status written under them is seen. Only claims
# (PENDING to RUNNING, nothing the planner tells apart) may move concurrently; this read
# does not block them. The same statement locks the tasks whose lease an outcome claims to
# hold (a reclaim, which takes no order lock, then waits) and reads those as locked: the
# locking CTE sees a row's latest version, where the rest of the statement sees its snapshot.
_LEASED = (
    select(t.tasks.c.id, t.tasks.c.status, t.tasks.c.attempts, t.tasks.c.lease_owner)
    .where(t.tasks.c.id.in_(bindparam("leased", expanding=True)))
    .order_by(t.tasks.c.id)
    .with_for_update()
    .cte("leased")
    .prefix_with("MATERIALIZED", dialect="postgresql")
)
_HELD = _LEASED.c.id.is_not(None)
_TASK_STATES = (
    select(
        t.tasks.c.id,
        t.tasks.c.order_id,
        t.tasks.c.task_key,
        case((_HELD, _LEASED.c.status), else_=t.tasks.c.status).label("status"),
        case((_HELD, _LEASED.c.attempts), else_=t.tasks.c.attempts).label("attempts"),
        case((_HELD, _LEASED.c.lease_owner), else_=t.tasks.c.lease_owner).label("lease_owner"),
    )
    .select_from(t.tasks.outerjoin(_LEASED, _LEASED.c.id == t.tasks.c.id))
    .where(t.tasks.c.order_id.in_(_IDS))
)
_ORDER_STATUS = (
    update(t.orders)
    .where(t.orders.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        updated_at=bindparam("b_now", type_=t.UTCDateTime),
        ended_at=bindparam("b_ended_at", type_=t.UTCDateTime),
        version=t.orders.c.version + 1,
    )
)
_ORDER_VERSION = (
    update(t.orders)
    .where(t.orders.c.id == bindparam("b_id"))
    .values(updated_at=bindparam("b_now", type_=t.UTCDateTime), version=t.orders.c.version + 1)
)
# A paused order's live tasks keep their due time aside (due_at NULL is never claimed or fired);
# resuming puts it back, so what fell due meanwhile runs or fires at once.
_HELD = t.tasks.c.status.in_([TaskStatus.PENDING.value, TaskStatus.WAITING.value])
_HOLD = (
    update(t.tasks)
    .where(t.tasks.c.order_id.in_(_IDS), _HELD, t.tasks.c.due_at.is_not(None))
    .values(held_due_at=t.tasks.c.due_at, due_at=None)
)
_RELEASE = (
    update(t.tasks)
    .where(t.tasks.c.order_id.in_(_IDS), _HELD, t.tasks.c.held_due_at.is_not(None))
    .values(due_at=t.tasks.c.held_due_at, held_due_at=None)
)
_RENAME_TASK = (
    update(t.tasks)
    .where(t.tasks.c.id == bindparam("b_id"))
    .values(task_key=bindparam("b_key"), updated_at=bindparam("b_now", type_=t.UTCDateTime))
)
# The files an archived task made follow it to its new key, so an asset's task_key always
# names the task row that made it.
_RENAME_ASSETS = (
    update(t.order_assets)
    .where(
        t.order_assets.c.order_id == bindparam("b_order"),
        t.order_assets.c.task_key == bindparam("b_old"),
    )
    .values(task_key=bindparam("b_key"))
)
_BUMP_VERSION = "version = orders.version + 1"
_ORDER_COLUMN = {
    "b_id": "id",
    "b_status": "status",
    "b_now": "updated_at",
    "b_ended_at": "ended_at",
}
_BY_ACTOR = ("order.", "task.redelivery", "task.skipped")  # entries that name who moved the order
_FINAL_ORDER = (OrderStatus.SUCCESS, OrderStatus.FAILURE, OrderStatus.CANCELLED)
_TIME_COLUMNS = {"due_at", "updated_at", "ended_at", "delivery_epoch", "lease_expires_at"}
_TIME_COLUMNS |= {"held_due_at"}
_JSON_COLUMNS = {"result", "error"}


@dataclass
class TaskRow:
    id: int
    status: TaskStatus
    attempts: int
    lease_owner: str | None


@dataclass
class LockedOrder:
    """An order's state as read under its row lock; ``fresh`` when inserted in this unit.

    ``flow_version`` is the version the order runs on: a change decides against that version's
    flow, read under the same lock, so a restart that committed meanwhile is never missed."""

    state: OrderState
    tasks: dict[str, TaskRow] = field(default_factory=dict)
    fresh: bool = False
    flow_version: int = 0


@dataclass(frozen=True)
class Lease:
    task_id: int
    owner: str
    attempt: int


@dataclass(frozen=True)
class Entry:
    """A timeline entry a change brings besides the core's (written only if it applies)."""

    type: str
    task_key: str | None = None
    data: dict[str, Any] | None = None
    actor: str | None = None


@dataclass(frozen=True)
class Change:
    """One lifecycle event for one order, with what its task stores besides its status."""

    order_id: str
    flow: FlowDefinition
    event: Event
    values: Mapping[str, Any] = field(default_factory=dict)  # result, error, due_at, wake
    events: tuple[Entry, ...] = ()
    actor: str = "engine"  # who moved the order, for its order.* entries
    lease: Lease | None = None  # the lease an attempt's outcome holds
    # Columns of the order's row the change sets when it applies (an amendment's new content).
    order_values: Mapping[str, Any] = field(default_factory=dict)


async def lock_orders(
    uow: UnitOfWork, order_ids: Sequence[str], leased: Sequence[int] = ()
) -> dict[str, LockedOrder]:
    """Lock the orders' rows in id order (then the ``leased`` tasks), and read their state."""
    await uow.write_deferred()
    ids = sorted(set(order_ids))
    orders = {}
    for row in await direct.rows(uow.conn, _LOCK_ORDERS, {"ids": ids}):
        orders[row.id] = (OrderStatus(row.status), row.paused_at is not None, row.flow_version)
        if not row.subscribed:
            uow.unsubscribed.add(row.id)
    tasks: dict[str, dict[str, TaskRow]] = {order_id: {} for order_id in orders}
    params = {"ids": ids, "leased": sorted(set(leased))}
    for row in await direct.rows(uow.conn, _TASK_STATES, params):
        tasks[row.order_id][row.task_key] = TaskRow(
            row.id, TaskStatus(row.status), row.attempts, row.lease_owner
        )
    return {
        order_id: LockedOrder(
            OrderState(status, {key: task.status for key, task in tasks[order_id].items()}, paused),
            tasks[order_id],
            flow_version=version,
        )
        for order_id, (status, paused, version) in orders.items()
    }


async def apply(
    uow: UnitOfWork,
    changes: Sequence[Change],
    locked: dict[str, LockedOrder] | None = None,
    *,
    last: bool = False,
) -> list[Decision | Refusal]:
    """Decide every change in turn and write all decisions; ``locked`` when already read.

    ``last``: nothing else in the unit reads the orders' or tasks' rows, except through this
    writer. On PostgreSQL their updates then go with the unit's last statement (one round trip
    fewer each); a later ``lock_orders`` in the unit writes them first."""
    if locked is None:
        leased = [change.lease.task_id for change in changes if change.lease is not None]
        locked = await lock_orders(uow, [change.order_id for change in changes], leased)
    batch = _Batch(uow, defer=last and uow.conn.dialect.name == "postgresql")
    answers: list[Decision | Refusal] = []
    for change in changes:
        order = locked.get(change.order_id)
        if order is None:
            answers.append(Refusal(f"there is no order {change.order_id!r}"))
            continue
        answer = _decide(change, order)
        if isinstance(answer, Decision):
            batch.add(change, order, answer)
        answers.append(answer)
    await batch.write()
    return answers


def _decide(change: Change, order: LockedOrder) -> Decision | Refusal:
    if change.lease is not None:
        assert isinstance(change.event, AttemptEnded)
        task = order.tasks.get(change.event.task_key)
        held = (TaskStatus.RUNNING, change.lease.owner, change.lease.attempt)
        if task is None or (task.status, task.lease_owner, task.attempts) != held:
            return Refusal("the attempt's lease passed to another worker")
    return decide(change.flow, order.state, change.event)


class _Batch:
    """The writes of a batch of decisions, made in a fixed number of statements."""

    def __init__(self, uow: UnitOfWork, *, defer: bool = False) -> None:
        self.uow = uow
        self.defer = defer  # PostgreSQL: updates of tasks and orders to the unit's flush
        self.tasks: dict[int, dict[str, Any]] = {}
        self.new_tasks: list[dict[str, Any]] = []
        self.orders: dict[str, OrderStatus | None] = {}  # the new status, None: unchanged
        self.fresh: set[str] = set()
        self.paused: dict[str, tuple[bool, bool]] = {}  # paused before the batch, and after
        self.renames: list[dict[str, Any]] = []
        self.asset_renames: list[dict[str, Any]] = []
        # what an operator's action or an amendment sets besides the status
        self.order_values: dict[str, dict[str, Any]] = {}

    def add(self, change: Change, order: LockedOrder, decision: Decision) -> None:
        uow = self.uow
        for entry in change.events:
            uow.event(
                change.order_id,
                entry.type,
                task_key=entry.task_key,
                actor=entry.actor,
                data=entry.data,
            )
        for moved in decision.changes:
            task = order.tasks[moved.task_key]
            values = self.tasks.setdefault(task.id, {})
            values.update(_columns(uow, task, moved.old, moved.new))
            if moved.task_key == getattr(change.event, "task_key", None):
                values.update(change.values)
            if decision.state.paused and moved.new in (TaskStatus.PENDING, TaskStatus.WAITING):
                values.update(held_due_at=values.get("due_at"), due_at=None)
            if moved.new is TaskStatus.PENDING and moved.old.is_ended:
                uow.new_tasks += 1
            task.status = moved.new
        for note in decision.events:
            actor = change.actor if note.type.startswith(_BY_ACTOR) else None
            data = None if note.data is None else dict(note.data)
            uow.event(change.order_id, note.type, task_key=note.task_key, actor=actor, data=data)
        for key, archived in decision.archive:
            task = order.tasks.pop(key)
            order.tasks[archived] = task
            self.renames.append({"b_id": task.id, "b_key": archived, "b_now": uow.now})
            self.asset_renames.append({"b_order": change.order_id, "b_old": key, "b_key": archived})
        for ref in decision.start:
            row = _new_task_row(uow, change.order_id, change.flow, ref)
            if decision.state.paused:
                row.update(held_due_at=row["due_at"], due_at=None)
            self.new_tasks.append(row)
            order.tasks[ref.task_key] = TaskRow(-1, TaskStatus.PENDING, 0, None)
        before = self.paused.get(change.order_id, (order.state.paused,))[0]
        self.paused[change.order_id] = (before, decision.state.paused)
        self._order_values(change, order, decision)
        self.orders.setdefault(change.order_id, None)
        if decision.state.status is not order.state.status:
            self.orders[change.order_id] = decision.state.status
        if order.fresh:
            self.fresh.add(change.order_id)
        order.state = decision.state

    def _order_values(self, change: Change, order: LockedOrder, decision: Decision) -> None:
        """The order columns an operator's action or an amendment sets besides its status."""
        values = self.order_values.setdefault(change.order_id, {})
        values.update(change.order_values)
        event = change.event
        if decision.state.paused and not order.state.paused:
            assert isinstance(event, OperatorAction)
            values.update(
                paused_at=self.uow.now, paused_by=change.actor, paused_reason=event.reason
            )
        elif order.state.paused and not decision.state.paused:
            values.update(paused_at=None, paused_by=None, paused_reason=None)
        if isinstance(event, OperatorAction) and event.action is Operator.CANCEL:
            values["cancel_reason"] = event.reason
        if isinstance(event, Restart):
            values.update(
                flow_version=event.to_version,
                cancel_reason=None,
                restart={
                    "at": self.uow.now.isoformat().replace("+00:00", "Z"),
                    "by": change.actor,
                    "fromVersion": event.from_version,
                    "toVersion": event.to_version,
                    "from": "start" if event.from_start else "failed",
                    "reason": event.reason,
                },
            )

    async def write(self) -> None:
        uow = self.uow
        for order_id, values in self.order_values.items():
            if "restart" in values:
                query = select(t.orders.c.restarts).where(t.orders.c.id == order_id)
                earlier = (await uow.conn.execute(query)).scalar() or []
                values["restarts"] = [*earlier, values.pop("restart")]
            if values:
                statement = update(t.orders).where(t.orders.c.id == order_id).values(**values)
                await uow.conn.execute(statement)
        if self.renames:
            await uow.conn.execute(_RENAME_TASK, self.renames)
            await uow.conn.execute(_RENAME_ASSETS, self.asset_renames)
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for task_id, values in self.tasks.items():
            shapes.setdefault(tuple(sorted(values)), []).append({"b_id": task_id, **values})
        for columns, rows in shapes.items():
            if self.defer or (len(rows) > 1 and uow.conn.dialect.name == "postgresql"):
                await self._update(update_part(uow.conn, t.tasks, [_keyed(row) for row in rows]))
            else:
                await direct.many(uow.conn, _update_tasks(columns), [_bound(row) for row in rows])
        if self.new_tasks:
            ids = await insert_many(uow.conn, t.tasks, self.new_tasks, ids_by="delivery_id")
            for row, task_id in zip(self.new_tasks, ids, strict=True):
                uow.created_tasks.append({**row, "id": task_id})
            uow.new_tasks += len(self.new_tasks)
        moved = [
            {
                "b_id": order_id,
                "b_status": status.value,
                "b_now": uow.now,
                "b_ended_at": uow.now if status in _FINAL_ORDER else None,
            }
            for order_id, status in self.orders.items()
            if status is not None
        ]
        touched = [
            {"b_id": order_id, "b_now": uow.now}
            for order_id, status in self.orders.items()
            if status is None and order_id not in self.fresh
        ]
        for rows, single in ((moved, _ORDER_STATUS), (touched, _ORDER_VERSION)):
            if rows and (self.defer or (len(rows) > 1 and uow.conn.dialect.name == "postgresql")):
                plain = [{_ORDER_COLUMN[key]: value for key, value in row.items()} for row in rows]
                await self._update(update_part(uow.conn, t.orders, plain, extra=_BUMP_VERSION))
            elif rows:
                await direct.many(uow.conn, single, rows)
        held = sorted(o for o, (was, now) in self.paused.items() if now and not was)
        released = sorted(o for o, (was, now) in self.paused.items() if was and not now)
        if held:
            await uow.conn.execute(_HOLD, {"ids": held})
        if released:
            await uow.conn.execute(_RELEASE, {"ids": released})

    async def _update(self, part: Part) -> None:
        if self.defer:
            self.uow.deferred.append(part)
        else:
            await direct.pg_rows(self.uow.conn, part.sql, (part.records,))


def _new_task_row(
    uow: UnitOfWork, order_id: str, flow: FlowDefinition, ref: TaskRef
) -> dict[str, Any]:
    handler_key = flow.all_stages[ref.stage_index].task_definition(ref.task_key).handler_key
    delivery_id = new_id("dlv_")
    return {
        "order_id": order_id,
        "stage_index": ref.stage_index,
        "stage_key": ref.stage_key,
        "task_key": ref.task_key,
        "handler_key": handler_key,
        "status": TaskStatus.PENDING.value,
        "attempts": 0,
        "budget_base": 0,
        "due_at": uow.now,
        "delivery_id": delivery_id,
        "delivery_epoch": uow.now,
        "feedback_token_hash": hash_secret(feedback_token(uow.token_secret, delivery_id)),
        "result": None,
        "asks_question": False,
        "error": None,
        "created_at": uow.now,
        "updated_at": uow.now,
        "ended_at": None,
    }


def _columns(uow: UnitOfWork, task: TaskRow, old: TaskStatus, new: TaskStatus) -> dict[str, Any]:
    """The columns a status change sets, whatever the event."""
    values: dict[str, Any] = {
        "status": new.value,
        "updated_at": uow.now,
        "ended_at": uow.now if new.is_ended else None,
    }
    if old is TaskStatus.RUNNING and new is not TaskStatus.RUNNING:
        values.update(lease_owner=None, lease_expires_at=None)
    if new is TaskStatus.PENDING and old.is_ended:
        # An operator runs an ended task again: a fresh budget, a new delivery epoch.
        values.update(
            budget_base=task.attempts, delivery_epoch=uow.now, due_at=uow.now, wake=None, error=None
        )
    if new.is_ended:
        values.update(due_at=None, wake=None)
    if new is TaskStatus.CANCELLED:
        values.update(lease_owner=None, lease_expires_at=None)
    return values


def _bound(row: dict[str, Any]) -> dict[str, Any]:
    return {("b_id" if key == "b_id" else f"v_{key}"): value for key, value in row.items()}


def _keyed(row: Mapping[str, Any]) -> dict[str, Any]:
    return {("id" if key == "b_id" else key): value for key, value in row.items()}


_UPDATES: dict[tuple[str, ...], Any] = {}


def _update_tasks(columns: tuple[str, ...]) -> Any:
    """One UPDATE per set of columns, built once (so its cache key is computed once)."""
    statement = _UPDATES.get(columns)
    if statement is None:
        values: dict[str, Any] = {}
        for column in columns:
            if column in _TIME_COLUMNS:
                values[column] = bindparam(f"v_{column}", type_=t.UTCDateTime)
            elif column in _JSON_COLUMNS:
                values[column] = bindparam(f"v_{column}", type_=t.Json)
            else:
                values[column] = bindparam(f"v_{column}")
        statement = update(t.tasks).where(t.tasks.c.id == bindparam("b_id")).values(**values)
        _UPDATES[columns] = statement
    return statement
