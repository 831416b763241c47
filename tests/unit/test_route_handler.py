"""BoundedRoute calls an endpoint that takes only the request and returns a Response itself;
any other endpoint goes through FastAPI's handler (parameters, dependencies, serialising)."""

from __future__ import annotations

from typing import Annotated, Any

import httpx2
import pytest
from fastapi import Depends, FastAPI, Query, Request, Response

import ordermill.api.limits as limits
from ordermill.api.limits import BoundedRoute, _plain_endpoint
from ordermill.api.routes.orders import router as orders_router


async def _answer(request: Request) -> Response:
    return Response(request.url.path.encode(), status_code=201, media_type="text/plain")


async def _dict(request: Request) -> dict[str, Any]:
    return {"path": request.url.path}


async def _limit(request: Request, limit: Annotated[int, Query()] = 5) -> Response:
    return Response(str(limit).encode())


def _two() -> int:
    return 2


async def _depends(request: Request, two: Annotated[int, Depends(_two)]) -> Response:
    return Response(str(two).encode())


def _route(endpoint: Any) -> BoundedRoute:
    return BoundedRoute("/x", endpoint, methods=["POST"])


def test_the_order_intake_is_called_directly() -> None:
    intake = next(route for route in orders_router.routes if route.name == "create_order")
    assert isinstance(intake, BoundedRoute)
    assert _plain_endpoint(intake) is not None


@pytest.mark.parametrize("endpoint", [_dict, _limit, _depends])
def test_an_endpoint_with_parameters_dependencies_or_a_model_goes_through_fastapi(
    endpoint: Any,
) -> None:
    assert _plain_endpoint(_route(endpoint)) is None
    assert _plain_endpoint(_route(_answer)) is not None


async def test_both_paths_answer_as_fastapi_would(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_permission_check(request: Request) -> None:
        return None

    monkeypatch.setattr(limits, "enforce", no_permission_check)
    app = FastAPI()
    app.router.route_class = BoundedRoute
    app.post("/plain")(_answer)
    app.post("/dict")(_dict)
    app.post("/limit")(_limit)
    app.post("/depends")(_depends)
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
        plain = await client.post("/plain")
        assert (plain.status_code, plain.text) == (201, "/plain")
        assert (await client.post("/dict")).json() == {"path": "/dict"}
        assert (await client.post("/limit?limit=7")).text == "7"
        assert (await client.post("/limit?limit=x")).status_code == 422
        assert (await client.post("/depends")).text == "2"
