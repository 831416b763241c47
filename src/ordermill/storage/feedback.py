"""Connector feedback (the ``updateUrl``) and timers: how waiting tasks end.

Final feedback may arrive before the connector's HTTP answer; then it is stored unapplied and
applied as soon as the attempt's outcome is recorded, so it is never lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select, update

from ordermill.errors import Conflict, NotFound
from ordermill.flows.model import FlowDefinition
from ordermill.flows.status import OrderStatus, TaskStatus
from ordermill.flows.work import AssetRecord, Completion, Wake
from ordermill.storage import tables as t
from ordermill.storage.advance import UnitOfWork, advance_order
from ordermill.storage.assets import insert_assets
from ordermill.storage.spaces import hash_secret
from ordermill.times import iso

FINAL = {"success": TaskStatus.SUCCEEDED, "failure": TaskStatus.FAILED}


@dataclass(frozen=True)
class Feedback:
    status: str  # success | failure | progress
    message: str | None = None
    data: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None  # RFC 9457, with a failure
    assets: tuple[AssetRecord, ...] = ()

    @property
    def final_status(self) -> TaskStatus | None:
        return FINAL.get(self.status)


@dataclass(frozen=True)
class FeedbackTarget:
    task_id: int
    order_id: str
    space_key: str
    task_key: str
    status: TaskStatus
    flow_id: int
    flow_version: int
    order_status: OrderStatus
    result: Any


async def find_target(uow: UnitOfWork, token: str) -> FeedbackTarget:
    row = (
        await uow.conn.execute(
            select(
                t.tasks.c.id,
                t.tasks.c.order_id,
                t.tasks.c.task_key,
                t.tasks.c.status,
                t.tasks.c.result,
                t.orders.c.space_key,
                t.orders.c.flow_id,
                t.orders.c.flow_version,
                t.orders.c.status.label("order_status"),
            )
            .join(t.orders, t.orders.c.id == t.tasks.c.order_id)
            .where(t.tasks.c.feedback_token_hash == hash_secret(token))
            .with_for_update(of=[t.orders, t.tasks])
        )
    ).first()
    if row is None:
        raise NotFound("no task has this update URL")
    return FeedbackTarget(
        row.id,
        row.order_id,
        row.space_key,
        row.task_key,
        TaskStatus(row.status),
        row.flow_id,
        row.flow_version,
        OrderStatus(row.order_status),
        row.result,
    )


async def receive_feedback(
    uow: UnitOfWork, target: FeedbackTarget, feedback: Feedback, flow: FlowDefinition
) -> str:
    """Record feedback for the task and apply it when it can be. Returns what happened."""
    final = feedback.final_status
    conn = uow.conn
    if final is None and (target.status.is_ended or target.order_status is OrderStatus.CANCELLED):
        raise Conflict(f"the task already ended as {target.status.value}; progress is not accepted")
    if final is None:
        await _store(uow, target, feedback, applied=True)
        await insert_assets(uow, target.order_id, target.task_key, feedback.assets)
        data: dict[str, Any] = {"message": feedback.message}
        heartbeat = flow.task_definition(target.task_key).payload.get("heartbeatTimeoutDuration")
        if target.status is TaskStatus.WAITING and isinstance(heartbeat, int):
            # A progress note is a heartbeat: the connector is alive, so the wait goes on.
            due = uow.now + timedelta(milliseconds=heartbeat)
            await conn.execute(
                update(t.tasks)
                .where(t.tasks.c.id == target.task_id, t.tasks.c.due_at < due)
                .values(due_at=due, updated_at=uow.now)
            )
            data["waitUntil"] = iso(due)
        uow.event(
            target.order_id,
            "feedback.progress",
            task_key=target.task_key,
            actor="connector",
            data=data,
        )
        return "recorded"
    if target.order_status is OrderStatus.CANCELLED or target.status is TaskStatus.CANCELLED:
        raise Conflict("the order was cancelled; feedback is no longer accepted")
    if target.status in (TaskStatus.SUCCEEDED, TaskStatus.FAILED):
        if target.status is final:
            return "duplicate"
        raise Conflict(f"the task already ended as {target.status.value}")
    if target.status is TaskStatus.RUNNING:
        earlier = (
            await conn.execute(
                select(t.feedback.c.status).where(
                    t.feedback.c.task_id == target.task_id,
                    t.feedback.c.applied.is_(False),
                    t.feedback.c.status.in_(list(FINAL)),
                )
            )
        ).scalar()
        if earlier is not None:
            if earlier == feedback.status:
                return "duplicate"
            raise Conflict(f"feedback {earlier!r} was already received for this task")
        await _store(uow, target, feedback, applied=False)
        uow.event(
            target.order_id,
            "feedback.received",
            task_key=target.task_key,
            actor="connector",
            data={"status": feedback.status, "message": feedback.message, "held": True},
        )
        return "held"
    await _store(uow, target, feedback, applied=True)
    uow.event(
        target.order_id,
        "feedback.received",
        task_key=target.task_key,
        actor="connector",
        data={"status": feedback.status, "message": feedback.message},
    )
    await finish_with_feedback(
        uow, target.task_id, target.order_id, target.task_key, feedback, flow
    )
    return "applied"


async def finish_with_feedback(
    uow: UnitOfWork,
    task_id: int,
    order_id: str,
    task_key: str,
    feedback: Feedback,
    flow: FlowDefinition,
) -> None:
    final = feedback.final_status
    assert final is not None
    result_row = (
        await uow.conn.execute(select(t.tasks.c.result).where(t.tasks.c.id == task_id))
    ).scalar()
    result = dict(result_row or {})
    result["feedback"] = {
        "status": feedback.status,
        "message": feedback.message,
        "data": feedback.data,
    }
    if feedback.problem is not None:
        result["feedback"]["problem"] = feedback.problem
    error: dict[str, Any] | None = None
    if final is TaskStatus.FAILED:
        problem = feedback.problem or {}
        error = {
            "class": "FeedbackFailure",
            "message": feedback.message
            or problem.get("detail")
            or problem.get("title")
            or "the connector reported failure",
        }
        if feedback.problem is not None:
            error["problem"] = feedback.problem
    await insert_assets(uow, order_id, task_key, feedback.assets)
    await uow.conn.execute(
        update(t.tasks)
        .where(t.tasks.c.id == task_id)
        .values(
            status=final.value,
            result=result,
            error=error,
            due_at=None,
            wake=None,
            updated_at=uow.now,
            ended_at=uow.now,
        )
    )
    uow.event(
        order_id,
        "task.succeeded" if final is TaskStatus.SUCCEEDED else "task.failed",
        task_key=task_key,
        data={"by": "feedback", "message": feedback.message},
    )
    await advance_order(uow, order_id, flow)


async def with_held_feedback(
    uow: UnitOfWork, completions: Sequence[Completion]
) -> list[Completion]:
    """The completions whose task has final feedback waiting to be applied (one query)."""
    if not completions:
        return []
    ids = [done.task.task_id for done in completions]
    held = set(
        (
            await uow.conn.execute(
                select(t.feedback.c.task_id).where(
                    t.feedback.c.task_id.in_(ids),
                    t.feedback.c.applied.is_(False),
                    t.feedback.c.status.in_(list(FINAL)),
                )
            )
        ).scalars()
    )
    return [done for done in completions if done.task.task_id in held]


async def held_feedback(uow: UnitOfWork, task_id: int) -> Feedback | None:
    """Final feedback that arrived while the task was running, now applied."""
    row = (
        await uow.conn.execute(
            select(t.feedback)
            .where(
                t.feedback.c.task_id == task_id,
                t.feedback.c.applied.is_(False),
                t.feedback.c.status.in_(list(FINAL)),
            )
            .order_by(t.feedback.c.id)
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    await uow.conn.execute(update(t.feedback).where(t.feedback.c.id == row.id).values(applied=True))
    assets = tuple(AssetRecord(**asset) for asset in row.assets or ())
    return Feedback(row.status, row.message, row.data, row.problem, assets)


async def _store(
    uow: UnitOfWork, target: FeedbackTarget, feedback: Feedback, *, applied: bool
) -> None:
    await uow.conn.execute(
        insert(t.feedback).values(
            task_id=target.task_id,
            status=feedback.status,
            message=feedback.message,
            data=feedback.data,
            problem=feedback.problem,
            assets=[asdict(asset) for asset in feedback.assets] or None,
            received_at=uow.now,
            applied=applied,
        )
    )


async def due_waiting(uow: UnitOfWork, limit: int) -> list[Any]:
    """WAITING tasks whose time has come, locked for us."""
    return list(
        (
            await uow.conn.execute(
                select(
                    t.tasks.c.id,
                    t.tasks.c.order_id,
                    t.tasks.c.task_key,
                    t.tasks.c.wake,
                    t.orders.c.flow_id,
                    t.orders.c.flow_version,
                )
                .join(t.orders, t.orders.c.id == t.tasks.c.order_id)
                .where(
                    t.IN_RUNNABLE_INDEX,
                    t.tasks.c.status == TaskStatus.WAITING.value,
                    t.tasks.c.due_at <= uow.now,
                )
                .order_by(t.tasks.c.due_at)
                .limit(limit)
                # An order busy in another transaction is skipped; its timer fires next round.
                .with_for_update(of=[t.orders, t.tasks], skip_locked=True)
            )
        ).all()
    )


async def fire_due(uow: UnitOfWork, row: Any, flow: FlowDefinition) -> None:
    """A timer fires (success) or a wait times out (UNHEALTHY order)."""
    fired = row.wake == Wake.FIRE
    status = TaskStatus.SUCCEEDED if fired else TaskStatus.TIMED_OUT
    error = None if fired else {"class": "WaitTimeout", "message": "no answer came in time"}
    await uow.conn.execute(
        update(t.tasks)
        .where(t.tasks.c.id == row.id)
        .values(
            status=status.value,
            due_at=None,
            wake=None,
            error=error,
            updated_at=uow.now,
            ended_at=uow.now,
        )
    )
    uow.event(
        row.order_id,
        "task.succeeded" if fired else "task.timed_out",
        task_key=row.task_key,
        data={"by": "timer"} if fired else {"error": error["message"] if error else None},
    )
    await advance_order(uow, row.order_id, flow)
