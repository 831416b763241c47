"""The engine's side of storage: claim due tasks under a lease, record outcomes, fire timers.

We never hold a transaction across a handler call: a claim commits, the handler runs, and its
outcome commits later in a batch with other outcomes (group commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, bindparam, cast, exists, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from ordermill.flows.lifecycle import OUTCOME_OF_STATUS, AttemptEnded, Decision
from ordermill.flows.model import FlowDefinition
from ordermill.flows.status import OrderStatus, TaskStatus
from ordermill.flows.work import AttemptRecord, ClaimedTask, Completion
from ordermill.storage import direct, writer
from ordermill.storage import tables as t
from ordermill.storage.advance import UnitOfWork, feedback_token
from ordermill.storage.assets import insert_assets
from ordermill.storage.bulk import insert_many
from ordermill.times import iso

# The hot statements are built once; ``direct`` compiles each once per dialect and runs it
# through the driver.
_NOW = bindparam("now", type_=t.UTCDateTime)
_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_DUE = (
    select(t.tasks.c.id, t.tasks.c.status, t.tasks.c.attempts)
    .where(
        t.IN_RUNNABLE_INDEX,
        t.tasks.c.status == TaskStatus.PENDING.value,
        t.tasks.c.due_at <= _NOW,
    )
    .order_by(t.tasks.c.due_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
# A lost attempt of a paused order waits for the resume: taking it over starts it again.
_PAUSED = exists().where(t.orders.c.id == t.tasks.c.order_id, t.orders.c.paused_at.is_not(None))
_EXPIRED = (
    select(t.tasks.c.id, t.tasks.c.status, t.tasks.c.attempts)
    .where(t.IN_LEASE_INDEX, t.tasks.c.lease_expires_at <= _NOW, ~_PAUSED)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)


def _lease(chosen: Any) -> Any:
    """Mark the ``chosen`` tasks RUNNING under our lease, returning what a claim needs."""
    return (
        update(t.tasks)
        .where(t.tasks.c.id.in_(chosen))
        .values(
            status=TaskStatus.RUNNING.value,
            attempts=t.tasks.c.attempts + 1,
            lease_owner=bindparam("owner"),
            lease_expires_at=bindparam("until", type_=t.UTCDateTime),
            updated_at=_NOW,
        )
        .returning(
            t.tasks.c.id,
            t.tasks.c.order_id,
            t.tasks.c.stage_key,
            t.tasks.c.task_key,
            t.tasks.c.handler_key,
            t.tasks.c.attempts,
            t.tasks.c.budget_base,
            t.tasks.c.delivery_id,
            t.tasks.c.delivery_epoch,
            t.tasks.c.created_at,
        )
    )


_CLAIM = _lease(_IDS)
_LOAD_ORDERS = select(
    t.orders.c.id,
    t.orders.c.space_key,
    t.orders.c.flow_key,
    t.orders.c.flow_id,
    t.orders.c.flow_version,
    t.orders.c.body,
    t.orders.c.revision,
    exists().where(t.order_assets.c.order_id == t.orders.c.id).label("has_assets"),
).where(t.orders.c.id.in_(_IDS))

# PostgreSQL: pick, lease and read the due tasks with their orders in one statement. The
# orders' columns come with it, and whether an order has assets (so the assets are read only
# for the orders that have some).
_PICK = _DUE.with_only_columns(t.tasks.c.id)
_LEASED = _lease(_PICK).cte("leased")
# The claim's timeline entries are written by the same statement, so a claim is one
# statement in autocommit: atomic on its own, and an empty claim costs that one statement.
_LOGGED = (
    insert(t.events)
    .from_select(
        ["order_id", "at", "type", "task_key", "data"],
        select(
            _LEASED.c.order_id,
            _NOW,
            literal("task.running"),
            _LEASED.c.task_key,
            cast(func.json_build_object("attempt", _LEASED.c.attempts), JSONB),
        ),
    )
    .cte("logged")
)
_CLAIM_DUE = (
    select(
        _LEASED,
        t.orders.c.space_key,
        t.orders.c.flow_key,
        t.orders.c.flow_id,
        t.orders.c.flow_version,
        t.orders.c.body,
        t.orders.c.revision,
        exists()
        .where(t.order_assets.c.order_id == _LEASED.c.order_id)
        .correlate(_LEASED)
        .label("has_assets"),
    )
    .join_from(_LEASED, t.orders, t.orders.c.id == _LEASED.c.order_id)
    .add_cte(_LOGGED)
)


async def claim_due(
    conn: AsyncConnection, now: datetime, owner: str, lease: timedelta, limit: int
) -> list[Any]:
    """PostgreSQL: lease up to ``limit`` due PENDING tasks with their orders, and log them."""
    params = {"owner": owner, "until": now + lease, "now": now, "limit": limit}
    return await direct.rows(conn, _CLAIM_DUE, params)


async def select_claimable(
    conn: AsyncConnection, now: datetime, limit: int, *, expired: bool = True
) -> list[Any]:
    """Due PENDING tasks, then RUNNING tasks whose lease expired; locked, skipping locked rows."""
    due = await direct.rows(conn, _DUE, {"now": now, "limit": limit})
    if expired and len(due) < limit:
        due += await direct.rows(conn, _EXPIRED, {"now": now, "limit": limit - len(due)})
    return due


async def claim_rows(
    uow: UnitOfWork, owner: str, lease: timedelta, candidates: list[Any]
) -> list[Any]:
    """Mark the candidates RUNNING under our lease; record lost attempts of expired leases."""
    conn, now = uow.conn, uow.now
    ids = [row.id for row in candidates]
    lost = [row for row in candidates if row.status == TaskStatus.RUNNING.value]
    if lost:
        # The attempt of a worker that died is logged as lost and does not use up the budget.
        await conn.execute(
            update(t.tasks)
            .where(t.tasks.c.id.in_([row.id for row in lost]))
            .values(budget_base=t.tasks.c.budget_base + 1)
        )
        await insert_many(
            conn,
            t.attempts,
            [
                AttemptRecord(
                    number=row.attempts,
                    started_at=now,
                    ended_at=now,
                    outcome="lost",
                    error_class="LeaseExpired",
                    error_message="the worker running this attempt stopped before it finished",
                ).row(row.id)
                for row in lost
            ],
        )
    params = {"ids": ids, "owner": owner, "until": now + lease, "now": now}
    claimed = await direct.rows(conn, _CLAIM, params)
    for row in claimed:
        uow.event(
            row.order_id, "task.running", task_key=row.task_key, data={"attempt": row.attempts}
        )
    return claimed


async def load_orders(conn: AsyncConnection, order_ids: set[str]) -> dict[str, Any]:
    rows = await direct.rows(conn, _LOAD_ORDERS, {"ids": list(order_ids)})
    return {row.id: row for row in rows}


_FAILURE_STARTS = (
    select(t.events.c.data)
    .where(
        t.events.c.order_id == bindparam("order_id"),
        t.events.c.type.in_(("stage.started", "stage.restarted")),
    )
    .order_by(t.events.c.id.desc())
)
_TASK_ERROR = select(t.tasks.c.error).where(
    t.tasks.c.order_id == bindparam("order_id"), t.tasks.c.task_key == bindparam("task_key")
)


async def failure_trigger(conn: AsyncConnection, order_id: str) -> dict[str, Any]:
    """What a failure stage task tells its connector: the event that started the stage run it
    belongs to, the task whose end caused it and that task's error."""
    trigger: dict[str, Any] = {"event": "order.failed", "taskKey": None}
    for (data,) in await conn.execute(_FAILURE_STARTS, {"order_id": order_id}):
        if data and data.get("failureStage"):
            trigger = dict(data["trigger"])
            break
    error = None
    if trigger.get("taskKey") is not None:
        params = {"order_id": order_id, "task_key": trigger["taskKey"]}
        error = (await conn.execute(_TASK_ERROR, params)).scalar()
    return {**trigger, "error": error}


