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
from ordermill.flows.lifecycle import (
    Decision,
    FeedbackKind,
    FeedbackReceived,
    Note,
    Refusal,
    TimerFired,
    WaitTimedOut,
    decide,
)
from ordermill.flows.model import FlowDefinition
from ordermill.flows.status import TaskStatus
from ordermill.flows.work import AssetRecord, Completion, Wake
from ordermill.storage import tables as t
from ordermill.storage import writer
from ordermill.storage.advance import UnitOfWork
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


_KIND = {
    "success": FeedbackKind.SUCCESS,
    "failure": FeedbackKind.FAILURE,
    "progress": FeedbackKind.PROGRESS,
}


@dataclass(frozen=True)
class FeedbackTarget:
    task_id: int
    order_id: str
    space_key: str
    task_key: str
    flow_id: int
    flow_version: int
    heartbeat_ms: int | None


async def find_target(uow: UnitOfWork, token: str) -> FeedbackTarget:
    row = (
        await uow.conn.execute(
            select(
                t.tasks.c.id,
                t.tasks.c.order_id,
                t.tasks.c.task_key,
                t.tasks.c.heartbeat_ms,
                t.orders.c.space_key,
                t.orders.c.flow_id,
                t.orders.c.flow_version,
            )
            .join(t.orders, t.orders.c.id == t.tasks.c.order_id)
            .where(t.tasks.c.feedback_token_hash == hash_secret(token))
        )
    ).first()
    if row is None:
        raise NotFound("no task has this update URL")
    return FeedbackTarget(
        row.id,
        row.order_id,
        row.space_key,
        row.task_key,
        row.flow_id,
        row.flow_version,
        row.heartbeat_ms,
    )


async def receive_feedback(
    uow: UnitOfWork, target: FeedbackTarget, feedback: Feedback, flow: FlowDefinition
) -> str:
    """Record feedback for the task and apply it when it can be. Returns what happened."""
    locked = await writer.lock_orders(uow, [target.order_id])
    state = locked[target.order_id].state
    answer = decide(flow, state, FeedbackReceived(target.task_key, _KIND[feedback.status]))
    if isinstance(answer, Refusal):
        raise answer.error()
    if answer.note is Note.DUPLICATE:
        return "duplicate"
    if answer.note is Note.RECORDED:
        await _store(uow, target, feedback, applied=True)
        await insert_assets(uow, target.order_id, target.task_key, feedback.assets)
        data: dict[str, Any] = {"message": feedback.message}
        if answer.extend_wait is not None and target.heartbeat_ms is not None:
            # A progress note is a heartbeat: the connector is alive, so the wait goes on.
            due = uow.now + timedelta(milliseconds=target.heartbeat_ms)
            # While the order is paused, its due time is kept aside (storage/writer.py).
            column = t.tasks.c.held_due_at if state.paused else t.tasks.c.due_at
            await uow.conn.execute(
                update(t.tasks)
                .where(t.tasks.c.id == target.task_id, column < due)
                .values({column: due, t.tasks.c.updated_at: uow.now})
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
    if answer.note is Note.HELD:
        earlier = (
            await uow.conn.execute(
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
        uow, target.task_id, target.order_id, target.task_key, feedback, flow, locked
    )
    return "applied"


async def finish_with_feedback(
    uow: UnitOfWork,
    task_id: int,
    order_id: str,
    task_key: str,
    feedback: Feedback,
    flow: FlowDefinition,
    locked: dict[str, writer.LockedOrder] | None = None,
    *,
    held: bool = False,
) -> None:
    """End the task as the final feedback says, through the writer."""
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
    change = writer.Change(
        order_id,
        flow,
        FeedbackReceived(task_key, _KIND[feedback.status], held=held),
        values={"result": result, "error": error},
        events=(
            writer.Entry(
                "task.succeeded" if final is TaskStatus.SUCCEEDED else "task.failed",
                task_key,
                data={"by": "feedback", "message": feedback.message},
            ),
        ),
    )
    [answer] = await writer.apply(uow, [change], locked)
    if isinstance(answer, Decision) and answer.changes:
        await insert_assets(uow, order_id, task_key, feedback.assets)


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
    """WAITING tasks whose time has come; an order busy in another transaction waits a round."""
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
                .with_for_update(of=[t.orders, t.tasks], skip_locked=True)
            )
        ).all()
    )


def timer_change(row: Any, flow: FlowDefinition) -> writer.Change:
    """A timer fires (success) or a wait times out (UNHEALTHY order)."""
    if row.wake == Wake.FIRE:
        return writer.Change(
            row.order_id,
            flow,
            TimerFired(row.task_key),
            events=(writer.Entry("task.succeeded", row.task_key, data={"by": "timer"}),),
        )
    error = {"class": "WaitTimeout", "message": "no answer came in time"}
    return writer.Change(
        row.order_id,
        flow,
        WaitTimedOut(row.task_key),
        values={"error": error},
        events=(writer.Entry("task.timed_out", row.task_key, data={"error": error["message"]}),),
    )
