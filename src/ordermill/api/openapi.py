"""The OpenAPI document, made exact: every schema it names exists, every route says how it
authenticates, and every status the service answers is documented (400 for bad input, not
FastAPI's 422), each error as an RFC 9457 problem."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from ordermill.api.idempotency import once_per_key
from ordermill.permissions import Access, rule_for

SECURITY_SCHEME = "apiKey"
PROBLEM = {"$ref": "#/components/schemas/Problem"}

# Operations that can contradict stored state (409), by method and path.
CONFLICTS = {
    ("POST", "/api/flows"),
    ("PUT", "/api/flows/{key}"),
    ("POST", "/api/orders"),
    ("POST", "/api/orders/{order_id}/start"),
    ("POST", "/api/orders/{order_id}/retry"),
    ("POST", "/api/orders/{order_id}/tasks/{task_key}/retry"),
    ("POST", "/api/orders/{order_id}/tasks/{task_key}/redeliver"),
    ("POST", "/api/orders/{order_id}/cancel"),
    ("POST", "/api/orders/{order_id}/pause"),
    ("POST", "/api/orders/{order_id}/resume"),
    ("POST", "/api/orders/{order_id}/restart"),
    ("POST", "/api/orders/{order_id}/tasks/{task_key}/skip"),
    ("PATCH", "/api/orders/{order_id}"),
    ("POST", "/api/feedback/{token}"),
    ("POST", "/api/spaces"),
    ("POST", "/api/users"),
    ("PUT", "/api/roles/{name}"),
    ("POST", "/api/confirmations/{confirmation_id}/confirm"),
    ("POST", "/api/confirmations/{confirmation_id}/reject"),
}
# Operations that look up something named in the body or query (a flow, a space, a token): 404.
LOOKUPS = {
    ("POST", "/api/orders"),
    ("POST", "/api/flows/validate"),
    ("PUT", "/api/flows/{key}"),
    ("POST", "/api/orders/restart"),
    ("POST", "/api/flows/dry-run"),
    ("GET", "/api/users"),
    ("POST", "/api/users"),
    ("GET", "/api/roles"),
    ("GET", "/api/audit"),
}
# Operations whose own credential can be refused (401) without an API key.
SIGNED = {("POST", "/api/feedback/{token}")}
# Success answers besides the route's main one: idempotent creation answers 200 with the
# stored resource, and PUT creates a flow that does not exist yet.
ALSO_SUCCEEDS = {
    ("POST", "/api/orders"): ("200", "The same order again: the stored one."),
    ("POST", "/api/flows"): ("200", "The same flow again: the stored one."),
    ("PUT", "/api/flows/{key}"): ("201", "A new flow (version 1)."),
}
# Operations taking an API key or, instead, a signed link in the query.
KEY_OR_LINK = {("GET", "/api/assets/{asset_id}/download")}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document; ``problems`` locates each input error.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "correlationId": {"type": "string"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["pointer", "message"],
                "properties": {
                    "pointer": {"type": "string", "description": "An RFC 6901 JSON pointer."},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
ERRORS = {
    "400": "The request is invalid: each problem names its JSON pointer.",
    "401": "No API key, or an unknown or revoked one.",
    "403": "The key may not act on this space (or this needs the admin key).",
    "404": "No such resource in the key's space.",
    "409": "The request contradicts stored state.",
    "422": "The Idempotency-Key was sent before with another request.",
    "413": "The request body is larger than ORDERMILL_MAX_BODY_BYTES.",
}


def exact_openapi(app: FastAPI, routers: Iterable[APIRouter]) -> dict[str, Any]:
    """The document served at /api/openapi.json (built once, then cached on the app), for the
    app whose API routes are those of ``routers``."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = {
        SECURITY_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "A space's API key (om_…) or the admin key: "
            "`Authorization: Bearer <key>`.",
        }
    }
    for route in (route for router in routers for route in router.routes):
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in route.methods or ():
                operation = document["paths"][route.path_format][method.lower()]
                _describe(operation, route, method, schemas)
    _lift_definitions(document, schemas)
    app.openapi_schema = document
    return document


def _describe(
    operation: dict[str, Any], route: APIRoute, method: str, schemas: dict[str, Any]
) -> None:
    key = (method, route.path_format)
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's validation error; ours is 400
    codes: set[str] = set()
    has_input = bool(route.dependant.path_params or route.dependant.query_params)
    has_body = "requestBody" in operation
    if has_input or has_body:
        codes.add("400")
    if has_body:
        codes.add("413")
    rule = rule_for(method, route.path_format)  # the one table of what each route needs
    secured = (rule is not None and rule.need is not Access.PUBLIC) or key in KEY_OR_LINK
    if secured:
        codes.update(("401", "403"))
        scheme: list[dict[str, list[str]]] = [{SECURITY_SCHEME: []}]
        operation["security"] = [*scheme, {}] if key in KEY_OR_LINK else scheme
    elif route.path_format.startswith("/api/"):
        operation["security"] = []
    if key in SIGNED:
        codes.add("401")
    if key in ALSO_SUCCEEDS:
        code, description = ALSO_SUCCEEDS[key]
        main = responses[str(route.status_code or 200)]
        responses.setdefault(code, {**main, "description": description})
    if route.dependant.path_params or key in LOOKUPS:
        codes.add("404")
    if key in CONFLICTS:
        codes.add("409")
    if _needs(route.dependant, once_per_key):
        # A resend while the first request is being answered (409), a key reused (422).
        codes.update(("409", "422"))
    for code in sorted(codes):
        responses.setdefault(
            code,
            {
                "description": ERRORS[code],
                "content": {"application/problem+json": {"schema": PROBLEM}},
            },
        )


def _needs(dependant: Dependant, call: Any) -> bool:
    return any(dep.call is call for dep in _walk(dependant))


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _walk(dependency)


def _lift_definitions(document: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Request bodies given as whole model schemas carry their own ``$defs``: move those (and
    the body's model itself) into components, so every ``$ref`` points at a schema."""
    for item in document["paths"].values():
        for operation in item.values():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                schema = media.get("schema", {})
                definitions = schema.pop("$defs", {})
                for name, definition in definitions.items():
                    schemas.setdefault(name, definition)
                title = schema.get("title")
                if definitions and isinstance(title, str) and "properties" in schema:
                    schemas.setdefault(title, schema)
                    media["schema"] = {"$ref": f"#/components/schemas/{title}"}
    _rewrite_refs(document)


def _rewrite_refs(node: Any) -> None:
    stack = [node]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                value["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