_AMENDMENTS = (
    select(t.events.c.data)
    .where(t.events.c.order_id == bindparam("order_id"), t.events.c.type == "order.amended")
    .order_by(t.events.c.id.desc())
)


async def amendment_of(
    conn: AsyncConnection, order_id: str, task_key: str
) -> dict[str, Any] | None:
    """``context.amendment`` for a task that runs again because the order was amended: the
    newest amendment that resent it, if it is also the newest amendment at all."""
    for (data,) in await conn.execute(_AMENDMENTS, {"order_id": order_id}):
        if data and task_key in data.get("resend", ()):
            return {"revision": data["revision"], "changed": data["changed"]}
        return None
    return None


def make_claimed(
    row: Any, order: Any, flow: FlowDefinition, owner: str, now: datetime, secret: str
) -> ClaimedTask:
    return ClaimedTask(
        task_id=row.id,
        order_id=row.order_id,
        space_key=order.space_key,
        flow_key=order.flow_key,
        flow_version=order.flow_version,
        stage_key=row.stage_key,
        task_key=row.task_key,
        handler_key=row.handler_key,
        attempt=row.attempts,
        budget_attempt=row.attempts - row.budget_base,
        delivery_id=row.delivery_id,
        delivery_epoch=row.delivery_epoch or row.created_at,
        feedback_token=feedback_token(secret, row.delivery_id),
        order=order.body,
        flow=flow,
        definition=flow.task_definition(row.task_key),
        lease_owner=owner,
        claimed_at=now,
    )


