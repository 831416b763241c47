"""Health, readiness, the handler catalogue and the offline API docs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ordermill import metrics
from ordermill.api.auth import PrincipalDep, ServiceDep
from ordermill.api.limits import BoundedRoute
from ordermill.api.security import docs_csp
from ordermill.errors import StorageError
from ordermill.storage import migrate

router = APIRouter(route_class=BoundedRoute)


@router.get("/healthz", tags=["meta"], summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    tags=["meta"],
    summary="The database is reachable and migrated",
    responses={503: {"description": "Not ready: the database is unreachable or behind."}},
)
async def readyz(service: ServiceDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        current = await migrate.is_current(service.db)
        checks["database"] = "ok"
        checks["migrations"] = "ok" if current else "behind: run `ordermill migrate`"
    except StorageError as exc:
        checks["database"] = f"unreachable: {exc.message}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get(
    "/metrics",
    tags=["meta"],
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def prometheus(service: ServiceDep) -> Response:
    """This process's counters plus database-wide gauges (orders by status, queue depth)."""
    try:
        by_status, depth, oldest = await service.store.gauges()
        metrics.set_database_gauges(by_status, depth, oldest, service.clock.now())
    except StorageError:
        pass  # the process metrics are still worth serving while the database is away
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/api/handlers", tags=["handlers"], summary="Registered handlers and their payload schemas"
)
async def handlers(_: PrincipalDep, service: ServiceDep) -> dict[str, Any]:
    registry = service.registry
    items = []
    for key, schema in registry.schemas().items():
        handler = registry.get(key)
        items.append(
            {
                "key": key,
                "payloadSchema": schema,
                "defaultTimeoutDuration": handler.default_timeout_ms,
                "defaultRetry": handler.default_retry.to_wire(),
            }
        )
    return {"items": items}


@router.get("/api/docs", include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    static = request.app.url_path_for("api-static", path="")
    page = get_swagger_ui_html(
        openapi_url=request.app.openapi_url or "/api/openapi.json",
        title="ordermill API",
        swagger_js_url=f"{static}swagger/swagger-ui-bundle.js",
        swagger_css_url=f"{static}swagger/swagger-ui.css",
        swagger_favicon_url=f"{static}swagger/favicon-32x32.png",
    )
    page.headers["Content-Security-Policy"] = docs_csp(bytes(page.body).decode())
    page.headers["X-Content-Type-Options"] = "nosniff"
    page.headers["Referrer-Policy"] = "same-origin"
    return page
