"""The orders page (home): filter chips with counts, search, paging, a self-refreshing table."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response

from ordermill.flows.status import OrderStatus
from ordermill.service import Service
from ordermill.storage.orders import OrderFilter
from ordermill.ui.present import LIVE_ORDER_STATUSES, is_overdue, total_label
from ordermill.ui.reads import CAUSE_STATUSES, current_tasks, failure_causes, status_counts
from ordermill.ui.routing import ui_router
from ordermill.ui.session import Session, SessionDep
from ordermill.ui.templating import query_string, render

router = ui_router()
PAGE_SIZE = 25

Text = Annotated[str | None, Query(max_length=200)]
DUE_SOON = timedelta(hours=24)
OPEN_STATUSES = tuple(s for s in OrderStatus if not s.is_final)


@dataclass(frozen=True)
class TableQuery:
    """The orders page's filters, as given in its query string."""

    status: str | None = None
    flow: str | None = None
    q: str | None = None
    created_from: str | None = None
    created_to: str | None = None
    deadline_from: str | None = None
    deadline_to: str | None = None
    due: str | None = None
    after: str | None = None

    def params(self, **changes: str | None) -> dict[str, str | None]:
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values.update(changes)
        return values


def _day(value: str | None, *, end: bool = False) -> datetime | None:
    """A date field's value as the UTC start of that day (or of the next one, for an end)."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start + timedelta(days=1) if end else start


def table_filter(query: TableQuery, now: datetime) -> tuple[OrderFilter, OrderStatus | None]:
    """The store's filter for the page's query (what the table shows and what a bulk action
    acts on), and the status chip chosen."""
    chosen = (
        OrderStatus(query.status)
        if query.status and query.status in OrderStatus.__members__
        else None
    )
    deadline_from = _day(query.deadline_from)
    deadline_to = _day(query.deadline_to, end=True)
    statuses: tuple[OrderStatus, ...] = (chosen,) if chosen else ()
    if query.due in ("soon", "overdue"):
        # Against the deadlines of orders that have not ended.
        statuses = tuple(s for s in statuses or OPEN_STATUSES if s in OPEN_STATUSES)
        if query.due == "soon":
            deadline_from, deadline_to = now, now + DUE_SOON
        else:
            deadline_from, deadline_to = None, now
    found = OrderFilter(
        status=statuses,
        flow_key=query.flow or None,
        search=(query.q or "").strip() or None,
        created_from=_day(query.created_from),
        created_to=_day(query.created_to, end=True),
        deadline_from=deadline_from,
        deadline_to=deadline_to,
    )
    return found, chosen


async def _table_context(request: Request, session: Session, query: TableQuery) -> dict[str, Any]:
    service: Service = request.app.state.service
    filters, chosen = table_filter(query, service.clock.now())
    found = await service.store.list_orders(
        session.space_key, filters, limit=PAGE_SIZE + 1, after=query.after or None
    )
    orders = found[:PAGE_SIZE]
    counted = replace(filters, status=OPEN_STATUSES if query.due else ())
    counts = await status_counts(service.db, session.space_key, counted)
    shown = replace(query, q=filters.search, status=chosen.value if chosen else None)
    narrowed = any(v for k, v in shown.params(after=None, status=None).items())
    return {
        "orders": orders,
        "current": await current_tasks(service.db, [o.id for o in orders]),
        "causes": await failure_causes(
            service.db, [o.id for o in orders if o.status in CAUSE_STATUSES]
        ),
        "overdue": {o.id for o in orders if is_overdue(o.deadline, o.status)},
        "counts": counts,
        "total": total_label(counts),
        "chosen": chosen,
        "filters": shown,
        "narrowed": narrowed or chosen is not None,
        "next_cursor": orders[-1].id if len(found) > PAGE_SIZE else None,
        "live": any(o.status in LIVE_ORDER_STATUSES for o in orders),
        "query": query_string(**shown.params()),
    }


def _query(
    status: Text = None,
    flow: Text = None,
    q: Text = None,
    created_from: Text = None,
    created_to: Text = None,
    deadline_from: Text = None,
    deadline_to: Text = None,
    due: Text = None,
    after: Text = None,
) -> TableQuery:
    return TableQuery(
        status, flow, q, created_from, created_to, deadline_from, deadline_to, due, after
    )


QueryDep = Annotated[TableQuery, Depends(_query)]


@router.get("/")
async def orders_page(
    request: Request,
    session: SessionDep,
    query: QueryDep,
) -> Response:
    service: Service = request.app.state.service
    flows = await service.store.flows.list_flows(session.space_key)
    context = await _table_context(request, session, query)
    return render(request, "orders.html", flows=flows, **context)


@router.get("/orders/table")
async def orders_table(
    request: Request,
    session: SessionDep,
    query: QueryDep,
) -> Response:
    """The table alone: the page's live refresh, and the answer to typing in the search box."""
    context = await _table_context(request, session, query)
    response = render(request, "partials/orders_table.html", **context)
    # The address bar follows the search, so a reload or a shared link shows the same orders.
    response.headers["HX-Replace-Url"] = f"/?{context['query']}" if context["query"] else "/"
    return response
