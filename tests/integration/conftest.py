"""Integration fixtures: the API in-process on a real database, SQLite and PostgreSQL alike.

Every test that asks for `client` runs twice: once on a SQLite file, once on a fresh PostgreSQL
database (marked `postgres`).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI

from ordermill.api.app import create_app
from ordermill.config import Settings
from ordermill.service import Service
from tests.support.factories import flow_doc, order_doc
from tests.support.receiver import HttpsReceiver, ReceivedRequest

__all__ = ["flow_doc", "order_doc", "wait_for_status"]

ADMIN_KEY = "admin-test-key"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/ordermill.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "admin_key": ADMIN_KEY,
            "data_dir": tmp_path / "data",
            "public_url": "http://testserver",
            "poll_interval_seconds": 0.05,
            "lease_seconds": 5.0,
            "max_body_bytes": 64 * 1024,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings], request: pytest.FixtureRequest) -> Settings:
    """Settings trusting the test CA when the test uses an https receiver."""
    if "https_receiver" in request.fixturenames:
        receiver: HttpsReceiver = request.getfixturevalue("https_receiver")
        return make_settings(connector_ca_file=receiver.ca_pem_path)
    return make_settings()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The application with its engine running, as `ordermill serve` runs it."""
    application = create_app(settings, run_worker=True)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def service(app: FastAPI) -> Service:
    svc: Service = app.state.service
    return svc


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def make_space(client: httpx2.AsyncClient, admin: dict[str, str]) -> Callable[..., Any]:
    """Create a space through the API; returns the auth header of its first API key."""

    async def make(key: str = "acme", **extra: Any) -> dict[str, str]:
        response = await client.post("/api/spaces", json={"key": key, **extra}, headers=admin)
        assert response.status_code == 201, response.text
        response = await client.post(
            f"/api/spaces/{key}/api-keys", json={"name": "test"}, headers=admin
        )
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['key']}"}

    return make


@pytest.fixture
async def acme(make_space: Callable[..., Any]) -> dict[str, str]:
    """Space `acme`, whose connectors may reach 127.0.0.1 (the test receivers live there)."""
    headers: dict[str, str] = await make_space("acme", connectorAllowNetworks=["127.0.0.1/32"])
    return headers


async def wait_for_status(
    client: httpx2.AsyncClient,
    headers: dict[str, str],
    order_id: str,
    *statuses: str,
    timeout: float = 20.0,
) -> dict[str, Any]:
    """Poll the order until it reaches one of ``statuses`` (bounded; fails with the last view)."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    order: dict[str, Any] = {}
    while loop.time() < deadline:
        order = (await client.get(f"/api/orders/{order_id}", headers=headers)).json()
        if order.get("status") in statuses:
            return order
        await asyncio.sleep(0.05)
    raise AssertionError(f"order never reached {statuses}; last seen: {order}")


# --- added for the API and engine suites ----------------------------------------------------------


@pytest.fixture
def gate(client: httpx2.AsyncClient) -> Iterator[threading.Event]:
    """A gate for receiver replies (`Reply(before=held_by(gate))`), opened at teardown.

    It depends on `client` so it is opened before the app stops: no connector call is left
    hanging while the engine shuts down.
    """
    event = threading.Event()
    yield event
    event.set()


def held_by(gate: threading.Event, timeout: float = 10.0) -> Callable[[ReceivedRequest], None]:
    """A receiver `before` hook that holds the answer until the test opens ``gate``."""

    def hold(_: ReceivedRequest) -> None:
        if not gate.wait(timeout):
            raise TimeoutError(f"the test did not open the gate within {timeout} s")

    return hold


async def wait_for_requests(
    receiver: HttpsReceiver, count: int, *, path: str | None = None, timeout: float = 10.0
) -> list[ReceivedRequest]:
    """`receiver.wait_for` without blocking the event loop the app and its engine run on."""
    import asyncio

    return await asyncio.to_thread(receiver.wait_for, count, timeout, path=path)


def bearer_prefix(headers: dict[str, str]) -> str:
    """The shown prefix of the API key in ``headers`` (``om_`` and six characters)."""
    return headers["Authorization"].removeprefix("Bearer ")[:9]


async def sign_in_owner(service: Service, browser: httpx2.AsyncClient, space: str = "acme") -> None:
    """Sign ``browser`` in as an owner of ``space`` who has a password."""
    from tests.browser.test_pages_http import EMAIL, PASSWORD, sign_in

    user = await service.people.users.create_user(EMAIL, "Ops")
    await service.people.users.set_membership(user.id, space, ["owner"])
    await service.people.users.set_password(user.id, PASSWORD)
    signed_in = await sign_in(browser, EMAIL)
    assert signed_in.status_code == 303, signed_in.text
