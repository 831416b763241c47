"""/api/users, /api/roles and /api/audit: the people of a space, its roles, and its audit trail.

Calls made with the admin key name the space with ``spaceKey``; a space's own key acts in its
space.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from ordermill.api.auth import PrincipalDep, ServiceDep, actor_of
from ordermill.api.limits import BoundedRoute
from ordermill.api.schemas import RoleIn, RolesIn, UserIn
from ordermill.permissions import BUILTIN_ROLES, Perm
from ordermill.storage.audit import AuditEntry
from ordermill.storage.users import Membership
from ordermill.times import iso

router = APIRouter(tags=["people"], route_class=BoundedRoute)
SpaceQuery = Annotated[str | None, Query(alias="spaceKey", max_length=128)]


def member_out(member: Membership) -> dict[str, Any]:
    return {
        "email": member.user.email,
        "displayName": member.user.display_name,
        "roles": list(member.roles),
        "hasPassword": member.user.has_password,
        "createdAt": iso(member.user.created_at),
    }


def role_out(name: str, granted: Iterable[Perm], built_in: bool) -> dict[str, Any]:
    return {"name": name, "builtIn": built_in, "permissions": sorted(p.value for p in granted)}


def audit_out(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": iso(entry.at),
        "actor": entry.actor,
        "client": entry.client,
        "action": entry.action,
        "target": entry.target,
        "changes": entry.changes,
    }


@router.get("/api/users", summary="The members of a space and their roles")
async def list_users(
    principal: PrincipalDep, service: ServiceDep, space_key: SpaceQuery = None
) -> dict[str, Any]:
    members = await service.people.members(principal.space(space_key, "/spaceKey"))
    return {"items": [member_out(m) for m in members]}


@router.post("/api/users", status_code=201, summary="Invite someone to a space")
async def invite_user(
    body: UserIn, request: Request, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    """A new person gets a one-time link (valid one hour) to set a password: mailed when SMTP
    is configured, otherwise returned here as ``link`` to hand over. Someone who already has a
    password just gains the membership."""
    space = principal.space(body.spaceKey)
    invited = await service.people.invite(
        space,
        body.email,
        body.roles,
        actor_of(request, principal),
        display_name=body.displayName,
    )
    roles = await service.people.users.roles_in(invited.user.id, space) or ()
    return {
        **member_out(Membership(invited.user, space, roles)),
        "mailed": invited.mailed,
        "link": None if invited.mailed else invited.link,
    }


@router.put("/api/users/{email}/roles", summary="Change a member's roles (holds at once)")
async def set_user_roles(
    email: str,
    body: RolesIn,
    request: Request,
    principal: PrincipalDep,
    service: ServiceDep,
    space_key: SpaceQuery = None,
) -> dict[str, Any]:
    space = principal.space(space_key)
    await service.people.set_roles(space, email, body.roles, actor_of(request, principal))
    user = await service.people.users.find_user(email)
    assert user is not None
    roles = await service.people.users.roles_in(user.id, space) or ()
    return member_out(Membership(user, space, roles))


@router.delete("/api/users/{email}", status_code=204, summary="Remove someone from a space")
async def remove_user(
    email: str,
    request: Request,
    principal: PrincipalDep,
    service: ServiceDep,
    space_key: SpaceQuery = None,
) -> Response:
    await service.people.remove(principal.space(space_key), email, actor_of(request, principal))
    return Response(status_code=204)


@router.get("/api/roles", summary="The roles of a space: built-in and its own")
async def list_roles(
    principal: PrincipalDep, service: ServiceDep, space_key: SpaceQuery = None
) -> dict[str, Any]:
    space = principal.space(space_key)
    custom = await service.people.users.custom_roles(space)
    items = [role_out(name, granted, True) for name, granted in BUILTIN_ROLES.items()]
    items += [role_out(name, granted, False) for name, granted in custom.items()]
    return {"items": items}


@router.put("/api/roles/{name}", summary="Create or change a custom role of a space")
async def put_role(
    name: str,
    body: RoleIn,
    request: Request,
    principal: PrincipalDep,
    service: ServiceDep,
    space_key: SpaceQuery = None,
) -> dict[str, Any]:
    space = principal.space(space_key)
    await service.people.put_role(space, name, body.permissions, actor_of(request, principal))
    return role_out(name, (await service.people.users.custom_roles(space))[name], False)


@router.delete("/api/roles/{name}", status_code=204, summary="Delete a custom role")
async def delete_role(
    name: str,
    request: Request,
    principal: PrincipalDep,
    service: ServiceDep,
    space_key: SpaceQuery = None,
) -> Response:
    await service.people.delete_role(principal.space(space_key), name, actor_of(request, principal))
    return Response(status_code=204)


@router.get("/api/audit", summary="A space's administrative actions, newest first")
async def list_audit(
    principal: PrincipalDep,
    service: ServiceDep,
    space_key: SpaceQuery = None,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Who changed people, roles, keys, flows and settings: actor, time, client address and
    what changed. Page back with ``before`` (the last ``id`` seen)."""
    entries = await service.people.audit.entries(
        principal.space(space_key), limit=limit, before=before
    )
    return {"items": [audit_out(e) for e in entries]}
