"""The confirmations inbox: manual confirmations waiting for a person, answered with a comment."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request, Response

from ordermill.errors import InvalidInput, Problem
from ordermill.service import Service
from ordermill.ui.routes.order import live_context
from ordermill.ui.routing import ui_router
from ordermill.ui.session import Session, SessionDep
from ordermill.ui.templating import Toast, is_htmx, redirect, render

router = ui_router()
RECENT = 10


async def _inbox(request: Request, session: Session) -> dict[str, Any]:
    service: Service = request.app.state.service
    pending = await service.store.confirmations.list(session.space_key, "pending")
    answered = await service.store.confirmations.list(session.space_key, "answered")
    return {
        "pending": pending,
        "answered": answered[:RECENT],
        "pending_count": len(pending),
        "nav_pending": len(pending),
        "count_known": True,
    }


@router.get("/confirmations")
async def inbox(request: Request, session: SessionDep) -> Response:
    context = await _inbox(request, session)
    return render(request, "confirmations.html", active="confirmations", **context)


@router.get("/confirmations/live")
async def inbox_live(request: Request, session: SessionDep) -> Response:
    """The inbox's refresh: its lists, and the count in the navigation."""
    context = await _inbox(request, session)
    return render(request, "partials/confirmations_live.html", oob=True, **context)


@router.get("/confirmations/count")
async def pending_count(request: Request, session: SessionDep) -> Response:
    """The navigation's count of confirmations waiting for an answer."""
    service: Service = request.app.state.service
    pending = await service.store.confirmations.list(session.space_key, "pending")
    return render(
        request, "partials/nav_pending.html", pending_count=len(pending), count_known=True
    )


@router.post("/confirmations/{confirmation_id}/answer")
async def answer(
    request: Request,
    session: SessionDep,
    confirmation_id: str,
    decision: Annotated[str, Form(max_length=10)] = "",
    comment: Annotated[str, Form(max_length=2000)] = "",
    source: Annotated[str | None, Form(alias="from")] = None,
) -> Response:
    """Confirm or reject; answers with the refreshed order part or the answered inbox card."""
    if decision not in ("confirm", "reject"):
        raise InvalidInput([Problem("/decision", "press Confirm or Reject")])
    if decision == "reject" and not comment.strip():
        raise InvalidInput([Problem("/comment", "say why you reject: the reason is kept")])
    service: Service = request.app.state.service
    answered = await service.store.confirmations.answer(
        session.space_key,
        confirmation_id,
        confirm=decision == "confirm",
        actor=session.actor,
        comment=comment.strip() or None,
    )
    word = "Confirmed" if decision == "confirm" else "Rejected"
    toast = Toast(f"{word}: {answered.title} ({answered.third_party_order_id}).")
    from_order = source == "order"
    if not is_htmx(request):
        target = f"/orders/{answered.order_id}" if from_order else "/confirmations"
        return redirect(request, target, toast)
    if from_order:
        context = await live_context(service, session, answered.order_id)
        return render(request, "partials/order_live.html", oob=True, toasts=[toast], **context)
    return render(request, "partials/confirmation_done.html", c=answered, toasts=[toast])
