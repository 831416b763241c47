"""The worker and the lifecycle core on the in-memory store, without a database.

The interleaving test runs random valid flows with N simulated workers whose steps (claim,
answer, crash, complete late), timers, lease expiries, feedback, confirmation answers,
duplicates and operator actions are interleaved by a scheduler seeded from the example; a
failure prints the seed, and the same seed replays the same run.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hypothesis import given, note, settings
from hypothesis import strategies as st

from ordermill.clock import SystemClock
from ordermill.engine.worker import Worker, WorkerOptions
from ordermill.flows.lifecycle import (
    Decision,
    Event,
    FeedbackKind,
    Operator,
    OperatorAction,
    Refusal,
    Restart,
)
from ordermill.flows.model import FlowDefinition, Join, Stage, TaskDefinition
from ordermill.flows.status import OrderStatus, TaskStatus
from ordermill.flows.work import AttemptRecord, ClaimedTask, Completion, DeliverySettings, Wake
from ordermill.handlers.registry import HandlerRegistry
from ordermill.handlers.wait import Wait
from ordermill.storage.memory import MemoryOrder, MemoryStore
from ordermill.testing import FakeClock
from tests.unit.test_lifecycle import Checker
from tests.unit.test_planner import random_flows

LEASE = 30.0


class NoSpaces:
    async def delivery_settings(self, space_key: str) -> DeliverySettings:
        return DeliverySettings()


def waits(key: str, *next_: str, ms: int = 0, join: Join = Join.ALL) -> TaskDefinition:
    return TaskDefinition(key, "wait", {"durationMs": ms}, next=next_, join=join)


async def test_the_real_worker_runs_a_join_and_two_stages_on_the_memory_store() -> None:
    flow = FlowDefinition(
        "join",
        "Join",
        (
            Stage(
                "make",
                ("a",),
                (waits("a", "b", "c"), waits("b", "d", ms=20), waits("c", "d", ms=5), waits("d")),
            ),
            Stage("ship", ("e",), (waits("e"),)),
        ),
    )
    store = MemoryStore(SystemClock())
    worker = Worker(
        store,
        HandlerRegistry([Wait()]),
        NoSpaces(),
        WorkerOptions(public_url="https://ordermill.test", poll_interval=0.005),
    )
    ids = [await store.create_order(flow, {"n": n}) for n in range(20)]
    running = asyncio.create_task(worker.run())
    try:
        for _ in range(1000):  # 5 s at most
            if set(store.statuses(ids).values()) == {OrderStatus.SUCCESS}:
                break
            await asyncio.sleep(0.005)
    finally:
        worker.stop()
        await running
    assert set(store.statuses(ids).values()) == {OrderStatus.SUCCESS}
    assert store.reconciled == 0
    timeline = store.orders[ids[0]].timeline
    assert timeline.count(("task.queued", "d")) == 1
    assert timeline.index(("task.queued", "d")) < timeline.index(("task.queued", "e"))


# --- the seeded interleaving ------------------------------------------------------------------


class CheckedStore(MemoryStore):
    """Every event any order sees is checked against the invariants (tests/unit/test_lifecycle)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.checkers: dict[str, Checker] = {}

    def _apply(
        self, order: MemoryOrder, event: Event, decided: Decision | None = None
    ) -> Decision | Refusal:
        checker = self.checkers.setdefault(order.id, Checker(order.flow, order.state))
        checker.flow = order.flow
        checker.state = order.state
        checker.step(event)
        answer = super()._apply(order, event, decided)
        assert (isinstance(answer, Decision) and answer.state == order.state) or isinstance(
            answer, Refusal
        )
        return answer


@dataclass
class SimWorker:
    name: str
    holding: list[ClaimedTask]
    sent: list[Completion]


def completion(task: ClaimedTask, clock: FakeClock, rng: random.Random) -> Completion | None:
    """What the handler of ``task`` did; None when its worker crashed mid-attempt."""
    now = clock.now()
    kind = rng.choices(
        ["ok", "timer", "feedback", "retry", "fail", "timeout", "crash"],
        weights=[8, 2, 2, 2, 1, 1, 1],
    )[0]
    if kind == "crash":
        return None
    record = AttemptRecord(number=task.attempt, started_at=now, ended_at=now, outcome=kind)
    later = now + timedelta(milliseconds=rng.randint(0, 3000))
    status, due, wake = {
        "ok": (TaskStatus.SUCCEEDED, None, None),
        "timer": (TaskStatus.WAITING, later, Wake.FIRE),
        "feedback": (TaskStatus.WAITING, later, Wake.TIMEOUT),
        "retry": (TaskStatus.PENDING, later, None),
        "fail": (TaskStatus.FAILED, None, None),
        "timeout": (TaskStatus.TIMED_OUT, None, None),
    }[kind]
    return Completion(task=task, status=status, attempt=record, due_at=due, wake=wake)


