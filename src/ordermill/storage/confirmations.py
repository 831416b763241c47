"""Manual confirmations: the inbox of tasks waiting for a person's answer, and the answers.

A confirmation is not a table of its own: it is a task whose handler asked a question (its
outcome's ``Question``, shown in its result as ``confirmation``), addressed by the task's
delivery id.
An answer ends the task, records who gave it, and moves the order on, in one transaction.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from ordermill.clock import Clock
from ordermill.errors import Conflict, InvalidInput, NotFound, Problem
from ordermill.flows.lifecycle import ConfirmationAnswered, Refusal
from ordermill.flows.model import FlowDefinition
from ordermill.flows.order import parse_instant
from ordermill.flows.status import OrderStatus, TaskStatus
from ordermill.storage import tables as t
from ordermill.storage import writer
from ordermill.storage.advance import UnitOfWork
from ordermill.storage.database import Database

STATUSES = ("pending", "answered", "all")
LIST_LIMIT = 500
_OPEN = (TaskStatus.WAITING.value, TaskStatus.TIMED_OUT.value)
_ANSWERED = (TaskStatus.SUCCEEDED.value, TaskStatus.FAILED.value)
_STATE_OF = {
    TaskStatus.WAITING: "pending",
    TaskStatus.TIMED_OUT: "timed_out",
    TaskStatus.CANCELLED: "cancelled",
}


@dataclass(frozen=True)
class Confirmation:
    """One question to a person, and its answer once given."""

    id: str  # the task's delivery id
    order_id: str
    third_party_order_id: str
    task_key: str
    title: str
    description: str | None
    assignees: tuple[str, ...]
    status: str  # pending | timed_out | confirmed | rejected | cancelled
    created_at: datetime
    answered_at: datetime | None
    answered_by: str | None
    comment: str | None
    space_key: str = ""
    due_at: datetime | None = None  # when a pending confirmation times out

    @property
    def is_open(self) -> bool:
        """An answer is still accepted (a late one, after a timeout, too)."""
        return self.status in ("pending", "timed_out")


def _columns() -> Select[Any]:
    return (
        select(
            t.tasks.c.id.label("task_id"),
            t.tasks.c.delivery_id,
            t.tasks.c.order_id,
            t.tasks.c.task_key,
            t.tasks.c.status,
            t.tasks.c.result,
            t.tasks.c.due_at,
            t.tasks.c.created_at,
            t.orders.c.third_party_order_id,
            t.orders.c.space_key,
            t.orders.c.flow_id,
            t.orders.c.flow_version,
            t.orders.c.status.label("order_status"),
        )
        .join(t.orders, t.orders.c.id == t.tasks.c.order_id)
        .where(t.tasks.c.asks_question.is_(True))
    )


def confirmation_of(row: Any) -> Confirmation | None:
    """The confirmation a task row stands for; None when the task has not opened one."""
    result = row.result if isinstance(row.result, dict) else {}
    opened = result.get("confirmation")
    if not isinstance(opened, dict):
        return None
    status = TaskStatus(row.status)
    answer = result.get("answer")
    if not isinstance(answer, dict) or status not in (TaskStatus.SUCCEEDED, TaskStatus.FAILED):
        answer = None
    if answer is not None:
        state = "confirmed" if answer.get("confirmed") else "rejected"
    elif status in _STATE_OF:
        state = _STATE_OF[status]
    else:
        return None  # running again after an operator retry: not open yet
    return Confirmation(
        id=row.delivery_id,
        order_id=row.order_id,
        third_party_order_id=row.third_party_order_id,
        task_key=row.task_key,
        title=str(opened.get("title") or row.task_key),
        description=opened.get("description"),
        assignees=tuple(opened.get("assignees") or ()),
        status=state,
        created_at=row.created_at,
        answered_at=parse_instant(answer["at"]) if answer else None,
        answered_by=answer.get("by") if answer else None,
        comment=answer.get("comment") if answer else None,
        space_key=row.space_key,
        due_at=row.due_at if state == "pending" else None,
    )


class ConfirmationStore:
    """Reads the inbox and records answers; exposed as ``Store.confirmations``."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        unit: Callable[[], AbstractAsyncContextManager[UnitOfWork]],
        flow_of: Callable[[int, int], Awaitable[FlowDefinition]],
    ) -> None:
        self.db = db
        self.clock = clock
        self._unit = unit
        self._flow_of = flow_of

    async def list(self, space_key: str, status: str = "pending") -> builtins.list[Confirmation]:
        """Open confirmations (oldest first), answered ones (newest first), or both."""
        if status not in STATUSES:
            raise InvalidInput(
                [Problem("", f"query parameter status: must be one of {', '.join(STATUSES)}")]
            )
        found: builtins.list[Confirmation] = []
        if status in ("pending", "all"):
            found += await self._query(space_key, _OPEN, t.tasks.c.created_at)
        if status in ("answered", "all"):
            found += await self._query(space_key, _ANSWERED, t.tasks.c.ended_at.desc())
        return found

    async def _query(
        self, space_key: str, statuses: tuple[str, ...], order: Any
    ) -> builtins.list[Confirmation]:
        query = (
            _columns()
            .where(t.orders.c.space_key == space_key, t.tasks.c.status.in_(statuses))
            .order_by(order, t.tasks.c.id)
            .limit(LIST_LIMIT)
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [c for c in map(confirmation_of, rows) if c is not None]

    async def get(self, space_key: str | None, confirmation_id: str) -> Confirmation:
        """One confirmation; ``space_key`` None (an admin, a signed link) reads any space."""
        query = _columns().where(t.tasks.c.delivery_id == confirmation_id)
        if space_key is not None:
            query = query.where(t.orders.c.space_key == space_key)
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        found = None if row is None else confirmation_of(row)
        if found is None:
            raise NotFound(f"there is no open or answered confirmation {confirmation_id!r}")
        return found

    async def answer(
        self,
        space_key: str | None,
        confirmation_id: str,
        *,
        confirm: bool,
        actor: str,
        comment: str | None,
    ) -> Confirmation:
        """Confirm (the task succeeds) or reject (it fails); 409 once the task has ended."""
        query = _columns().where(t.tasks.c.delivery_id == confirmation_id)
        if space_key is not None:
            query = query.where(t.orders.c.space_key == space_key)
        async with self._unit() as uow:
            row = (await uow.conn.execute(query)).first()
            if row is not None:
                # The order's row first (as every writer does), then the answer read afresh.
                locked = await writer.lock_orders(uow, [row.order_id])
                row = (await uow.conn.execute(query)).first()
            current = None if row is None else confirmation_of(row)
            if row is None or current is None:
                raise NotFound(f"there is no open confirmation {confirmation_id!r}")
            _check_open(current, OrderStatus(row.order_status))
            flow = await self._flow_of(row.flow_id, row.flow_version)
            change = _answer(row, flow, confirm=confirm, actor=actor, comment=comment, now=uow.now)
            [answer] = await writer.apply(uow, [change], locked)
            if isinstance(answer, Refusal):
                raise answer.error()
        return await self.get(space_key, confirmation_id)


def _check_open(current: Confirmation, order_status: OrderStatus) -> None:
    if current.status in ("confirmed", "rejected"):
        raise Conflict(
            f"this confirmation was already {current.status} by {current.answered_by} "
            f"at {current.answered_at:%Y-%m-%d %H:%M} UTC"
        )
    if current.status == "cancelled" or order_status is OrderStatus.CANCELLED:
        raise Conflict("the order was cancelled; the confirmation no longer takes answers")


def _answer(
    row: Any,
    flow: FlowDefinition,
    *,
    confirm: bool,
    actor: str,
    comment: str | None,
    now: datetime,
) -> writer.Change:
    """The answer as a lifecycle change: the task succeeds (confirmed) or fails (rejected)."""
    answer = {"confirmed": confirm, "by": actor, "at": now.isoformat(), "comment": comment}
    error = None
    if not confirm:
        error = {"class": "ConfirmationRejected", "message": comment or f"rejected by {actor}"}
    kind = "confirmed" if confirm else "rejected"
    data: dict[str, Any] = {"by": "confirmation"}
    if error is not None:
        data["error"] = error["message"]
    return writer.Change(
        row.order_id,
        flow,
        ConfirmationAnswered(row.task_key, confirmed=confirm),
        values={"result": {**row.result, "answer": answer}, "error": error},
        events=(
            writer.Entry(
                f"confirmation.{kind}",
                row.task_key,
                data={"confirmationId": row.delivery_id, "comment": comment},
                actor=actor,
            ),
            writer.Entry(
                "task.succeeded" if confirm else "task.failed", row.task_key, data=data, actor=actor
            ),
        ),
        actor=actor,
    )
