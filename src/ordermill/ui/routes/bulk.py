"""Acting on many orders from the orders page: the list's own filters choose the orders, a dry
count comes first, then a confirmation (with a reason where the action cannot be undone)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Form, Request, Response

from ordermill.errors import InvalidInput, NotFound, Problem
from ordermill.service import BulkAction, BulkOutcome, Service
from ordermill.ui.routes.orders import TableQuery, table_filter
from ordermill.ui.routing import ui_router
from ordermill.ui.session import Session, SessionDep
from ordermill.ui.templating import Toast, render

router = ui_router()
# One confirmation acts on at most this many orders (newest first); the panel says so.
BULK_LIMIT = 500

Text = Annotated[str, Form(max_length=200)]


@dataclass(frozen=True)
class Words:
    """How the page speaks of one bulk action."""

    title: str  # the confirmation's heading
    would: str  # "{n} orders would be …"
    did: str  # "… {n} orders"
    button: str  # the confirm button: "… {n} orders"
    undoable: bool  # False: the confirmation asks for a reason


WORDS = {
    BulkAction.RETRY: Words(
        "Retry the failed orders shown?", "would be retried", "Retried", "Retry", True
    ),
    BulkAction.PAUSE: Words("Pause the orders shown?", "would be paused", "Paused", "Pause", True),
    BulkAction.RESUME: Words(
        "Resume the orders shown?", "would be resumed", "Resumed", "Resume", True
    ),
    BulkAction.CANCEL: Words(
        "Cancel the orders shown?", "would be cancelled", "Cancelled", "Cancel", False
    ),
    BulkAction.RESTART: Words(
        "Restart the orders shown on the latest version of their flow?",
        "would be restarted on the latest version of their flow",
        "Restarted",
        "Restart",
        False,
    ),
}


def _action(name: str) -> BulkAction:
    try:
        return BulkAction(name)
    except ValueError as exc:
        raise NotFound(f"there is no bulk action {name!r}") from exc


def _form_query(
    status: Text = "",
    flow: Text = "",
    q: Text = "",
    created_from: Text = "",
    created_to: Text = "",
    deadline_from: Text = "",
    deadline_to: Text = "",
    due: Text = "",
) -> TableQuery:
    """The orders list's filters, as the bulk forms send them."""
    return TableQuery(status, flow, q, created_from, created_to, deadline_from, deadline_to, due)


FormQueryDep = Annotated[TableQuery, Depends(_form_query)]


async def _run(
    request: Request,
    session: Session,
    action: BulkAction,
    query: TableQuery,
    *,
    dry_run: bool,
    reason: str | None = None,
    from_start: bool = False,
) -> tuple[BulkOutcome, dict[str, Any]]:
    service: Service = request.app.state.service
    filters, chosen = table_filter(query, service.clock.now())
    outcome = await service.act_on_orders(
        session.space_key,
        action,
        filters,
        actor=session.actor,
        reason=reason,
        limit=BULK_LIMIT,
        dry_run=dry_run,
        from_start=from_start,
    )
    context = {
        "described": _described(query, chosen is not None),
        "action": action,
        "words": WORDS[action],
        "outcome": outcome,
        "filters": query,
        "chosen": chosen,
        "limit": BULK_LIMIT,
    }
    return outcome, context


@router.post("/bulk/{action}/preview")
async def preview(
    request: Request, session: SessionDep, action: str, query: FormQueryDep
) -> Response:
    """The dry count: which of the orders the list's filters match the action would change."""
    _, context = await _run(request, session, _action(action), query, dry_run=True)
    return render(request, "partials/bulk_panel.html", step="confirm", **context)


@router.post("/bulk/{action}")
async def act(
    request: Request,
    session: SessionDep,
    action: str,
    query: FormQueryDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
    source: Annotated[str, Form(alias="from", max_length=10)] = "failed",
) -> Response:
    """Apply the action to the orders the filters match now; answers with the result."""
    chosen = _action(action)
    why = reason.strip() or None
    if not WORDS[chosen].undoable and why is None:
        raise InvalidInput([Problem("/reason", "say why: this cannot be undone")])
    outcome, context = await _run(
        request, session, chosen, query, dry_run=False, reason=why, from_start=source == "start"
    )
    words = WORDS[chosen]
    text = f"{words.did} {_orders(len(outcome.changed))}."
    if outcome.skipped:
        text += f" {_orders(outcome.skipped)} did not fit any more and stayed as they were."
    return render(request, "partials/bulk_panel.html", step="done", toasts=[Toast(text)], **context)


def _described(query: TableQuery, status_chosen: bool) -> list[str]:
    """The filters in words, as the confirmation repeats them."""
    parts = [f"status {query.status}"] if status_chosen else []
    if query.flow:
        parts.append(f"flow {query.flow}")
    if query.q and query.q.strip():
        parts.append(f"search “{query.q.strip()}”")
    for name, words in (
        ("created_from", "created from"),
        ("created_to", "created until"),
        ("deadline_from", "deadline from"),
        ("deadline_to", "deadline until"),
    ):
        if getattr(query, name):
            parts.append(f"{words} {getattr(query, name)}")
    if query.due in DUE_WORDS:
        parts.append(DUE_WORDS[query.due])
    return parts


DUE_WORDS = {"soon": "due within 24 hours", "overdue": "overdue"}


def _orders(count: int) -> str:
    return "1 order" if count == 1 else f"{count} orders"
