"""Moving an order forward inside a transaction: ask the planner, then write what it decided.

Every caller (order intake, a task's completion, feedback, an operator action) ends its
transaction with ``advance_order`` so a state change and its consequences commit together.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ordermill.flows.model import FlowDefinition
from ordermill.flows.planner import TaskRef, plan
from ordermill.flows.status import OrderStatus, TaskStatus
from ordermill.storage import tables as t
from ordermill.storage.ids import new_id
from ordermill.storage.spaces import hash_secret

_INSERT_TASKS = insert(t.tasks).returning(t.tasks.c.id, sort_by_parameter_order=True)
# RETURNING lets SQLAlchemy send a batch as one multi-row INSERT ("insertmanyvalues")
# instead of one execution per row on PostgreSQL.
_INSERT_EVENTS = insert(t.events).returning(t.events.c.id)
_LOCK_ORDER = select(t.orders.c.status).where(t.orders.c.id == bindparam("id")).with_for_update()


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

    async def flush_events(self) -> None:
        if self.events:
            await self.conn.execute(_INSERT_EVENTS, self.events)
            self.events = []


async def advance_order(
    uow: UnitOfWork,
    order_id: str,
    flow: FlowDefinition,
    *,
    actor: str = "engine",
) -> OrderStatus:
    """Create the tasks that became runnable and bring the order's status up to date.

    The order's row is locked before its tasks are read: two transactions that each end one
    predecessor of a join then take turns, and the second sees the first's write, so the join
    is never missed (READ COMMITTED alone would let each miss the other's).
    """
    conn = uow.conn
    order = (await conn.execute(_LOCK_ORDER, {"id": order_id})).one()
    rows = (
        await conn.execute(
            select(t.tasks.c.task_key, t.tasks.c.status).where(t.tasks.c.order_id == order_id)
        )
    ).all()
    statuses = {row.task_key: TaskStatus(row.status) for row in rows}
    return await apply_plan(uow, order_id, flow, OrderStatus(order.status), statuses, actor=actor)


async def apply_plan(
    uow: UnitOfWork,
    order_id: str,
    flow: FlowDefinition,
    current: OrderStatus,
    statuses: Mapping[str, TaskStatus],
    *,
    actor: str = "engine",
) -> OrderStatus:
    """What ``advance_order`` does once the order's state is known (no reads)."""
    decision = plan(
        flow,
        statuses,
        started=current is not OrderStatus.CREATED,
        cancelled=current is OrderStatus.CANCELLED,
    )
    if decision.stage_started is not None:
        uow.event(order_id, "stage.started", data={"stage": decision.stage_started})
    if decision.start:
        new_rows = [new_task_row(uow, order_id, flow, ref) for ref in decision.start]
        result = await uow.conn.execute(_INSERT_TASKS, new_rows)
        for row, task_id in zip(new_rows, result.scalars(), strict=True):
            uow.created_tasks.append({**row, "id": task_id})
            uow.event(order_id, "task.queued", task_key=row["task_key"])
        uow.new_tasks += len(new_rows)
    if decision.order_status is not current:
        await set_order_status(uow, order_id, current, decision.order_status, actor=actor)
    return decision.order_status


def new_task_row(
    uow: UnitOfWork, order_id: str, flow: FlowDefinition, ref: TaskRef
) -> dict[str, Any]:
    handler_key = flow.stages[ref.stage_index].task_definition(ref.task_key).handler_key
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
        "error": None,
        "created_at": uow.now,
        "updated_at": uow.now,
        "ended_at": None,
    }


async def set_order_status(
    uow: UnitOfWork, order_id: str, old: OrderStatus, new: OrderStatus, *, actor: str
) -> None:
    ended = new in (OrderStatus.SUCCESS, OrderStatus.FAILURE, OrderStatus.CANCELLED)
    await uow.conn.execute(
        update(t.orders)
        .where(t.orders.c.id == order_id)
        .values(status=new.value, updated_at=uow.now, ended_at=uow.now if ended else None)
    )
    uow.event(order_id, "order.status", actor=actor, data={"from": old.value, "to": new.value})
