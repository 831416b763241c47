"""A lean https connector receiver for the benchmark: answers 201 at once, remembers arrivals.

``python -m bench.receiver --cert-dir DIR`` writes a trustme CA to ``DIR/ca.pem``, listens on
127.0.0.1 and prints one JSON line (``{"port": …, "caFile": …}``) when ready. Per order it keeps
only ``time.monotonic()`` at its first and at its last arrival, keyed by ``context.orderId``;
CLOCK_MONOTONIC is system-wide on Linux, so the load generator's 201 times compare with it
directly.

Routes: ``POST /orders`` (a delivery), ``POST /feedback`` (a delivery of a ``sendsFeedback``
task: answered 201 at once, then answered again ``FEEDBACK_DELAY`` later by POSTing success to
the body's ``updateUrl``), ``POST /ceiling`` (the raw-POST ceiling, only counted), ``GET
/count``, ``GET /stats`` (every arrival), ``POST /reset``. ``ReceiverProcess`` runs it as a child
process and talks to it.

It is aiohttp's server (C parser, no framework) so that it takes as little as possible of the
cores it shares with the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import selectors
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import trustme
import uvloop
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]

ORDER_ID = b'"orderId":"'
CREATED = b'{"ok":true}'
SUCCESS = b'{"status":"success"}'
FEEDBACK_DELAY = 0.010  # seconds between the 201 and the feedback POST
FEEDBACK_CONNECTIONS = 8  # keep-alive connections to ordermill's feedback endpoint
FEEDBACK_ATTEMPTS = 4  # then the feedback counts as failed; the order's task times out
FEEDBACK_TIMEOUT = 10.0  # seconds per feedback POST


class Feedback:
    """Answers ``sendsFeedback`` deliveries: POST success to the ``updateUrl``, bounded retries.

    A connection error, a timeout or a 5xx is retried (at most ``FEEDBACK_ATTEMPTS`` in all,
    with a growing pause); any other answer is final. Counts what came of each.
    """

    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None
        self.pending: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.retried = 0
        self.failed = 0
        self.first_failure: str | None = None

    def reset(self) -> None:
        self.sent = self.retried = self.failed = 0
        self.first_failure = None

    def answer(self, update_url: str) -> None:
        task = asyncio.get_running_loop().create_task(self._post(update_url))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _post(self, update_url: str) -> None:
        await asyncio.sleep(FEEDBACK_DELAY)
        if self.session is None:
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=FEEDBACK_CONNECTIONS),
                timeout=aiohttp.ClientTimeout(total=FEEDBACK_TIMEOUT),
                headers={"Content-Type": "application/json"},
            )
        problem = ""
        for attempt in range(FEEDBACK_ATTEMPTS):
            if attempt:
                self.retried += 1
                await asyncio.sleep(0.1 * 2**attempt)
            try:
                async with self.session.post(update_url, data=SUCCESS) as response:
                    text = await response.text()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if 200 <= status < 300:
                self.sent += 1
                return
            problem = f"{status}: {text[:300]}"
            if status < 500:
                break
        self.failed += 1
        self.first_failure = self.first_failure or problem

    async def close(self) -> None:
        for task in list(self.pending):
            task.cancel()
        await asyncio.gather(*self.pending, return_exceptions=True)
        if self.session is not None:
            await self.session.close()


class Arrivals:
    """What arrived: order id -> first and last arrival time, and a count of ceiling POSTs."""

    def __init__(self, feedback: Feedback) -> None:
        self.orders: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.deliveries = 0
        self.ceiling = 0
        self.feedback = feedback

    def _arrived(self, body: bytes) -> None:
        arrived = time.monotonic()
        # context comes last in the connector body, after any orderId of an order line.
        start = body.rfind(ORDER_ID)
        if start >= 0:
            start += len(ORDER_ID)
            order_id = body[start : body.index(b'"', start)].decode()
            self.orders.setdefault(order_id, arrived)
            self.last[order_id] = arrived
        self.deliveries += 1

    async def order(self, request: web.Request) -> web.Response:
        self._arrived(await request.read())
        return web.Response(status=201, body=CREATED, content_type="application/json")

    async def order_with_feedback(self, request: web.Request) -> web.Response:
        body = await request.read()
        self._arrived(body)
        self.feedback.answer(str(json.loads(body)["order"]["updateUrl"]))
        return web.Response(status=201, body=CREATED, content_type="application/json")

    async def ceiling_post(self, request: web.Request) -> web.Response:
        await request.read()
        self.ceiling += 1
        return web.Response(status=201, body=CREATED, content_type="application/json")

    async def count(self, _: web.Request) -> web.Response:
        feedback = self.feedback
        return web.json_response(
            {
                "orders": len(self.orders),
                "deliveries": self.deliveries,
                "ceiling": self.ceiling,
                "feedback": {
                    "sent": feedback.sent,
                    "retried": feedback.retried,
                    "failed": feedback.failed,
                    "pending": len(feedback.pending),
                    "first_failure": feedback.first_failure,
                },
            }
        )

    async def stats(self, _: web.Request) -> web.Response:
        return web.json_response(
            {"arrivals": self.orders, "last": self.last, "deliveries": self.deliveries}
        )

    async def reset(self, _: web.Request) -> web.Response:
        self.orders = {}
        self.last = {}
        self.deliveries = 0
        self.ceiling = 0
        self.feedback.reset()
        return web.json_response({"ok": True})


def server_context(cert_dir: Path) -> ssl.SSLContext:
    """A fresh CA in ``cert_dir/ca.pem`` and a server context for 127.0.0.1 signed by it."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(cert_dir / "ca.pem"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


