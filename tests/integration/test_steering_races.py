"""Steering at the storage seam, on SQLite and PostgreSQL: restarts that race record the
version each one really moved from, a lost attempt of a paused order waits for the resume,
and the files of an archived task follow it to its new key."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ordermill.config import Settings
from ordermill.flows.lifecycle import Operator, OperatorAction, Restart
from ordermill.flows.status import OrderStatus, TaskStatus
from ordermill.flows.work import AssetRecord
from ordermill.service import Service
from ordermill.storage import writer
from ordermill.storage.assets import order_assets
from ordermill.storage.orders import OrderView
from tests.integration.conftest import flow_doc, order_doc
from tests.integration.test_joins import _done, engine_off

UNREACHABLE = "https://127.0.0.1:9"


async def failed_order(service: Service, third_party_id: str, **assets: str) -> OrderView:
    """An order of the reference flow whose one task failed (with ``assets``: files it made)."""
    order, _ = await service.create_order(order_doc(third_party_id), start=True, actor="test")
    [claimed] = await service.store.claim("w", 10, 30)
    made = tuple(AssetRecord(asset_id, "feedback", url=url) for asset_id, url in assets.items())
    await service.store.complete([_done(claimed, TaskStatus.FAILED, assets=made)])
    view = await service.store.get_order("acme", order.id)
    assert view.status is OrderStatus.FAILURE
    return view


async def test_of_two_racing_restarts_the_second_records_the_version_the_first_moved_to(
    make_settings: Callable[..., Settings],
) -> None:
    """The first restart (onto v2, then cancelled) holds the order's lock while the second
    (onto v3) starts; the second must record v2 as where it came from, not the v1 it could
    have read before the lock."""
    async with engine_off(make_settings, flow_doc(f"{UNREACHABLE}/v1")) as service:
        for n in (2, 3):
            await service.save_flow("acme", flow_doc(f"{UNREACHABLE}/v{n}"))
        order = await failed_order(service, "RACE-RESTART")
        v1 = await service.store.flow_of(order.flow_id, 1)
        v2 = await service.store.flow_of(order.flow_id, 2)

        second: asyncio.Task[OrderView] | None = None
        async with service.store.unit() as uow:
            locked = await writer.lock_orders(uow, [order.id])
            move = writer.Change(order.id, v2, Restart(1, 2, previous=v1))
            assert isinstance((await writer.apply(uow, [move], locked))[0], writer.Decision)
            relocked = await writer.lock_orders(uow, [order.id])
            cancel = writer.Change(order.id, v2, OperatorAction(Operator.CANCEL))
            assert isinstance((await writer.apply(uow, [cancel], relocked))[0], writer.Decision)
            second = asyncio.create_task(
                service.store.restart_order("acme", order.id, "operator", flow_version=3)
            )
            done, _ = await asyncio.wait([second], timeout=0.5)
            assert not done, "the second restart went ahead while the first held the order"

        moved = await second
        assert moved.flow_version == 3
        assert [(r["fromVersion"], r["toVersion"]) for r in moved.restarts] == [(1, 2), (2, 3)]
        events = await service.store.list_events("acme", order.id)
        restarted = [e.data for e in events if e.type == "order.restarted" and e.data]
        assert [(d["fromVersion"], d["toVersion"]) for d in restarted] == [(1, 2), (2, 3)]
        keys = sorted(task.key for task in moved.tasks)
        assert keys == ["task-1", "task-1~1", "task-1~2"]


async def test_a_lost_attempt_of_a_paused_order_is_taken_over_only_after_the_resume(
    make_settings: Callable[..., Settings],
) -> None:
    async with engine_off(make_settings, flow_doc(f"{UNREACHABLE}/x")) as service:
        order, _ = await service.create_order(order_doc("LEASE-PAUSE"), start=True, actor="t")
        [first] = await service.store.claim("worker-a", 10, 0.05, expired=False)
        await service.store.steer("acme", order.id, Operator.PAUSE, "operator", "hold it")
        await asyncio.sleep(0.1)  # worker-a's lease runs out while the order is paused

        assert await service.store.claim("worker-b", 10, 30, expired=True) == []
        view = await service.store.get_order("acme", order.id)
        assert [(t.status, t.attempts, t.lease_owner) for t in view.tasks] == [
            (TaskStatus.RUNNING, 1, "worker-a")
        ]

        await service.store.steer("acme", order.id, Operator.RESUME, "operator")
        [second] = await service.store.claim("worker-b", 10, 30, expired=True)
        assert (second.task_id, second.attempt, second.reclaimed) == (first.task_id, 2, True)
        assert await service.store.complete([_done(second, TaskStatus.SUCCEEDED)]) == [True]
        done = await service.store.get_order("acme", order.id)
        assert done.status is OrderStatus.SUCCESS


async def test_a_restart_moves_the_files_of_an_archived_task_to_its_archived_key(
    make_settings: Callable[..., Settings],
) -> None:
    async with engine_off(make_settings, flow_doc(f"{UNREACHABLE}/v1")) as service:
        await service.save_flow("acme", flow_doc(f"{UNREACHABLE}/v2"))
        other = await failed_order(service, "ASSETS-OTHER", proof="https://files.test/other.pdf")
        order = await failed_order(service, "ASSETS-1", proof="https://files.test/proof.pdf")

        moved = await service.store.restart_order("acme", order.id, "operator")

        assert sorted(task.key for task in moved.tasks) == ["task-1", "task-1~1"]
        rows = await order_assets(service.db, order.id)
        assert [(r["asset_id"], r["task_key"], r["url"]) for r in rows] == [
            ("proof", "task-1~1", "https://files.test/proof.pdf")
        ]
        untouched = await order_assets(service.db, other.id)
        assert [(r["asset_id"], r["task_key"]) for r in untouched] == [("proof", "task-1")]
