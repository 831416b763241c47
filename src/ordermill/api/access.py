"""The one check of every route's permission, run before any route's own code.

Both route classes run `enforce` for each request, after the input checks and before the
route's dependencies and code: `limits.BoundedRoute` (the API) and `ui.routing.UiRoute`
(pages); `create_app` refuses to start with a route of any other class. It looks the route up
in `ordermill.permissions.ROUTE_RULES` (a route missing there is refused), identifies the
caller — the API key or admin key for API routes, the signed-in person for UI pages — and
refuses with 403 when the caller lacks the permission.
"""

from __future__ import annotations

from fastapi import Request

from ordermill.api.auth import authenticate
from ordermill.errors import Forbidden
from ordermill.permissions import Access, Perm, rule_for
from ordermill.service import Service


def _denied(permission: Perm) -> Forbidden:
    return Forbidden(f"This needs the permission {permission.value}, which you do not have.")


async def enforce(request: Request, *, page: bool = False) -> None:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    rule = rule_for(request.method, path) if isinstance(path, str) else None
    if rule is None:
        raise Forbidden("No permission is defined for this route, so nobody may use it.")
    if rule.need is Access.PUBLIC:
        return
    if rule.signed_link and (
        "signature" in request.query_params or "expires" in request.query_params
    ):
        return  # the route verifies the link itself
    if page:
        # (imported here: the UI's package imports its route class, which imports this)
        from ordermill.ui.session import current_session

        granted = (await current_session(request)).permissions
    else:
        service: Service = request.app.state.service
        granted = (await authenticate(request, service)).permissions
    permission = rule.permission
    if permission is not None and permission not in granted:
        raise _denied(permission)
