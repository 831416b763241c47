"""The confirmations inbox: manual confirmations waiting for a person, answered with a comment."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request, Response

from ordermill.errors import InvalidInput, Problem
from ordermill.service import Service
from ordermill.ui.routes.order import live_context
from ordermill.ui.routing import ui_router
from ordermill.ui.session import SessionDep
from ordermill.ui.templating import Toast, is_htmx, redirect, render

router = ui_router()
RECENT = 10


@router.get("/confirmations")
async def inbox(request: Request, session: SessionDep) -> Response:
    service: Service = request.app.state.service
    pending = await service.store.confirmations.list(session.space_key, "pending")
    answered = await service.store.confirmations.list(session.space_key, "answered")
    return render(
        request,
        "confirmations.html",
        active="confirmations",
        pending=pending,
        answered=answered[:RECENT],
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