_EVENT_OF_STATUS = {
    TaskStatus.SUCCEEDED: "task.succeeded",
    TaskStatus.WAITING: "task.waiting",
    TaskStatus.PENDING: "task.retry_scheduled",
    TaskStatus.FAILED: "task.failed",
    TaskStatus.TIMED_OUT: "task.timed_out",
}


async def record_completions(
    uow: UnitOfWork, completions: Sequence[Completion], *, last: bool = False
) -> list[bool]:
    """Apply a batch of outcomes through the writer in a fixed number of statements.

    An outcome is applied only while its worker still holds the task's lease; a stale one
    (the lease passed to another worker) is reported False and changes nothing. ``last``: as
    for ``writer.apply``.
    """
    changes = [
        writer.Change(
            done.task.order_id,
            done.task.flow,
            AttemptEnded(done.task.task_key, OUTCOME_OF_STATUS[done.status]),
            values=_task_values(done),
            events=(
                writer.Entry(
                    _EVENT_OF_STATUS[done.status], done.task.task_key, data=_event_data(done)
                ),
            ),
            lease=writer.Lease(done.task.task_id, done.task.lease_owner, done.task.attempt),
        )
        for done in completions
    ]
    answers = await writer.apply(uow, changes, last=last)
    applied = [isinstance(answer, Decision) for answer in answers]
    fresh = [done for done, ok in zip(completions, applied, strict=True) if ok]
    uow.append(t.attempts, [done.attempt.row(done.task.task_id) for done in fresh])
    for done in fresh:
        await insert_assets(uow, done.task.order_id, done.task.task_key, done.assets)
    return applied


def _task_values(done: Completion) -> dict[str, Any]:
    """What the attempt stores besides the status (the writer sets that)."""
    values: dict[str, Any] = {"due_at": done.due_at, "wake": done.wake, "error": done.error}
    if done.status is TaskStatus.WAITING:
        values["heartbeat_ms"] = done.heartbeat_ms
    if done.result is not None:
        values["result"] = done.result
    if done.question is not None:
        values["result"] = {**(done.result or {}), "confirmation": done.question.wire()}
        values["asks_question"] = True
    return values


def _event_data(done: Completion) -> dict[str, Any]:
    data: dict[str, Any] = {"attempt": done.task.attempt}
    if done.error:
        data["error"] = done.error.get("message")
    if done.status is TaskStatus.PENDING and done.due_at is not None:
        data["retryAt"] = iso(done.due_at)
    if done.status is TaskStatus.SUCCEEDED and isinstance((done.result or {}).get("message"), str):
        data["message"] = (done.result or {})["message"]  # a handler's note for the timeline
    return data


async def extend_leases(
    conn: AsyncConnection, owner: str, task_ids: list[int], until: datetime
) -> None:
    await conn.execute(
        update(t.tasks)
        .where(
            t.tasks.c.id.in_(task_ids),
            t.tasks.c.lease_owner == owner,
            t.tasks.c.status == TaskStatus.RUNNING.value,
        )
        .values(lease_expires_at=until)
    )


_LIVE = [s.value for s in TaskStatus if s.is_active]
_STRANDED = (
    select(t.orders.c.id, t.orders.c.flow_id, t.orders.c.flow_version)
    .where(
        t.orders.c.status == OrderStatus.IN_PROGRESS.value,
        ~exists().where(t.tasks.c.order_id == t.orders.c.id, t.tasks.c.status.in_(_LIVE)),
    )
    .order_by(t.orders.c.id)
    .limit(bindparam("limit"))
    .with_for_update(of=t.orders, skip_locked=True)
)


async def stranded_orders(conn: AsyncConnection, limit: int) -> list[Any]:
    """Orders IN_PROGRESS with nothing PENDING, RUNNING or WAITING (timers are WAITING)."""
    return list((await conn.execute(_STRANDED, {"limit": limit})).all())
