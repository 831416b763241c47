"""/api/flows: create, read, version, validate and delete order flows."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, Request, Response

from ordermill.api.auth import PrincipalDep, ServiceDep, actor_of
from ordermill.api.limits import BoundedRoute
from ordermill.api.schemas import RowId, flow_out, version_out
from ordermill.errors import Conflict, NotFound
from ordermill.flows.examples import reference_flow
from ordermill.flows.schema import flow_json_schema

router = APIRouter(prefix="/api/flows", tags=["flows"], route_class=BoundedRoute)

FLOW_BODY = Body(
    openapi_examples={
        "reference": {"summary": "The reference connector flow", "value": reference_flow()}
    },
)
SAVED_FLOW_BODY = Body(
    openapi_examples={
        "reference": {"summary": "The reference connector flow", "value": reference_flow()},
        "bare": {
            "summary": "Only the stages: the key is the URL's, the name defaults to it",
            "value": {"stages": reference_flow()["stages"]},
        },
    },
)


def _space_of(document: Any) -> str | None:
    if isinstance(document, dict) and isinstance(document.get("spaceKey"), str):
        return str(document["spaceKey"])
    return None


@router.post("", status_code=201, summary="Create a flow")
async def create_flow(
    request: Request,
    principal: PrincipalDep,
    service: ServiceDep,
    response: Response,
    document: Any = FLOW_BODY,
) -> dict[str, Any]:
    """Create a flow (version 1). Posting the same flow again answers 200 with the stored one;
    a different flow under an existing key is a 409 — change flows with PUT."""
    space_key = principal.space(_space_of(document))
    definition = await service.parse_flow(space_key, document)
    try:
        existing = await service.store.flows.get(space_key, definition.key)
    except NotFound:
        existing = None
    if existing is not None:
        if existing.current.content_hash == definition.content_hash():
            response.status_code = 200
            return flow_out(existing)
        raise Conflict(
            f"flow {definition.key!r} already exists; "
            f"PUT /api/flows/{definition.key} makes a new version"
        )
    flow, _ = await service.store.flows.save(space_key, definition)
    await service.people.record(
        space_key, actor_of(request, principal), "flow.saved", flow.key, {"version": 1}
    )
    return flow_out(flow)


@router.get("", summary="List flows")
async def list_flows(
    principal: PrincipalDep,
    service: ServiceDep,
    space_key: str | None = Query(None, alias="spaceKey"),
) -> dict[str, Any]:
    flows = await service.store.flows.list_flows(principal.space(space_key))
    return {"items": [flow_out(flow) for flow in flows]}


@router.post("/validate", summary="Validate a flow without saving it")
async def validate(
    principal: PrincipalDep,
    service: ServiceDep,
    document: Any = FLOW_BODY,
    key: str | None = Query(
        None, description="The key the flow would be saved under (PUT /api/flows/{key})."
    ),
) -> dict[str, Any]:
    """Always 200: ``valid`` tells the verdict and ``problems`` lists every problem found.
    With ``key``, the body is checked as ``PUT /api/flows/{key}`` would check it."""
    space_key = principal.space_key or _space_of(document)
    problems = await service.validate_flow(space_key, document, saved_under=key)
    return {"valid": not problems, "problems": [p.as_dict() for p in problems]}


@router.get("/schema", summary="The JSON Schema of the flow format")
async def schema() -> dict[str, Any]:
    return flow_json_schema()


@router.get("/{key}", summary="Read a flow (its current version)")
async def get_flow(
    key: str,
    principal: PrincipalDep,
    service: ServiceDep,
    space_key: str | None = Query(None, alias="spaceKey"),
) -> dict[str, Any]:
    flow = await service.store.flows.get(principal.space(space_key), key, count_orders=True)
    return flow_out(flow)


@router.put("/{key}", summary="Save a new version of a flow (or create it)")
async def put_flow(
    key: str,
    request: Request,
    principal: PrincipalDep,
    service: ServiceDep,
    response: Response,
    document: Any = SAVED_FLOW_BODY,
) -> dict[str, Any]:
    """The body may leave out ``key`` (it is the key in the URL) and ``name`` (it defaults to
    the key), so a bare ``{"stages": [...]}`` document is enough."""
    space_key = principal.space(_space_of(document))
    flow, changed = await service.save_flow(space_key, document, saved_under=key)
    if changed:
        await service.people.record(
            space_key,
            actor_of(request, principal),
            "flow.saved",
            flow.key,
            {"version": flow.current_version},
        )
    if changed and flow.current_version == 1:
        response.status_code = 201
    return flow_out(flow)


@router.delete("/{key}", status_code=204, summary="Delete a flow")
async def delete_flow(
    key: str,
    request: Request,
    principal: PrincipalDep,
    service: ServiceDep,
    space_key: str | None = Query(None, alias="spaceKey"),
) -> Response:
    """The flow disappears from lists; orders already on it finish on their pinned version."""
    space = principal.space(space_key)
    await service.store.flows.delete(space, key)
    await service.people.record(space, actor_of(request, principal), "flow.deleted", key, None)
    return Response(status_code=204)


@router.get("/{key}/versions", summary="List a flow's versions, newest first")
async def list_versions(
    key: str,
    principal: PrincipalDep,
    service: ServiceDep,
    space_key: str | None = Query(None, alias="spaceKey"),
) -> dict[str, Any]:
    versions = await service.store.flows.versions(principal.space(space_key), key)
    return {"items": [version_out(v) for v in versions]}


@router.get("/{key}/versions/{number}", summary="Read one version of a flow")
async def get_version(
    key: str,
    number: RowId,
    principal: PrincipalDep,
    service: ServiceDep,
    space_key: str | None = Query(None, alias="spaceKey"),
) -> dict[str, Any]:
    return version_out(await service.store.flows.version(principal.space(space_key), key, number))
