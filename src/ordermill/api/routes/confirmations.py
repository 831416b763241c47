"""/api/confirmations: the inbox of manual confirmations, and confirming or rejecting them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field

from ordermill.api.auth import Principal, PrincipalDep, ServiceDep
from ordermill.api.limits import BoundedRoute
from ordermill.service import Service
from ordermill.storage.confirmations import Confirmation

router = APIRouter(prefix="/api/confirmations", tags=["confirmations"], route_class=BoundedRoute)


class AnswerIn(BaseModel):
    """An optional note kept with the answer (and, for a rejection, the failure's reason)."""

    model_config = ConfigDict(extra="forbid")

    comment: str | None = Field(default=None, max_length=2000)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def confirmation_out(confirmation: Confirmation) -> dict[str, Any]:
    return {
        "id": confirmation.id,
        "spaceKey": confirmation.space_key,
        "orderId": confirmation.order_id,
        "thirdPartyOrderId": confirmation.third_party_order_id,
        "taskKey": confirmation.task_key,
        "title": confirmation.title,
        "description": confirmation.description,
        "assignees": list(confirmation.assignees),
        "status": confirmation.status,
        "createdAt": _iso(confirmation.created_at),
        "dueAt": _iso(confirmation.due_at),
        "answeredAt": _iso(confirmation.answered_at),
        "answeredBy": confirmation.answered_by,
        "comment": confirmation.comment,
    }


@router.get("", summary="The confirmation inbox of a space")
async def list_confirmations(
    principal: PrincipalDep,
    service: ServiceDep,
    status: Annotated[Literal["pending", "answered", "all"], Query()] = "pending",
    space_key: Annotated[str | None, Query(alias="spaceKey")] = None,
) -> dict[str, Any]:
    """``pending``: waiting for an answer, oldest first (timed-out ones too: a late answer still
    counts); ``answered``: confirmed or rejected, newest first; ``all``: both."""
    space = principal.space(space_key)
    items = await service.store.confirmations.list(space, status)
    return {"items": [confirmation_out(item) for item in items]}


@router.get("/{confirmation_id}", summary="Read one confirmation")
async def get_confirmation(
    confirmation_id: str, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    found = await service.store.confirmations.get(principal.space_key, confirmation_id)
    return confirmation_out(found)


@router.post("/{confirmation_id}/confirm", summary="Confirm: the task succeeds, the flow goes on")
async def confirm(
    confirmation_id: str,
    principal: PrincipalDep,
    service: ServiceDep,
    body: Annotated[AnswerIn | None, Body()] = None,
) -> dict[str, Any]:
    """409 when the confirmation was already answered or its order was cancelled."""
    return await _answer(service, principal, confirmation_id, body, confirm=True)


@router.post("/{confirmation_id}/reject", summary="Reject: the task fails, the order fails")
async def reject(
    confirmation_id: str,
    principal: PrincipalDep,
    service: ServiceDep,
    body: Annotated[AnswerIn | None, Body()] = None,
) -> dict[str, Any]:
    """The comment becomes the task's failure reason. 409 when already answered."""
    return await _answer(service, principal, confirmation_id, body, confirm=False)


async def _answer(
    service: Service,
    principal: Principal,
    confirmation_id: str,
    body: AnswerIn | None,
    *,
    confirm: bool,
) -> dict[str, Any]:
    answered = await service.store.confirmations.answer(
        principal.space_key,
        confirmation_id,
        confirm=confirm,
        actor=principal.actor,
        comment=body.comment if body else None,
    )
    return confirmation_out(answered)
