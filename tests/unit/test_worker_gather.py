"""The worker records outcomes in groups: those of attempts running together share one
transaction, and an outcome with nothing else running is recorded at once."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from pydantic import BaseModel

from ordermill.clock import SystemClock
from ordermill.engine.worker import Worker, WorkerOptions
from ordermill.flows.model import FlowDefinition, RetryPolicy, Stage, TaskDefinition
from ordermill.flows.status import OrderStatus
from ordermill.flows.work import Completion
from ordermill.handlers.base import Outcome, Succeeded, TaskContext
from ordermill.handlers.registry import HandlerRegistry
from ordermill.storage.memory import MemoryStore
from tests.unit.test_memory_interleaving import NoSpaces


class Empty(BaseModel):
    pass


class Staggered:
    """Waits until ``together`` attempts have started, then each ends after its own pause."""

    key: ClassVar[str] = "staggered"
    payload_model: ClassVar[type[BaseModel]] = Empty
    default_timeout_ms: ClassVar[int] = 10_000
    default_retry: ClassVar[RetryPolicy] = RetryPolicy(max_attempts=1)

    def __init__(self, together: int) -> None:
        self.together = together
        self.started = 0
        self.all_started = asyncio.Event()

    async def run(self, ctx: TaskContext) -> Outcome:
        self.started += 1
        pause = 0.002 * self.started
        if self.started >= self.together:
            self.all_started.set()
        await self.all_started.wait()
        await asyncio.sleep(pause)
        return Succeeded()

    async def close(self) -> None:
        return None


class Recording(MemoryStore):
    def __init__(self) -> None:
        super().__init__(SystemClock())
        self.batches: list[int] = []

    async def complete(self, completions: list[Completion]) -> list[bool]:
        self.batches.append(len(completions))
        return await super().complete(completions)


FLOW = FlowDefinition(
    "one",
    "One",
    (Stage("run", ("a",), (TaskDefinition("a", "staggered", {}),)),),
)


async def _run(store: Recording, handler: Staggered, orders: int, gather: float) -> list[str]:
    worker = Worker(
        store,
        HandlerRegistry([handler]),
        NoSpaces(),
        WorkerOptions(public_url="https://ordermill.test", poll_interval=0.01, gather=gather),
    )
    ids = [await store.create_order(FLOW, {"n": n}) for n in range(orders)]
    running = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(5):
            while set(store.statuses(ids).values()) != {OrderStatus.SUCCESS}:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
    finally:
        worker.stop()
        await running
    return ids


async def test_outcomes_of_attempts_running_together_share_one_transaction() -> None:
    store = Recording()

    await _run(store, Staggered(together=6), orders=6, gather=1.0)  # the pauses: 2 to 12 ms

    assert store.batches == [6]


async def test_an_outcome_with_nothing_else_running_is_recorded_at_once() -> None:
    # With a gathering window far longer than the test's time limit, only the rule "nothing
    # else is running, so do not wait" lets these orders end in time.
    store = Recording()

    for _ in range(3):
        await _run(store, Staggered(together=1), orders=1, gather=3600.0)

    assert store.batches == [1, 1, 1]


async def test_gathering_waits_at_most_its_window() -> None:
    store = Recording()

    await _run(store, Staggered(together=6), orders=6, gather=0.0)

    # Without a window each outcome goes as soon as the one before it is written.
    assert len(store.batches) > 1
    assert sum(store.batches) == 6
