"""The flows list, and creating a flow from the reference template."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request, Response

from ordermill.errors import InvalidInput, NotFound, Problem
from ordermill.flows.examples import reference_flow
from ordermill.service import Service
from ordermill.ui.routing import ui_router
from ordermill.ui.session import Session, SessionDep
from ordermill.ui.templating import Toast, redirect, render

router = ui_router()


def template_flow(key: str, name: str) -> dict[str, Any]:
    """New flows start from the reference one-task flow (SPEC §2.1); no name: the key's."""
    flow = reference_flow(key, name)
    if not name:
        del flow["name"]
    return flow


async def _list_page(
    request: Request,
    session: Session,
    *,
    status_code: int = 200,
    problems: list[Problem] | None = None,
    key: str = "",
    name: str = "",
) -> Response:
    service: Service = request.app.state.service
    flows = await service.store.flows.list_flows(session.space_key)
    return render(
        request,
        "flows.html",
        status_code=status_code,
        active="flows",
        flows=flows,
        problems=problems or [],
        new_key=key,
        new_name=name,
    )


@router.get("/flows")
async def flows_page(request: Request, session: SessionDep) -> Response:
    return await _list_page(request, session)


@router.post("/flows")
async def create_flow(
    request: Request,
    session: SessionDep,
    key: Annotated[str, Form(max_length=200)] = "",
    name: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Create version 1 from the template; refused when the key is taken or invalid."""
    service: Service = request.app.state.service
    key, name = key.strip(), name.strip()
    try:
        await service.store.flows.get(session.space_key, key)
    except NotFound:
        pass
    else:
        problem = Problem("/key", f"a flow with key {key!r} already exists; pick another key")
        return await _list_page(
            request, session, status_code=409, problems=[problem], key=key, name=name
        )
    try:
        await service.save_flow(session.space_key, template_flow(key, name))
    except InvalidInput as exc:
        return await _list_page(
            request, session, status_code=400, problems=exc.problems, key=key, name=name
        )
    await service.people.record(
        session.space_key, session.audit_actor(request), "flow.saved", key, {"version": 1}
    )
    toast = Toast(f"Flow {key} created from the template. Edit its stages below.")
    return redirect(request, f"/flows/{key}", toast)
