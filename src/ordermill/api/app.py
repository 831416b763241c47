"""The app factory: API, engine (when embedded) and UI in one ASGI application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.staticfiles import StaticFiles

from ordermill import __version__
from ordermill.api.limits import BodySizeLimit, BodyTooLarge, BoundedRoute
from ordermill.api.openapi import exact_openapi
from ordermill.api.problems import install_problem_handlers, problem_response
from ordermill.api.routes import (
    answer_links,
    assets,
    confirmations,
    feedback,
    flows,
    meta,
    orders,
    people,
    spaces,
    steering,
    subscriptions,
)
from ordermill.api.security import relative_slash_redirects
from ordermill.config import Settings
from ordermill.engine.worker import Worker
from ordermill.service import Service
from ordermill.ui import install_ui
from ordermill.ui.routing import UiRoute

STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings, *, run_worker: bool = True, demo: bool = False) -> FastAPI:
    """Build the application. With ``run_worker`` the engine runs in the same process."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await Service.open(settings)
        app.state.service = service
        app.state.auth_cache = {}
        app.state.demo_tasks = set()
        worker: Worker | None = None
        runner: asyncio.Task[None] | None = None
        if run_worker:
            worker = service.worker()
            runner = asyncio.create_task(worker.run())
        app.state.worker = worker
        try:
            yield
        finally:
            if worker is not None and runner is not None:
                worker.stop()
                await runner
            for task in list(app.state.demo_tasks):
                task.cancel()
            await service.close()

    app = FastAPI(
        title="ordermill",
        version=__version__,
        summary="An order-flow engine for made-to-order and digital manufacturing.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    routers = [
        module.router
        for module in (
            meta,
            flows,
            orders,
            steering,
            feedback,
            spaces,
            subscriptions,
            people,
            confirmations,
            answer_links,
            assets,
        )
    ]
    routers.append(steering.flows_router)
    app.router.route_class = BoundedRoute  # (also for a route added to the app itself)
    app.openapi = lambda: exact_openapi(app, routers)  # type: ignore[method-assign]
    install_problem_handlers(app)
    relative_slash_redirects(app.router)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return problem_response(
            413,
            f"The request body is larger than the limit of {settings.max_body_bytes} bytes "
            "(ORDERMILL_MAX_BODY_BYTES).",
            instance=request.url.path,
            title="Content Too Large",  # as BodySizeLimit says it (RFC 9110's name)
        )

    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.mount("/api/static", StaticFiles(directory=STATIC), name="api-static")
    # FastAPI tries the routers in the order they were included, twice per request: the
    # router of the hottest route, the order intake, comes first (no other router has a path
    # under /api/orders before it, so no route is shadowed).
    for router in sorted(routers, key=lambda router: router is not orders.router):
        app.include_router(router)
    install_ui(app)
    if demo:
        from ordermill import demo as demo_module

        app.include_router(demo_module.router)
    every_route_enforces(app)
    return app


def every_route_enforces(app: FastAPI) -> None:
    """The permission check runs in the two route classes (see ``access``): a route of any
    other class would go unchecked, so the app does not start with one."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and not isinstance(route, BoundedRoute | UiRoute):
            raise TypeError(
                f"route {route.path} is a {type(route).__name__}; use BoundedRoute or UiRoute, "
                "which check its permission"
            )