async def serve(cert_dir: Path, port: int) -> None:
    feedback = Feedback()
    arrivals = Arrivals(feedback)
    app = web.Application()
    app.router.add_post("/orders", arrivals.order)
    app.router.add_post("/feedback", arrivals.order_with_feedback)
    app.router.add_post("/ceiling", arrivals.ceiling_post)
    app.router.add_get("/count", arrivals.count)
    app.router.add_get("/stats", arrivals.stats)
    app.router.add_post("/reset", arrivals.reset)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(
        runner, "127.0.0.1", port, ssl_context=server_context(cert_dir), backlog=1024
    )
    await site.start()
    bound = runner.addresses[0][1]
    sys.stdout.write(json.dumps({"port": bound, "caFile": str(cert_dir / "ca.pem")}) + "\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        (cert_dir / "arrivals.json").write_text(json.dumps(arrivals.orders))
        await feedback.close()
        await runner.cleanup()


class ReceiverProcess:
    """``python -m bench.receiver`` as a child process in a session of its own."""

    def __init__(self, cert_dir: Path) -> None:
        self.cert_dir = cert_dir
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.session: aiohttp.ClientSession | None = None

    @property
    def ca_file(self) -> Path:
        return self.cert_dir / "ca.pem"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def start(self, timeout: float = 30.0) -> None:
        self.cert_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "bench.receiver", "--cert-dir", str(self.cert_dir)]
        with (self.cert_dir / "receiver.log").open("ab") as log:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, start_new_session=True
            )
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout)
        line = self.process.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError(f"the receiver did not start within {timeout} s")
        self.port = int(json.loads(line)["port"])

    def client(self) -> aiohttp.ClientSession:
        """A session trusting the receiver's CA (made on first use, inside the event loop)."""
        if self.session is None:
            context = ssl.create_default_context(cafile=str(self.ca_file))
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
        return self.session

    async def _call(self, method: str, path: str) -> Any:
        async with self.client().request(method, self.url(path)) as response:
            response.raise_for_status()
            return await response.json()

    async def count(self) -> int:
        return int((await self._call("GET", "/count"))["orders"])

    async def counts(self) -> dict[str, Any]:
        """Orders seen, deliveries, ceiling POSTs and what came of the feedback POSTs."""
        return dict(await self._call("GET", "/count"))

    async def arrivals(self) -> tuple[dict[str, float], dict[str, float]]:
        """Per order id: the monotonic time of its first and of its last request."""
        found = await self._call("GET", "/stats")
        return dict(found["arrivals"]), dict(found["last"])

    async def reset(self) -> None:
        await self._call("POST", "/reset")

    async def wait_for(self, count: int, seconds: float) -> int:
        """Poll until ``count`` orders arrived or ``seconds`` passed; return the count seen."""
        end = time.monotonic() + seconds
        seen = await self.count()
        while seen < count and time.monotonic() < end:
            await asyncio.sleep(0.05)
            seen = await self.count()
        return seen

    async def close_client(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.receiver", description=__doc__)
    parser.add_argument("--cert-dir", type=Path, required=True, help="ca.pem goes here")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    uvloop.run(serve(args.cert_dir, args.port))


if __name__ == "__main__":
    main()
