"""The people page: the space's members and their roles; invite, change roles, remove."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request, Response

from ordermill.permissions import BUILTIN_ROLES
from ordermill.service import Service
from ordermill.ui.routing import ui_router
from ordermill.ui.session import SessionDep
from ordermill.ui.templating import Toast, redirect, render

router = ui_router()
Email = Annotated[str, Form(max_length=320)]
Role = Annotated[str, Form(max_length=64)]


@router.get("/people")
async def people_page(request: Request, session: SessionDep) -> Response:
    service: Service = request.app.state.service
    custom = await service.people.users.custom_roles(session.space_key)
    return render(
        request,
        "people.html",
        active="people",
        members=await service.people.members(session.space_key),
        roles=[*BUILTIN_ROLES, *custom],
    )


@router.post("/people")
async def invite(
    request: Request, session: SessionDep, email: Email = "", role: Role = ""
) -> Response:
    service: Service = request.app.state.service
    invited = await service.people.invite(
        session.space_key, email, [role], session.audit_actor(request)
    )
    if invited.mailed:
        note = f"Invitation mailed to {invited.user.email}."
    elif invited.link is not None:
        note = f"No mail server is set up: hand {invited.user.email} this link: {invited.link}"
    else:
        note = f"{invited.user.email} is now {role} here."
    return redirect(request, "/people", Toast(note))


@router.post("/people/roles")
async def change_role(
    request: Request, session: SessionDep, email: Email = "", role: Role = ""
) -> Response:
    service: Service = request.app.state.service
    await service.people.set_roles(session.space_key, email, [role], session.audit_actor(request))
    return redirect(request, "/people", Toast(f"{email} is now {role}."))


@router.post("/people/remove")
async def remove(request: Request, session: SessionDep, email: Email = "") -> Response:
    service: Service = request.app.state.service
    await service.people.remove(session.space_key, email, session.audit_actor(request))
    return redirect(request, "/people", Toast(f"{email} no longer belongs to this space.", "info"))
