"""A throwaway local stand-in for ordermill during ``connector check --listen``.

It listens on 127.0.0.1 only (plain http), serves the sample order's asset files and records
the feedback a connector POSTs to the sample order's ``updateUrl``, checking it like ordermill
would: the JSON shape, and the Standard Webhooks signature when one is sent.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
from dataclasses import dataclass

from aiohttp import web

from ordermill.connector.errors import SignatureError
from ordermill.connector.sample import SAMPLE_ASSETS
from ordermill.connector.signature import Secrets, check_signature

BODY_LIMIT = 1024 * 1024
_FEEDBACK_KEYS = frozenset({"status", "message", "data", "assets"})


@dataclass(frozen=True)
class ReceivedFeedback:
    """One feedback POST: its status, and how its signature and shape fared."""

    status: str | None  # the "status" field, None when the body was malformed
    signature: str  # "valid", "none" or "invalid: <why>"
    problem: str | None  # why the body is malformed, else None


def _shape_problem(body: bytes) -> tuple[str | None, str | None]:
    try:
        document = json.loads(body)
    except ValueError:
        return None, "the body is not JSON"
    if not isinstance(document, dict):
        return None, "the body is not a JSON object"
    status = document.get("status")
    if status not in ("success", "failure", "progress"):
        return None, "status must be success, failure or progress"
    extra = set(document) - _FEEDBACK_KEYS
    if extra:
        return status, f"unknown keys: {', '.join(sorted(extra))}"
    for key, kind in (("message", str), ("data", dict), ("assets", list)):
        if document.get(key) is not None and not isinstance(document[key], kind):
            return status, f"{key} must be a {kind.__name__}"
    return status, None


class FeedbackSink:
    """Serves ``/assets/<name>`` and records ``POST /feedback/<token>`` on 127.0.0.1."""

    def __init__(self, secret: Secrets) -> None:
        self.secret = secret
        self.token = secrets.token_urlsafe(24)
        self.received: list[ReceivedFeedback] = []
        self.downloads: list[str] = []
        self._arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def update_url(self) -> str:
        return f"{self.base_url}/feedback/{self.token}"

    @property
    def asset_base(self) -> str:
        return f"{self.base_url}/assets"

    async def start(self) -> FeedbackSink:
        app = web.Application(client_max_size=BODY_LIMIT)
        app.router.add_get("/assets/{name}", self._asset)
        app.router.add_post("/feedback/{token}", self._feedback)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock).start()
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait(self, seconds: float) -> ReceivedFeedback | None:
        """The first feedback received, waiting up to ``seconds`` for one."""
        try:
            await asyncio.wait_for(self._arrived.wait(), seconds)
        except TimeoutError:
            return None
        return self.received[0]

    async def _asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        content = SAMPLE_ASSETS.get(name)
        if content is None:
            raise web.HTTPNotFound()
        self.downloads.append(name)
        return web.Response(body=content, content_type="application/octet-stream")

    async def _feedback(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"title": "unknown token"}, status=404)
        body = await request.read()
        signature = "none"
        if "webhook-signature" in request.headers:
            try:
                check_signature(body, request.headers, self.secret)
                signature = "valid"
            except SignatureError as exc:
                signature = f"invalid: {exc.message}"
        status, problem = _shape_problem(body)
        self.received.append(ReceivedFeedback(status, signature, problem))
        self._arrived.set()
        if problem is not None:
            return web.json_response({"title": "malformed feedback", "detail": problem}, status=400)
        if signature != "valid" and signature != "none":
            return web.json_response({"title": "bad signature", "detail": signature}, status=401)
        return web.json_response({"accepted": True, "outcome": "applied"})
