"""The side of a peer program the harness talks to, and the POST every peer's step makes.

A peer program is started as ``python -m bench.peers.<peer> CONFIG.json`` with the peers' venv
python. It sets itself up (schema, launch), prints one JSON line ``{"ready": …}``, waits for
``go`` on stdin, enqueues the orders and prints ``{"enqueued": …}``; its workers go on until
stdin says ``stop`` (or closes), then it shuts down and prints ``{"stopped": …}``.

Every order is one POST of the same body to the same receiver URL; only ``context.orderId``
differs, so the receiver counts each order once.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp

TEMPLATE_ID = "ord_" + "0" * 26


@dataclass(frozen=True)
class Config:
    receiver_url: str
    ca_file: str
    body: str  # the connector-like body with TEMPLATE_ID as its order id
    orders: int
    enqueuers: int
    concurrency: int
    database: str  # a libpq conninfo, or a SQLite file path
    prefix: str

    @classmethod
    def load(cls, path: str) -> Config:
        return cls(**json.loads(Path(path).read_text()))

    def order_id(self, number: int) -> str:
        return f"{self.prefix}{number:0{len(TEMPLATE_ID) - len(self.prefix)}d}"

    def body_of(self, order_id: str) -> bytes:
        return self.body.replace(TEMPLATE_ID, order_id).encode()

    def session(self) -> aiohttp.ClientSession:
        """Keep-alive TLS to the receiver, at most ``concurrency`` connections (as ordermill)."""
        context = ssl.create_default_context(cafile=self.ca_file)
        connector = aiohttp.TCPConnector(ssl=context, limit=self.concurrency)
        return aiohttp.ClientSession(connector=connector)

    async def post(self, session: aiohttp.ClientSession, order_id: str) -> int:
        """The order's one HTTP step: POST its body, unsigned; raises unless 2xx."""
        async with session.post(
            self.receiver_url,
            data=self.body_of(order_id),
            headers={"Content-Type": "application/json"},
        ) as response:
            await response.read()
            response.raise_for_status()
            return response.status


def say(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def versions(*packages: str) -> dict[str, str]:
    return {name: metadata.version(name) for name in packages}


async def read_command() -> str:
    return (await asyncio.to_thread(sys.stdin.readline)).strip()


async def enqueue_all(config: Config, enqueue: Callable[[str], Awaitable[None]]) -> None:
    """``config.orders`` enqueues from ``config.enqueuers`` concurrent callers; report the times."""
    numbers = iter(range(config.orders))
    first = time.time()

    async def caller() -> None:
        for number in numbers:
            await enqueue(config.order_id(number))

    await asyncio.gather(*(caller() for _ in range(config.enqueuers)))
    say(enqueued=config.orders, first_enqueue=first, enqueue_seconds=time.time() - first)


async def serve(config: Config, enqueue: Callable[[str], Awaitable[None]]) -> None:
    """Wait for ``go``, enqueue, then keep running until ``stop``."""
    if await read_command() == "go":
        await enqueue_all(config, enqueue)
        while await read_command() not in ("stop", ""):
            pass
