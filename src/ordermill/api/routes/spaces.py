"""/api/spaces: spaces and their API keys (creating spaces needs the admin key)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from ordermill.api.auth import PrincipalDep, ServiceDep, actor_of
from ordermill.api.limits import BoundedRoute
from ordermill.api.schemas import AllowancesIn, ApiKeyIn, RequireSignatureIn, RowId, SpaceIn
from ordermill.storage.spaces import ApiKey, Space
from ordermill.times import iso

router = APIRouter(prefix="/api/spaces", tags=["spaces"], route_class=BoundedRoute)


def space_out(space: Space) -> dict[str, Any]:
    return {
        "key": space.key,
        "name": space.name,
        "createdAt": iso(space.created_at),
        "connectorAllowNetworks": list(space.allow_networks),
        "connectorAllowHttp": list(space.allow_http_hosts),
        "requireFeedbackSignature": bool(space.settings.get("requireFeedbackSignature")),
    }


def key_out(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "createdAt": iso(key.created_at),
        "revokedAt": iso(key.revoked_at),
        "roles": list(key.roles),
    }


@router.post("", status_code=201, summary="Create a space (admin)")
async def create_space(body: SpaceIn, _: PrincipalDep, service: ServiceDep) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if body.connectorAllowNetworks:
        settings["connectorAllowNetworks"] = body.connectorAllowNetworks
    if body.connectorAllowHttp:
        settings["connectorAllowHttp"] = body.connectorAllowHttp
    space = await service.store.spaces.create_space(body.key, body.name, settings)
    return space_out(space)


@router.get("", summary="List spaces (admin)")
async def list_spaces(_: PrincipalDep, service: ServiceDep) -> dict[str, Any]:
    return {"items": [space_out(s) for s in await service.store.spaces.list_spaces()]}


@router.get("/{key}", summary="Read a space")
async def get_space(key: str, principal: PrincipalDep, service: ServiceDep) -> dict[str, Any]:
    return space_out(await service.store.spaces.get_space(principal.space(key)))


@router.get("/{key}/signing-secret", summary="The space's live signing secrets")
async def signing_secret(key: str, principal: PrincipalDep, service: ServiceDep) -> dict[str, Any]:
    """Receivers verify connector requests with these (newest first; two during a rotation)."""
    secrets = await service.store.spaces.signing_secrets(principal.space(key))
    return {"current": secrets[0], "all": secrets}


@router.post("/{key}/signing-secret/rotate", summary="Rotate the signing secret")
async def rotate_secret(
    key: str, request: Request, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    """Makes a new secret; the old one keeps signing too until ``previousExpiresAt``
    (ORDERMILL_SIGNING_SECRET_OVERLAP_HOURS, 24 by default), so receivers can switch over."""
    overlap = timedelta(hours=service.settings.signing_secret_overlap_hours)
    space = principal.space(key)
    secret, expires = await service.store.spaces.rotate_signing_secret(space, overlap)
    await service.people.record(
        space,
        actor_of(request, principal),
        "settings.signing-secret-rotated",
        None,
        {"previousExpiresAt": iso(expires)},
    )
    return {"current": secret, "previousExpiresAt": iso(expires)}


@router.put(
    "/{key}/connector-allowances", summary="Change what the space's connectors may reach (admin)"
)
async def set_allowances(
    key: str, body: AllowancesIn, request: Request, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    """Replaces the space's extra networks (CIDRs) and plain-http hosts; empty lists remove them."""
    space = await service.store.spaces.update_settings(
        key,
        connectorAllowNetworks=body.connectorAllowNetworks,
        connectorAllowHttp=body.connectorAllowHttp,
    )
    await service.people.record(
        key,
        actor_of(request, principal),
        "settings.connector-allowances",
        None,
        body.model_dump(),
    )
    return space_out(space)


@router.put("/{key}/feedback-signature", summary="Require signed feedback, or not")
async def require_signature(
    key: str,
    body: RequireSignatureIn,
    request: Request,
    principal: PrincipalDep,
    service: ServiceDep,
) -> dict[str, Any]:
    space = await service.store.spaces.update_settings(
        principal.space(key), requireFeedbackSignature=body.requireFeedbackSignature
    )
    await service.people.record(
        space.key,
        actor_of(request, principal),
        "settings.feedback-signature",
        None,
        {"requireFeedbackSignature": body.requireFeedbackSignature},
    )
    return space_out(space)


@router.post("/{key}/api-keys", status_code=201, summary="Create an API key (shown once)")
async def create_key(
    key: str, body: ApiKeyIn, request: Request, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    """The key holds what its ``roles`` grant (``owner`` when none are named); nobody makes a
    key that may do more than they may."""
    secret, record = await service.people.create_key(
        principal.space(key), body.name, body.roles, actor_of(request, principal)
    )
    return {**key_out(record), "key": secret}


@router.get("/{key}/api-keys", summary="List a space's API keys")
async def list_keys(key: str, principal: PrincipalDep, service: ServiceDep) -> dict[str, Any]:
    keys = await service.store.spaces.list_api_keys(principal.space(key))
    return {"items": [key_out(k) for k in keys]}


@router.delete("/{key}/api-keys/{key_id}", status_code=204, summary="Revoke an API key")
async def revoke_key(
    key: str, key_id: RowId, request: Request, principal: PrincipalDep, service: ServiceDep
) -> Response:
    await service.people.revoke_key(principal.space(key), key_id, actor_of(request, principal))
    return Response(status_code=204)
