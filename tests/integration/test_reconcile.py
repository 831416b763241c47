"""The reconcile pass: an order left IN_PROGRESS with no live work is moved on, and says so."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import update

from ordermill.config import Settings
from ordermill.flows.status import OrderStatus, TaskStatus
from ordermill.metrics import REGISTRY
from ordermill.service import Service
from ordermill.storage import tables as t
from tests.integration.conftest import order_doc
from tests.integration.handler_flows import chain, task
from tests.integration.test_joins import engine_off, join_flow


async def lose_what_follows(service: Service, order_id: str) -> None:
    """What a lost write would leave behind: every task ended, nothing queued after them."""
    async with service.db.transaction() as conn:
        await conn.execute(
            update(t.tasks)
            .where(t.tasks.c.order_id == order_id)
            .values(status=TaskStatus.SUCCEEDED.value)
        )


async def test_an_order_with_no_live_work_is_reconciled_once_and_the_timeline_says_so(
    make_settings: Callable[..., Settings],
) -> None:
    async with engine_off(make_settings, join_flow("https://127.0.0.1:9")) as service:
        body = order_doc("LOST-1", flow_key="split-and-join")
        order, _ = await service.create_order(body, start=True, actor="test")
        healthy, _ = await service.create_order(
            order_doc("FINE-1", flow_key="split-and-join"), start=True, actor="test"
        )
        assert await service.store.reconcile() == 0
        await lose_what_follows(service, order.id)

        assert await service.store.reconcile() == 1
        assert await service.store.reconcile() == 0

        view = await service.store.get_order("acme", order.id)
        assert view.status is OrderStatus.IN_PROGRESS
        assert {task.key: task.status for task in view.tasks} == {
            "a": TaskStatus.SUCCEEDED,
            "b": TaskStatus.PENDING,
            "c": TaskStatus.PENDING,
        }
        events = [(e.type, e.task_key) for e in await service.store.list_events("acme", order.id)]
        assert events[-3:] == [
            ("order.reconciled", None),
            ("task.queued", "b"),
            ("task.queued", "c"),
        ]
        untouched = await service.store.get_order("acme", healthy.id)
        assert [task.key for task in untouched.tasks] == ["a"]


async def test_a_worker_reconciles_at_start_up_and_counts_it(
    make_settings: Callable[..., Settings], request: pytest.FixtureRequest
) -> None:
    request.node.expected_reconciles = 1
    before = REGISTRY.get_sample_value("ordermill_orders_reconciled_total") or 0.0
    flow = chain(task("x", "wait", {"durationMs": 0}), task("y", "wait", {"durationMs": 0}))
    async with engine_off(make_settings, flow) as service:
        order, _ = await service.create_order(order_doc("LOST-2"), start=True, actor="test")
        await lose_what_follows(service, order.id)
        worker = service.worker()
        running = asyncio.create_task(worker.run())
        try:
            for _ in range(400):  # 20 s at most
                view = await service.store.get_order(None, order.id)
                if view.status is OrderStatus.SUCCESS:
                    break
                await asyncio.sleep(0.05)
        finally:
            worker.stop()
            await running
        assert view.status is OrderStatus.SUCCESS
        after = REGISTRY.get_sample_value("ordermill_orders_reconciled_total") or 0.0
        assert after - before == 1
        types = [e.type for e in await service.store.list_events("acme", order.id)]
        assert types.count("order.reconciled") == 1
