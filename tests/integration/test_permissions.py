"""Every route of the application needs a permission from the one route table, and refuses a
caller without it: 403 problem+json for the API, a 403 page for the UI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Mount, Route

from ordermill.api.app import create_app, every_route_enforces
from ordermill.api.limits import BoundedRoute
from ordermill.config import Settings
from ordermill.permissions import (
    ROUTE_RULES,
    SPACE_PERMISSIONS,
    Access,
    Perm,
    permissions_of,
    rule_for,
)
from ordermill.service import Service
from ordermill.ui.routing import UiRoute
from ordermill.ui.session import COOKIE, CSRF_HEADER, load_session

PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


def every_route(app: FastAPI) -> list[tuple[str, str, Any]]:
    """(method, path template, declared route) for every route the application answers."""
    found: list[tuple[str, str, Any]] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = context.path
        assert isinstance(path, str), route
        if isinstance(route, Mount):
            found.append(("MOUNT", path, route))
        elif isinstance(route, Route | APIRoute):
            for method in sorted(context.methods or ()):
                if method != "HEAD":
                    found.append((method, path, route))
        else:
            raise AssertionError(f"a route of unknown kind: {route!r}")
    return found


def test_every_route_of_the_application_has_a_rule_and_every_rule_a_route(
    tmp_path: Path,
) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", data_dir=tmp_path)
    app = create_app(settings, demo=True)
    routes = every_route(app)

    missing = [(m, p) for m, p, _ in routes if rule_for(m, p) is None]
    assert missing == [], "routes without an entry in ordermill.permissions"
    # The permission check runs in the two route classes; a plain Starlette route (or a
    # mount) runs no check, so it can only be public.
    unguarded = [
        (m, p)
        for m, p, route in routes
        if not isinstance(route, BoundedRoute | UiRoute)
        and ROUTE_RULES[(m, p)].need is not Access.PUBLIC
    ]
    assert unguarded == []
    assert all(
        isinstance(route, BoundedRoute | UiRoute)
        for _, _, route in routes
        if isinstance(route, APIRoute)
    )
    stale = sorted(set(ROUTE_RULES) - {(m, p) for m, p, _ in routes})
    assert stale == [], "entries of ordermill.permissions that match no route"
    assert len(routes) > 60


def test_grants_add_up_and_unknown_names_grant_nothing() -> None:
    assert permissions_of(["viewer"]) < permissions_of(["operator"]) < permissions_of(["admin"])
    assert permissions_of(["owner"]) == SPACE_PERMISSIONS
    assert Perm.SPACE_MANAGE not in permissions_of(["owner"])
    custom = {"shop": ["orders:order:create", "orders:order:view", "not:a:permission"]}
    assert permissions_of(["shop"], custom) == {Perm.ORDER_CREATE, Perm.ORDER_VIEW}
    assert permissions_of(["shop", "viewer"], custom) == permissions_of(["viewer"]) | {
        Perm.ORDER_CREATE
    }
    assert permissions_of(["nobody"], custom) == frozenset()


def concrete(path: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in ("key_id", "number", "asset_id", "session_id", "assignee"):
            return "1"
        if name == "key":
            return "acme"
        if name == "email":
            return "someone@example.com"
        return "x"

    return PARAM.sub(value, path)


async def key_with(
    client: httpx2.AsyncClient, admin: dict[str, str], name: str, permissions: list[str]
) -> dict[str, str]:
    role = await client.put(
        "/api/roles/" + name,
        params={"spaceKey": "acme"},
        json={"permissions": permissions},
        headers=admin,
    )
    assert role.status_code == 200, role.text
    made = await client.post(
        "/api/spaces/acme/api-keys", json={"name": name, "roles": [name]}, headers=admin
    )
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['key']}"}


async def call(
    client: httpx2.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> httpx2.Response:
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return await client.request(method, concrete(path), json=body, headers=headers)


async def test_every_api_route_refuses_a_key_without_its_permission(
    app: FastAPI, client: httpx2.AsyncClient, admin: dict[str, str], acme: dict[str, str]
) -> None:
    checked = 0
    for method, path, route in every_route(app):
        rule = rule_for(method, path)
        assert rule is not None
        needed = rule.permission
        if isinstance(route, UiRoute) or needed is None:
            continue
        others = sorted(p.value for p in SPACE_PERMISSIONS - {needed})
        without = await key_with(client, admin, f"no-{checked}", others)

        refused = await call(client, method, path, without)

        assert refused.status_code == 403, (method, path, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert needed.value in refused.json()["detail"], (method, path)
        if needed is Perm.SPACE_MANAGE:
            allowed = await call(client, method, path, admin)
        else:
            only = await key_with(client, admin, f"only-{checked}", [needed.value])
            allowed = await call(client, method, path, only)
        assert allowed.status_code != 403, (method, path, allowed.text)
        checked += 1
    assert checked > 35


async def test_every_ui_page_refuses_a_person_without_its_permission(
    app: FastAPI, client: httpx2.AsyncClient, admin: dict[str, str], acme: dict[str, str]
) -> None:
    service: Service = app.state.service
    users = service.people.users
    checked = 0
    for method, path, route in every_route(app):
        rule = rule_for(method, path)
        assert rule is not None
        needed = rule.permission
        if not isinstance(route, UiRoute) or needed is None:
            continue
        others = [p.value for p in SPACE_PERMISSIONS - {needed}]
        await users.put_role("acme", f"ui-no-{checked}", others)
        person = await users.create_user(f"p{checked}@example.com")
        await users.set_membership(person.id, "acme", [f"ui-no-{checked}"])
        token = await users.open_session(
            person.id, "acme", seconds=600, client=None, user_agent=None
        )
        session = await load_session(service, token)
        assert session is not None
        assert needed not in session.permissions
        headers = {"cookie": f"{COOKIE}={token}", CSRF_HEADER: session.csrf}

        refused = await client.request(method, concrete(path), headers=headers)

        assert refused.status_code == 403, (method, path, refused.text[:300])
        assert needed.value in refused.text, (method, path)
        await users.set_membership(person.id, "acme", [f"ui-no-{checked}", "viewer"])
        await users.put_role("acme", f"ui-no-{checked}", [needed.value])
        allowed = await client.request(method, concrete(path), headers=headers)
        assert allowed.status_code != 403, (method, path, allowed.text[:300])
        checked += 1
    assert checked > 15


@pytest.mark.parametrize("path", ["/account", "/settings", "/"])
async def test_ui_pages_send_an_anonymous_visitor_to_sign_in(
    client: httpx2.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/signin")


def test_the_app_refuses_to_start_with_a_route_that_would_skip_the_permission_check(
    tmp_path: Path,
) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", data_dir=tmp_path)
    app = create_app(settings)
    plain = APIRouter()  # its routes are plain APIRoutes, which run no permission check

    @plain.get("/api/unchecked")
    async def unchecked() -> dict[str, str]:
        return {"secret": "anyone could read this"}

    app.include_router(plain)
    with pytest.raises(TypeError, match="/api/unchecked is a APIRoute; use BoundedRoute"):
        every_route_enforces(app)

    # A route added to the app itself is a BoundedRoute, so it is checked like the rest.
    app.add_api_route("/api/also", unchecked, methods=["GET"])
    assert any(
        isinstance(route, BoundedRoute) and path == "/api/also"
        for _, path, route in every_route(app)
    )
