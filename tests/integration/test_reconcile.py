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
from tests.integration.test_joins import join_flow


async def test_an_order_with_no_live_work_is_reconciled_once_and_the_timeline_says_so(
    make_settings: Callable[..., Settings],
) -> None:
    service = await Service.open(make_settings())
    try:
        await service.store.spaces.create_space("acme")
        await service.save_flow("acme", join_flow("https://127.0.0.1:9"))
        body = order_doc("LOST-1", flow_key="split-and-join")
        order, _ = await service.create_order(body, start=True, actor="test")
        healthy, _ = await service.create_order(
            order_doc("FINE-1", flow_key="split-and-join"), start=True, actor="test"
        )
        assert await service.store.reconcile() == 0
        # What a lost write would leave behind: `a` ended, nothing queued after it.
        async with service.db.transaction() as conn:
            await conn.execute(
                update(t.tasks)
                .where(t.tasks.c.order_id == order.id)
                .values(status=TaskStatus.SUCCEEDED.value)
            )

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
    finally:
        await service.close()


async def test_a_worker_reconciles_at_start_up_and_counts_it(
    make_settings: Callable[..., Settings], request: pytest.FixtureRequest
) -> None:
    request.node.expected_reconciles = 1
    before = REGISTRY.get_sample_value("ordermill_orders_reconciled_total") or 0.0
    service = await Service.open(make_settings())
    try:
        await service.store.spaces.create_space("acme")
        await service.save_flow(
            "acme",
            chain(task("x", "wait", {"durationMs": 0}), task("y", "wait", {"durationMs": 0})),
        )
        order, _ = await service.create_order(order_doc("LOST-2"), start=True, actor="test")
        async with service.db.transaction() as conn:
            await conn.execute(
                update(t.tasks)
                .where(t.tasks.c.order_id == order.id)
                .values(status=TaskStatus.SUCCEEDED.value)
            )
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
    finally:
        await service.close()
