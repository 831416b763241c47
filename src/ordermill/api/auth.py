"""Who is calling: an admin (ORDERMILL_ADMIN_KEY) or a space's API key (Bearer token), and
what they may do (the permissions of the key's roles; the admin key may do everything)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from ordermill.errors import Forbidden, InvalidInput, Problem, Unauthorized
from ordermill.people import Actor
from ordermill.permissions import ALL_PERMISSIONS, Perm
from ordermill.service import Service
from ordermill.signatures import same_secret
from ordermill.storage.spaces import hash_secret

_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Principal:
    """The caller. ``space_key`` None means the admin, who may act in any space."""

    space_key: str | None
    actor: str
    permissions: frozenset[Perm] = ALL_PERMISSIONS

    def can(self, permission: Perm | str) -> bool:
        return permission in self.permissions

    @property
    def is_admin(self) -> bool:
        return self.space_key is None

    def space(self, requested: str | None, pointer: str = "/spaceKey") -> str:
        """The space this call acts in: the key's own, or the one an admin names."""
        if self.space_key is None:
            if not requested:
                raise InvalidInput(
                    [Problem(pointer, "the admin key must name the space (spaceKey)")]
                )
            return requested
        if requested and requested != self.space_key:
            raise Forbidden(f"this API key belongs to space {self.space_key!r}, not {requested!r}")
        return self.space_key


async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


_PRINCIPAL = "ordermill.principal"
"""Where a request keeps its principal once known (in its ASGI scope): the access check and
the route's dependency authenticate once between them."""


async def authenticate(request: Request, service: ServiceDep) -> Principal:
    known: Principal | None = request.scope.get(_PRINCIPAL)
    if known is not None:
        return known
    principal = await _authenticate(request, service)
    request.scope[_PRINCIPAL] = principal
    return principal


async def _authenticate(request: Request, service: Service) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    token = token.strip()
    admin = service.settings.admin_key
    if admin is not None and same_secret(token, admin.get_secret_value()):
        return Principal(None, "admin")
    cache: dict[str, tuple[float, Principal]] = request.app.state.auth_cache
    digest = hash_secret(token)
    cached = cache.get(digest)
    now = time.monotonic()
    if cached is not None and now - cached[0] < _CACHE_SECONDS:
        return cached[1]
    key = await service.store.spaces.authenticate(token)
    if key is None:
        raise Unauthorized("The API key is unknown or revoked.")
    principal = Principal(
        key.space_key,
        f"api-key:{key.prefix}… ({key.name})",
        await service.people.users.permissions(key.space_key, key.roles),
    )
    if len(cache) > 10_000:
        cache.clear()
    cache[digest] = (now, principal)
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def actor_of(request: Request, principal: Principal) -> Actor:
    """The caller as the audit trail records it."""
    client = request.client.host if request.client is not None else None
    return Actor(principal.actor, client, principal.permissions)
