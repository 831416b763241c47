"""The orders page (home): filter chips with counts, search, paging, a self-refreshing table."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request, Response

from ordermill.flows.status import OrderStatus
from ordermill.service import Service
from ordermill.storage.orders import OrderFilter
from ordermill.ui.present import LIVE_ORDER_STATUSES, is_overdue
from ordermill.ui.reads import current_tasks, status_counts
from ordermill.ui.routing import ui_router
from ordermill.ui.session import Session, SessionDep
from ordermill.ui.templating import query_string, render

router = ui_router()
PAGE_SIZE = 25

Text = Annotated[str | None, Query(max_length=200)]


async def _table_context(
    request: Request,
    session: Session,
    status: str | None,
    flow: str | None,
    q: str | None,
    after: str | None,
) -> dict[str, Any]:
    service: Service = request.app.state.service
    chosen = OrderStatus(status) if status and status in OrderStatus.__members__ else None
    search = (q or "").strip() or None
    filters = OrderFilter(status=(chosen,) if chosen else (), flow_key=flow or None, search=search)
    found = await service.store.list_orders(
        session.space_key, filters, limit=PAGE_SIZE + 1, after=after or None
    )
    orders = found[:PAGE_SIZE]
    counts = await status_counts(service.db, session.space_key, flow_key=flow, search=search)
    base = {"status": chosen.value if chosen else None, "flow": flow or None, "q": search}
    return {
        "orders": orders,
        "current": await current_tasks(service.db, [o.id for o in orders]),
        "overdue": {o.id for o in orders if is_overdue(o.deadline, o.status)},
        "counts": counts,
        "total": sum(counts.values()),
        "chosen": chosen,
        "flow": flow or "",
        "q": search or "",
        "after": after or "",
        "next_cursor": orders[-1].id if len(found) > PAGE_SIZE else None,
        "live": any(o.status in LIVE_ORDER_STATUSES for o in orders),
        "query": query_string(**base, after=after or None),
        "filter_query": base,
    }


@router.get("/")
async def orders_page(
    request: Request,
    session: SessionDep,
    status: Text = None,
    flow: Text = None,
    q: Text = None,
    after: Text = None,
) -> Response:
    service: Service = request.app.state.service
    flows = await service.store.flows.list_flows(session.space_key)
    context = await _table_context(request, session, status, flow, q, after)
    return render(request, "orders.html", flows=flows, **context)


@router.get("/orders/table")
async def orders_table(
    request: Request,
    session: SessionDep,
    status: Text = None,
    flow: Text = None,
    q: Text = None,
    after: Text = None,
) -> Response:
    """The table alone, for the page's refresh while orders are in progress."""
    context = await _table_context(request, session, status, flow, q, after)
    return render(request, "partials/orders_table.html", **context)
