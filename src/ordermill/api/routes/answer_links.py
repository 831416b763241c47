"""The pages behind e-mailed Confirm and Reject links: no API key, the signature is the credential.

``GET`` shows the question and a button; the button ``POST``s back to the same signed URL. A link
works once, because the answer ends the task; an altered or expired link gets a 403 page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader

from ordermill.api.auth import ServiceDep
from ordermill.api.limits import BoundedRoute
from ordermill.errors import Conflict, NotFound
from ordermill.handlers.confirmation import Action, answer_path
from ordermill.service import Service
from ordermill.storage.confirmations import Confirmation

router = APIRouter(prefix="/confirmations", include_in_schema=False, route_class=BoundedRoute)

_PAGES = Environment(
    loader=FileSystemLoader(Path(__file__).parents[1] / "templates"), autoescape=True
)
ACTIONS: tuple[Action, ...] = ("confirm", "reject")
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}


def page(status: int, heading: str, **context: Any) -> HTMLResponse:
    html = _PAGES.get_template("confirmation.html").render(heading=heading, **context)
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def closed_page(status: int, confirmation: Confirmation) -> HTMLResponse:
    """The page for a link whose confirmation no longer takes answers."""
    if confirmation.status not in ("confirmed", "rejected"):
        message = "Its order was cancelled; it no longer takes answers."
        return page(status, "No longer open", confirmation=confirmation, message=message)
    when = f"{confirmation.answered_at:%Y-%m-%d %H:%M} UTC" if confirmation.answered_at else ""
    message = f"It was already {confirmation.status} by {confirmation.answered_by} {when}."
    return page(status, "Already answered", confirmation=confirmation, message=message)


async def checked_link(
    request: Request, service: Service, confirmation_id: str, action: str, assignee: int
) -> Confirmation | HTMLResponse:
    """The confirmation a genuine, unexpired link is for; else the page to answer with."""
    if action not in ACTIONS:
        return page(404, "Link not found", message="This is not a confirmation link.")
    query = request.query_params
    path = answer_path(confirmation_id, action, assignee)
    if not service.links.verify(
        path, query.get("expires"), query.get("signature"), service.clock.now()
    ):
        return page(
            403,
            "This link is not valid",
            message="It has expired or was altered. Answer in ordermill instead, or ask for "
            "a new link.",
        )
    try:
        confirmation = await service.store.confirmations.get(None, confirmation_id)
    except NotFound:
        return page(404, "Confirmation not found", message="Its order may have been deleted.")
    if not 0 <= assignee < len(confirmation.assignees):
        return page(403, "This link is not valid", message="It names nobody we asked.")
    return confirmation


@router.get("/{confirmation_id}/answer/{action}/{assignee}")
async def answer_page(
    confirmation_id: str, action: str, assignee: int, request: Request, service: ServiceDep
) -> HTMLResponse:
    checked = await checked_link(request, service, confirmation_id, action, assignee)
    if isinstance(checked, HTMLResponse):
        return checked
    if not checked.is_open:
        return closed_page(200, checked)
    heading = "Confirm this?" if action == "confirm" else "Reject this?"
    return page(200, heading, confirmation=checked, action=action)


@router.post("/{confirmation_id}/answer/{action}/{assignee}")
async def answer(
    confirmation_id: str,
    action: str,
    assignee: int,
    request: Request,
    service: ServiceDep,
    comment: Annotated[str | None, Form(max_length=2000)] = None,
) -> HTMLResponse:
    checked = await checked_link(request, service, confirmation_id, action, assignee)
    if isinstance(checked, HTMLResponse):
        return checked
    try:
        answered = await service.store.confirmations.answer(
            None,
            confirmation_id,
            confirm=action == "confirm",
            actor=f"{checked.assignees[assignee]} (e-mail link)",
            comment=(comment or "").strip() or None,
        )
    except Conflict:
        return closed_page(409, await service.store.confirmations.get(None, confirmation_id))
    heading = "Confirmed" if answered.status == "confirmed" else "Rejected"
    return page(200, heading, confirmation=answered, message="Thank you: your answer is recorded.")
