"""The load generator: posts orders to /api/orders over keep-alive connections.

Three shapes: ``idle`` (one order at a time, a random pause between), ``closed_loop`` (N
connections posting back to back: the peak) and ``paced`` (open loop at a fixed rate: each POST
leaves at its scheduled time whether or not earlier ones were answered). Each records, per order,
``time.monotonic()`` when the 201 was read.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field

import aiohttp
from tests.support.factories import order_doc

from bench.engine import FLOW, SPACE

PLACEHOLDER = "TPID-PLACEHOLDER"


class Deadline:
    """A hard end for a scenario; every loop of the load generator checks it."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def passed(self) -> bool:
        return self.remaining() <= 0


@dataclass
class Sent:
    """What one phase posted: order id -> monotonic time its 201 was read."""

    created: dict[str, float] = field(default_factory=dict)
    first_post_wall: float = 0.0
    first_post: float = 0.0
    last_201: float = 0.0
    errors: int = 0
    first_error: str | None = None
    stopped_early: bool = False

    @property
    def intake_per_second(self) -> float | None:
        seconds = self.last_201 - self.first_post
        return len(self.created) / seconds if seconds > 0 and self.created else None


class OrderClient:
    """Posts reference-shaped orders as the benchmark space."""

    def __init__(self, base_url: str, api_key: str, connections: int) -> None:
        self.url = f"{base_url}/api/orders"
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections),
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        )
        template = order_doc(PLACEHOLDER, spaceKey=SPACE, flowKey=FLOW)
        self.template = json.dumps(template, separators=(",", ":"))

    async def close(self) -> None:
        await self.session.close()

    async def post(self, third_party_id: str, sent: Sent) -> None:
        if not sent.first_post:
            sent.first_post, sent.first_post_wall = time.monotonic(), time.time()
        body = self.template.replace(PLACEHOLDER, third_party_id)
        try:
            async with self.session.post(self.url, data=body) as response:
                raw = await response.read()
                at = time.monotonic()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._failed(sent, f"{type(exc).__name__}: {exc}")
            return
        if status != 201:
            self._failed(sent, f"{status}: {raw[:300]!r}")
            return
        sent.created[json.loads(raw)["id"]] = at
        sent.last_201 = at

    @staticmethod
    def _failed(sent: Sent, message: str) -> None:
        sent.errors += 1
        sent.first_error = sent.first_error or message


async def idle(
    client: OrderClient, prefix: str, count: int, deadline: Deadline, *, mean_pause: float
) -> Sent:
    """One order at a time; between them 10 ms plus an exponential pause (mean ``mean_pause``).

    The random pause puts arrivals at random points of a polling worker's cycle.
    """
    sent = Sent()
    rng = random.Random(7)
    for number in range(count):
        if deadline.passed:
            sent.stopped_early = True
            break
        await client.post(f"{prefix}{number}", sent)
        await asyncio.sleep(0.010 + rng.expovariate(1 / mean_pause))
    return sent


async def closed_loop(
    client: OrderClient, prefix: str, count: int, deadline: Deadline, *, connections: int
) -> Sent:
    """``connections`` posters, each sending its next order as soon as the last was answered."""
    sent = Sent()
    numbers = iter(range(count))

    async def poster() -> None:
        for number in numbers:
            if deadline.passed:
                sent.stopped_early = True
                return
            await client.post(f"{prefix}{number}", sent)

    await asyncio.gather(*(poster() for _ in range(connections)))
    return sent


async def paced(
    client: OrderClient,
    prefix: str,
    count: int,
    deadline: Deadline,
    *,
    rate: float,
    max_in_flight: int = 256,
) -> Sent:
    """Open loop: order i leaves at start + i / rate; at most ``max_in_flight`` unanswered."""
    sent = Sent()
    in_flight: set[asyncio.Task[None]] = set()
    start = time.monotonic()
    for number in range(count):
        if deadline.passed:
            sent.stopped_early = True
            break
        delay = start + number / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        while len(in_flight) >= max_in_flight:
            await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(client.post(f"{prefix}{number}", sent))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(in_flight, timeout=max(1.0, deadline.remaining()))
    return sent
