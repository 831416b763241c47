"""Claims and leases at the storage seam, on SQLite and PostgreSQL: an outcome counts only
while its worker still holds the task's lease, and a claim logs what it took."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy import text

from ordermill.config import Settings
from ordermill.flows.status import OrderStatus, TaskStatus
from tests.integration.conftest import flow_doc, order_doc
from tests.integration.test_joins import _done, engine_off
from tests.support.statements import statements_sent


async def test_an_outcome_whose_lease_passed_changes_nothing_and_the_new_holder_finishes(
    make_settings: Callable[..., Settings],
) -> None:
    async with engine_off(make_settings, flow_doc("https://127.0.0.1:9/x")) as service:
        order, _ = await service.create_order(order_doc("LEASE-1"), start=True, actor="test")
        [first] = await service.store.claim("worker-a", 10, 0.05, expired=False)
        assert await service.store.claim("worker-b", 10, 30, expired=False) == []
        await asyncio.sleep(0.1)  # worker-a's lease runs out
        [second] = await service.store.claim("worker-b", 10, 30, expired=True)
        assert (second.task_id, second.attempt, second.reclaimed) == (first.task_id, 2, True)

        assert await service.store.complete([_done(first, TaskStatus.SUCCEEDED)]) == [False]
        view = await service.store.get_order("acme", order.id)
        assert [(t.status, t.attempts) for t in view.tasks] == [(TaskStatus.RUNNING, 2)]

        assert await service.store.complete([_done(second, TaskStatus.SUCCEEDED)]) == [True]
        view = await service.store.get_order("acme", order.id)
        assert view.status is OrderStatus.SUCCESS
        events = [(e.type, e.data) for e in await service.store.list_events("acme", order.id)]
        running = [data for kind, data in events if kind == "task.running"]
        assert running == [{"attempt": 1}, {"attempt": 2}]


async def test_claims_take_each_due_task_once_and_read_its_order(
    make_settings: Callable[..., Settings],
) -> None:
    async with engine_off(make_settings, flow_doc("https://127.0.0.1:9/x")) as service:
        posted = await asyncio.gather(
            *(
                service.create_order(order_doc(f"CLAIM-{n}"), start=True, actor="test")
                for n in range(6)
            )
        )
        batches = await asyncio.gather(
            *(service.store.claim(f"worker-{n}", 2, 30, expired=False) for n in range(5))
        )
        claimed = [task for batch in batches for task in batch]
        assert sorted(task.order_id for task in claimed) == sorted(o.id for o, _ in posted)
        bodies = {o.id: o.body for o, _ in posted}
        assert all(task.order == bodies[task.order_id] for task in claimed)
        assert all(task.attempt == 1 and task.space_key == "acme" for task in claimed)
        assert await service.store.claim("late", 10, 30, expired=False) == []


async def test_a_successful_outcome_writes_its_task_and_order_with_its_timeline(
    make_settings: Callable[..., Settings],
) -> None:
    """PostgreSQL: the outcome's updates of the task and the order travel in the unit's last
    statement with the timeline entry and the attempt (SQLite: each on its own, in process);
    either way the order ends, once."""
    async with engine_off(make_settings, flow_doc("https://127.0.0.1:9/x")) as service:
        order, _ = await service.create_order(order_doc("ONE-TRIP"), start=True, actor="test")
        [task] = await service.store.claim("worker-a", 10, 30, expired=False)
        async with statements_sent(service.store.db) as statements:
            assert await service.store.complete([_done(task, TaskStatus.SUCCEEDED)]) == [True]

        view = await service.store.get_order("acme", order.id)
        assert view.status is OrderStatus.SUCCESS
        assert [(t.status, t.attempts) for t in view.tasks] == [(TaskStatus.SUCCEEDED, 1)]
        events = [e.type for e in await service.store.list_events("acme", order.id)]
        assert events.count("task.succeeded") == 1
        writes = [s for s in statements if "UPDATE tasks" in s or "UPDATE orders" in s]
        if service.store.db.is_sqlite:  # one statement per table
            assert len(writes) == 2, writes
            assert all(s.startswith("UPDATE") for s in writes), writes
        else:
            [together] = writes
            assert "UPDATE orders" in together
            assert "INSERT INTO events" in together
            assert "INSERT INTO attempts" in together


async def test_a_unit_looks_for_subscriptions_only_in_a_space_that_has_one(
    make_settings: Callable[..., Settings],
) -> None:
    """Whether the space has a subscription comes with the order's insert and its
    lock, so intake and outcomes in a space without one make no query for matches; once the
    space has one, the next units queue their events for it."""
    async with engine_off(make_settings, flow_doc("https://127.0.0.1:9/x")) as service:
        store = service.store

        def matches() -> int:
            return sum("FROM subscriptions JOIN orders" in s for s in statements)

        async def one_order(third_party_id: str) -> str:
            order, _ = await service.create_order(order_doc(third_party_id), start=True, actor="t")
            [task] = await store.claim("worker-a", 10, 30, expired=False)
            assert await store.complete([_done(task, TaskStatus.SUCCEEDED)]) == [True]
            return order.id

        async with statements_sent(store.db) as statements:
            quiet = await one_order("QUIET-1")
            looked_while_quiet = matches()
            await store.subscriptions.create(
                "acme", "https://127.0.0.1:9/events", ["order.status"], None, store.clock.now()
            )
            heard = await one_order("HEARD-1")

        assert looked_while_quiet == 0
        assert matches() > 0  # (the statement is seen where the space has a subscription)
        async with store.db.read() as conn:
            queued = (
                await conn.execute(
                    text("SELECT order_id, count(*) FROM outbox GROUP BY order_id ORDER BY 1")
                )
            ).all()
        statuses = [e for e in await store.list_events("acme", heard) if e.type == "order.status"]
        assert statuses  # the order moved, so its space's subscription has events to queue
        assert quiet not in {order_id for order_id, _ in queued}
        assert [(order_id, count) for order_id, count in queued] == [(heard, len(statuses))]