async def outside(store: CheckedStore, rng: random.Random) -> None:
    """A connector's feedback, a person's answer or an operator's action, on a random task."""
    order = store.orders[rng.choice(sorted(store.orders))]
    if not order.tasks or rng.random() < 0.3:
        action = rng.choice(
            [Operator.RETRY, Operator.CANCEL, Operator.START, Operator.PAUSE, Operator.RESUME]
        )
        if rng.random() < 0.15:
            restart = Restart(1, 1, from_start=rng.random() < 0.5, previous=order.flow)
            await store.restart(order.id, order.flow, restart)
            return
        await store.operate(order.id, OperatorAction(action, reason="steered"))
        return
    key = rng.choice(sorted(order.tasks))
    match rng.randrange(4):
        case 0:
            await store.feedback(order.id, key, rng.choice(list(FeedbackKind)))
        case 1:
            await store.answer(order.id, key, confirm=rng.random() < 0.8)
        case 2:
            action = rng.choice([Operator.REDELIVER, Operator.SKIP])
            await store.operate(order.id, OperatorAction(action, key, reason="by hand"))
        case _:
            await store.feedback(order.id, key, FeedbackKind.SUCCESS)


async def simulate(
    flows: list[FlowDefinition], seed: int, workers: int, steps: int
) -> CheckedStore:
    rng = random.Random(seed)
    clock = FakeClock()
    store = CheckedStore(clock)
    for n, flow in enumerate(flows):
        await store.create_order(flow, {"n": n})
    crew = [SimWorker(f"w{i}", [], []) for i in range(workers)]
    for _ in range(steps):
        worker = rng.choice(crew)
        step = rng.choices(
            ["claim", "finish", "replay", "timers", "tick", "outside"], [4, 4, 1, 2, 2, 1]
        )
        match step[0]:
            case "claim":
                worker.holding += await store.claim(worker.name, rng.randint(1, 3), LEASE)
            case "finish" if worker.holding:
                task = worker.holding.pop(rng.randrange(len(worker.holding)))
                done = completion(task, clock, rng)
                if done is not None:
                    await store.complete([done])
                    worker.sent.append(done)
            case "replay" if worker.sent:
                # A completion sent again (a retried commit): it is stale and changes nothing.
                assert await store.complete([rng.choice(worker.sent)]) == [False]
            case "timers":
                await store.fire_due()
            case "tick":
                clock.advance(timedelta(milliseconds=rng.choice([10, 500, 2000, LEASE * 1000 + 1])))
            case "outside":
                await outside(store, rng)
    await settle(store, clock, crew)
    return store


async def settle(store: CheckedStore, clock: FakeClock, crew: list[SimWorker]) -> None:
    """The outside world falls silent but for resuming paused orders; workers finish what they
    hold and every attempt succeeds."""
    for order in list(store.orders.values()):
        if order.paused:
            await store.operate(order.id, OperatorAction(Operator.RESUME))
    for worker in crew:
        for task in worker.holding:
            await store.complete([succeeded(task, clock)])
        worker.holding.clear()
    for _ in range(1000):
        claimed = await store.claim("settler", 100, LEASE)
        if claimed:
            await store.complete([succeeded(task, clock) for task in claimed])
            continue
        live = [
            task
            for order in store.orders.values()
            for task in order.tasks.values()
            if task.status.is_active and order.status is not OrderStatus.CANCELLED
        ]
        if not live:
            return
        clock.advance(timedelta(seconds=LEASE + 5))  # waits run out, timers fire, leases expire
        await store.fire_due()
    raise AssertionError("the orders never settled")


def succeeded(task: ClaimedTask, clock: FakeClock) -> Completion:
    now = clock.now()
    record = AttemptRecord(number=task.attempt, started_at=now, ended_at=now, outcome="ok")
    return Completion(task=task, status=TaskStatus.SUCCEEDED, attempt=record)


def assert_every_order_ended_or_waits_outside(store: CheckedStore) -> None:
    for order in store.orders.values():
        checker = store.checkers.get(order.id) or Checker(order.flow, order.state)
        checker.state = order.state
        checker.assert_ended_or_waiting_outside()


@settings(max_examples=60, deadline=None, database=None)
@given(
    st.lists(random_flows(), min_size=1, max_size=4), st.integers(0, 2**32 - 1), st.integers(1, 4)
)
def test_seeded_interleavings_of_workers_keep_every_invariant(
    flows: list[FlowDefinition], seed: int, workers: int
) -> None:
    note(f"seed={seed} workers={workers}")
    try:
        store = asyncio.run(simulate(flows, seed, workers, steps=200))
        assert_every_order_ended_or_waits_outside(store)
        assert asyncio.run(store.reconcile()) == 0
    except AssertionError as exc:
        raise AssertionError(f"interleaving seed={seed} workers={workers}: {exc}") from exc


def test_the_same_seed_replays_the_same_run() -> None:
    flow = FlowDefinition(
        "join",
        "Join",
        (
            Stage(
                "make", ("a",), (waits("a", "b", "c"), waits("b", "d"), waits("c", "d"), waits("d"))
            ),
        ),
    )

    def run(seed: int) -> list[Any]:
        store = asyncio.run(simulate([flow, flow, flow], seed, 3, steps=150))
        return [(order.status, order.timeline) for order in store.orders.values()]

    assert run(7) == run(7)
    assert any(run(seed) != run(7) for seed in range(8, 12))
