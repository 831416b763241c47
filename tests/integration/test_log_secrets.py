"""No secret reaches the log, in either format, whatever goes wrong.

Each test makes one kind of failure happen with known secrets in play (an API key and the admin
key in ``Authorization``, a session cookie, a webhook signature, a signed link's signature, a
feedback token, a space's signing secret) and reads everything written to stderr.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from types import MappingProxyType
from typing import Any, ClassVar

import httpx2
import pytest
import structlog
from fastapi import FastAPI, Request
from pydantic import BaseModel

from ordermill import permissions
from ordermill.flows.model import RetryPolicy
from ordermill.handlers.base import Outcome, TaskContext
from ordermill.logs import configure_logging, flush_logs
from ordermill.permissions import Perm, Rule
from ordermill.service import Service
from tests.integration.conftest import ADMIN_KEY, wait_for_status
from tests.support.factories import flow_doc, order_doc
from tests.support.logstate import logging_restored
from tests.support.receiver import HttpsReceiver, Reply

COOKIE = "ordermill_session=c2Vzc2lvbi1zZWNyZXQtdmFsdWU.sig-of-the-session"
SIGNATURE = "dGhpcy1pcy1hLWxpbmstc2lnbmF0dXJlLXZhbHVl"
WEBHOOK_SIGNATURE = "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="


class Logs:
    def __init__(self, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
        self.capsys, self.fmt = capsys, fmt

    def text(self) -> str:
        flush_logs()
        return self.capsys.readouterr().err


@pytest.fixture(params=["console", "json"])
def logs(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> Iterator[Logs]:
    with logging_restored():
        configure_logging("INFO", request.param, secrets=[ADMIN_KEY])
        yield Logs(capsys, request.param)


def assert_clean(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret!r} appears in the log:\n{text}"


def exception_of(logs: Logs, text: str, event: str) -> str:
    """The traceback logged with ``event``: it must be there, in either format."""
    if logs.fmt == "json":
        lines = [json.loads(line) for line in text.splitlines() if f'"{event}"' in line]
        assert lines
        return "\n".join(line["exception"] for line in lines)
    assert event in text
    return text


async def test_a_500_in_a_route_logs_a_traceback_without_locals_or_secrets(
    app: FastAPI,
    client: httpx2.AsyncClient,
    make_space: Callable[..., Any],
    logs: Logs,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    space = await make_space("acme")
    api_key = space["Authorization"].removeprefix("Bearer ")
    # A route of this test only: it needs a permission like every route.
    rules = {**permissions.ROUTE_RULES, ("GET", "/api/explode"): Rule(Perm.ORDER_VIEW)}
    monkeypatch.setattr(permissions, "ROUTE_RULES", MappingProxyType(rules))

    async def explode(request: Request) -> None:
        headers = dict(request.headers)  # a local holding every secret header
        raise RuntimeError(f"exploded for {headers['authorization']} at {request.url}")

    app.add_api_route("/api/explode", explode, methods=["GET"])
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for key in (api_key, ADMIN_KEY):
            response = await http.get(
                f"/api/explode?expires=9999999999&signature={SIGNATURE}",
                headers={
                    "Authorization": f"Bearer {key}",
                    "Cookie": COOKIE,
                    "webhook-signature": WEBHOOK_SIGNATURE,
                },
            )
        assert response.status_code == 500

    text = logs.text()
    assert_clean(text, [api_key, ADMIN_KEY, COOKIE.split("=", 1)[1], SIGNATURE, WEBHOOK_SIGNATURE])
    traceback = exception_of(logs, text, "unhandled error")
    assert "Traceback (most recent call last)" in traceback
    assert "RuntimeError: exploded for Bearer [redacted]" in traceback
    assert "headers = " not in text  # no local variables
    assert "'type': 'http'" not in text  # nor the ASGI scope


class NoPayload(BaseModel):
    pass


class Crash:
    """A handler that dies with the task's secrets in its locals and its message."""

    key: ClassVar[str] = "crash"
    payload_model: ClassVar[type[BaseModel]] = NoPayload
    default_timeout_ms: ClassVar[int] = 5_000
    default_retry: ClassVar[RetryPolicy] = RetryPolicy(max_attempts=1)
    seen: ClassVar[list[TaskContext]] = []

    async def run(self, ctx: TaskContext) -> Outcome:
        self.seen.append(ctx)
        secrets = ctx.signing_secrets
        raise RuntimeError(f"crashed posting to {ctx.update_url} signed with {secrets}")

    async def close(self) -> None:
        return None


async def test_a_handler_crash_logs_no_feedback_token_or_signing_secret(
    service: Service, client: httpx2.AsyncClient, make_space: Callable[..., Any], logs: Logs
) -> None:
    space = await make_space("acme")
    service.registry.register(Crash())
    flow = flow_doc("https://example.com/o", handlerKey="crash", payload={})
    assert (await client.post("/api/flows", json=flow, headers=space)).status_code == 201
    created = await client.post("/api/orders", json=order_doc(), headers=space)
    await wait_for_status(client, space, created.json()["id"], "FAILURE")

    [ctx] = Crash.seen[-1:]
    token = ctx.update_url.rsplit("/", 1)[1]
    assert ctx.signing_secrets
    text = logs.text()
    assert_clean(text, [token, *ctx.signing_secrets, space["Authorization"].split()[1]])
    traceback = exception_of(logs, text, "handler crashed")
    assert "/api/feedback/[redacted]" in traceback
    assert "whsec_[redacted]" in traceback


async def test_connector_errors_and_access_lines_log_no_token(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
    logs: Logs,
) -> None:
    https_receiver.script("/o", Reply(status=500, body=b"internal"))
    flow = flow_doc(https_receiver.url("/o"), retry={"maxAttempts": 1})
    assert (await client.post("/api/flows", json=flow, headers=acme)).status_code == 201
    created = await client.post("/api/orders", json=order_doc(), headers=acme)
    await wait_for_status(client, acme, created.json()["id"], "FAILURE")
    [delivery] = https_receiver.requests
    update_url = delivery.json()["order"]["updateUrl"]
    token = update_url.rsplit("/", 1)[1]
    path = update_url.removeprefix("http://testserver")

    refused = await client.post(
        path, content=b"{}", headers={"webhook-signature": WEBHOOK_SIGNATURE, "Cookie": COOKIE}
    )
    assert 400 <= refused.status_code < 500
    # The line uvicorn's access log writes for that request, should it be switched on.
    logging.getLogger("uvicorn.access").warning(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "POST", path, "1.1", refused.status_code
    )
    # Event fields that hold secrets, as a handler or a plug-in might log them.
    structlog.get_logger("ordermill.test").error(
        "connector failed",
        url=update_url,
        headers={"Authorization": acme["Authorization"], "webhook-signature": WEBHOOK_SIGNATURE},
        detail=f"{update_url} answered with {acme['Authorization']}",
    )

    text = logs.text()
    assert path.removesuffix(token) + "[redacted]" in text
    assert_clean(text, [token, acme["Authorization"].split()[1], WEBHOOK_SIGNATURE])
