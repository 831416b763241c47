"""Read-only queries the orders page needs beyond the Store: counts per status, current tasks.

Both are single grouped queries (SQLAlchemy Core, the same on SQLite and PostgreSQL) so a page
of fifty orders costs three queries, not fifty-two. They only read, scoped to one space.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select

from ordermill.flows.status import OrderStatus, TaskStatus
from ordermill.storage import tables as t
from ordermill.storage.database import Database


@dataclass(frozen=True)
class CurrentTask:
    key: str
    status: TaskStatus


async def status_counts(
    db: Database, space_key: str, *, flow_key: str | None, search: str | None
) -> dict[OrderStatus, int]:
    """How many orders of the space have each status, under the flow and search filters."""
    query = (
        select(t.orders.c.status, func.count().label("n"))
        .where(t.orders.c.space_key == space_key)
        .group_by(t.orders.c.status)
    )
    if flow_key:
        query = query.where(t.orders.c.flow_key == flow_key)
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        query = query.where(t.orders.c.third_party_order_id.ilike(f"%{escaped}%", escape="\\"))
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    counts = dict.fromkeys(OrderStatus, 0)
    for row in rows:
        counts[OrderStatus(row.status)] = int(row.n)
    return counts


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
