"""Read-only queries the orders page needs beyond the Store: counts per status, current tasks.

Both are single grouped queries (SQLAlchemy Core, the same on SQLite and PostgreSQL) so a page
of fifty orders costs three queries, not fifty-two. They only read, scoped to one space.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, literal, select, union_all

from ordermill.flows.status import OrderStatus, TaskStatus
from ordermill.storage import tables as t
from ordermill.storage.database import Database
from ordermill.storage.orders import OrderFilter, filter_conditions
from ordermill.ui.present import COUNT_CAP, cause_line


@dataclass(frozen=True)
class CurrentTask:
    key: str
    status: TaskStatus


async def status_counts(
    db: Database, space_key: str, filters: OrderFilter
) -> dict[OrderStatus, int]:
    """How many orders of the space have each status, under the filters other than status.

    Each status is counted from its own index and only up to ``COUNT_CAP + 1`` orders, so the
    page costs the same with a million orders as with ten thousand (a count over the cap is
    shown as "10,000+"). A search is counted once over its matches instead."""
    conditions = [t.orders.c.space_key == space_key]
    conditions += filter_conditions(db.dialect, space_key, filters)
    if filters.flow_key:
        conditions.append(t.orders.c.flow_key == filters.flow_key)
    if filters.search:
        query: Any = (
            select(t.orders.c.status, func.count().label("n"))
            .where(*conditions)
            .group_by(t.orders.c.status)
        )
    else:
        query = union_all(*(_capped(status, conditions) for status in OrderStatus))
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    counts = dict.fromkeys(OrderStatus, 0)
    for row in rows:
        counts[OrderStatus(row.status)] = int(row.n)
    return counts


def _capped(status: OrderStatus, conditions: list[Any]) -> Any:
    some = (
        select(t.orders.c.id)
        .where(t.orders.c.status == status.value, *conditions)
        .limit(COUNT_CAP + 1)
        .subquery()
    )
    return select(literal(status.value).label("status"), func.count().label("n")).select_from(some)


async def current_tasks(db: Database, order_ids: Iterable[str]) -> dict[str, CurrentTask]:
    """Each order's first task (in flow order) that has not succeeded."""
    ids = list(order_ids)
    if not ids:
        return {}
    query = (
        select(t.tasks.c.order_id, t.tasks.c.task_key, t.tasks.c.status)
        .where(t.tasks.c.order_id.in_(ids), t.tasks.c.status != TaskStatus.SUCCEEDED.value)
        .order_by(t.tasks.c.order_id, t.tasks.c.stage_index, t.tasks.c.id)
    )
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    found: dict[str, CurrentTask] = {}
    for row in rows:
        found.setdefault(row.order_id, CurrentTask(row.task_key, TaskStatus(row.status)))
    return found


# Orders whose failing task and cause the list shows.
CAUSE_STATUSES = frozenset({OrderStatus.FAILURE, OrderStatus.UNHEALTHY})
_CAUSE_TASKS = (TaskStatus.FAILED.value, TaskStatus.TIMED_OUT.value)


@dataclass(frozen=True)
class FailureCause:
    task_key: str
    status: TaskStatus
    line: str


async def failure_causes(db: Database, order_ids: Iterable[str]) -> dict[str, FailureCause]:
    """Each order's first failed or timed-out task (in flow order) with a one-line cause."""
    ids = list(order_ids)
    if not ids:
        return {}
    tasks = (
        select(
            t.tasks.c.id, t.tasks.c.order_id, t.tasks.c.task_key, t.tasks.c.status, t.tasks.c.error
        )
        .where(t.tasks.c.order_id.in_(ids), t.tasks.c.status.in_(_CAUSE_TASKS))
        .order_by(t.tasks.c.order_id, t.tasks.c.stage_index, t.tasks.c.id)
    )
    async with db.read() as conn:
        rows = (await conn.execute(tasks)).all()
        first: dict[str, Any] = {}
        for row in rows:
            first.setdefault(row.order_id, row)
        task_ids = [row.id for row in first.values()]
        answers: dict[int, str | None] = {}
        if task_ids:
            latest = (
                select(t.attempts.c.task_id, t.attempts.c.response_body)
                .where(t.attempts.c.task_id.in_(task_ids))
                .order_by(t.attempts.c.task_id, t.attempts.c.number.desc())
            )
            for attempt in (await conn.execute(latest)).all():
                answers.setdefault(attempt.task_id, attempt.response_body)
    return {
        order_id: FailureCause(
            row.task_key,
            TaskStatus(row.status),
            cause_line(row.task_key, row.error, answers.get(row.id)),
        )
        for order_id, row in first.items()
    }
