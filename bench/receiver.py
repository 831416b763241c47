"""A lean https connector receiver for the benchmark: answers 201 at once, remembers arrivals.

``python -m bench.receiver --cert-dir DIR`` writes a trustme CA to ``DIR/ca.pem``, listens on
127.0.0.1 and prints one JSON line (``{"port": …, "caFile": …}``) when ready. Per order it keeps
only ``time.monotonic()`` at arrival, keyed by ``context.orderId``; CLOCK_MONOTONIC is
system-wide on Linux, so the load generator's 201 times compare with it directly.

Routes: ``POST /orders`` (a delivery), ``POST /ceiling`` (the raw-POST ceiling, only counted),
``GET /count``, ``GET /stats`` (every arrival), ``POST /reset``. ``ReceiverProcess`` runs it as
a child process and talks to it.

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


class Arrivals:
    """What arrived: order id -> first arrival time, and a count of ceiling POSTs."""

    def __init__(self) -> None:
        self.orders: dict[str, float] = {}
        self.deliveries = 0
        self.ceiling = 0

    async def order(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        body = await request.read()
        # context comes last in the connector body, after any orderId of an order line.
        start = body.rfind(ORDER_ID)
        if start >= 0:
            start += len(ORDER_ID)
            order_id = body[start : body.index(b'"', start)].decode()
            self.orders.setdefault(order_id, arrived)
        self.deliveries += 1
        return web.Response(status=201, body=CREATED, content_type="application/json")

    async def ceiling_post(self, request: web.Request) -> web.Response:
        await request.read()
        self.ceiling += 1
        return web.Response(status=201, body=CREATED, content_type="application/json")

    async def count(self, _: web.Request) -> web.Response:
        return web.json_response(
            {"orders": len(self.orders), "deliveries": self.deliveries, "ceiling": self.ceiling}
        )

    async def stats(self, _: web.Request) -> web.Response:
        return web.json_response({"arrivals": self.orders, "deliveries": self.deliveries})

    async def reset(self, _: web.Request) -> web.Response:
        self.orders = {}
        self.deliveries = 0
        self.ceiling = 0
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
    arrivals = Arrivals()
    app = web.Application()
    app.router.add_post("/orders", arrivals.order)
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

    async def arrivals(self) -> dict[str, float]:
        return dict((await self._call("GET", "/stats"))["arrivals"])

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
