"""Joins whose predecessors end on different paths (a reply and a timer) at the same moment.

`d` joins `b` (a connector answering after 0.5 s, ended by a completion) and `c` (a 500 ms wait,
ended by the timer loop). Both transactions end a predecessor of `d` at about the same time; each
must see the other's write, or `d` is never queued and the order stays IN_PROGRESS.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest

from ordermill.config import Settings
from ordermill.flows.status import TaskStatus
from ordermill.flows.work import AttemptRecord, ClaimedTask, Completion, Wake
from ordermill.service import Service
from ordermill.storage import writer
from ordermill.storage.feedback import due_waiting, timer_change
from tests.integration.conftest import order_doc, wait_for_status
from tests.integration.handler_flows import post_flow, task
from tests.support.receiver import HttpsReceiver, Reply

ORDERS = 40


def join_flow(uri: str) -> dict[str, Any]:
    def rest(key: str, path: str, *, next_: list[str]) -> dict[str, Any]:
        return task(key, "consume-rest-api", {"uri": uri + path}, next=next_)

    return {
        "key": "split-and-join",
        "name": "Split and join",
        "stages": [
            {
                "key": "make",
                "initialTaskDefinitionKeys": ["a"],
                "taskDefinitions": [
                    rest("a", "/a", next_=["b", "c"]),
                    rest("b", "/b", next_=["d"]),
                    task("c", "wait", {"durationMs": 500}, next=["d"]),
                    {**rest("d", "/d", next_=[]), "join": "all"},
                ],
            },
            {
                "key": "ship",
                "initialTaskDefinitionKeys": ["e"],
                "taskDefinitions": [rest("e", "/e", next_=[])],
            },
        ],
    }


@pytest.mark.slow
async def test_a_join_of_a_reply_and_a_timer_starts_for_every_order(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/b", Reply(status=201, body={"ok": True}, delay=0.5))
    await post_flow(client, acme, join_flow(https_receiver.url("")))

    async def post(n: int) -> str:
        body = order_doc(f"JOIN-{n}", flow_key="split-and-join")
        response = await client.post("/api/orders", json=body, headers=acme)
        assert response.status_code == 201, response.text
        order_id: str = response.json()["id"]
        return order_id

    ids = await asyncio.gather(*(post(n) for n in range(ORDERS)))
    ended = await asyncio.gather(
        *(wait_for_status(client, acme, i, "SUCCESS", "FAILURE", timeout=60) for i in ids)
    )

    assert [order["status"] for order in ended] == ["SUCCESS"] * ORDERS
    for order in ended:
        assert sorted(t["key"] for t in order["tasks"]) == ["a", "b", "c", "d", "e"]
        assert {t["status"] for t in order["tasks"]} == {"SUCCEEDED"}


# --- the same race, made to happen every time ------------------------------------------------


def _done(task: ClaimedTask, status: TaskStatus, **extra: Any) -> Completion:
    now = datetime.now(UTC)
    record = AttemptRecord(number=task.attempt, started_at=now, ended_at=now, outcome="x")
    return Completion(task=task, status=status, attempt=record, **extra)


async def _claim(service: Service, *keys: str) -> dict[str, ClaimedTask]:
    claimed = await service.store.claim("w", 10, 30)
    assert sorted(task.task_key for task in claimed) == sorted(keys)
    return {task.task_key: task for task in claimed}


@asynccontextmanager
async def engine_off(
    make_settings: Callable[..., Settings], flow: dict[str, Any]
) -> AsyncIterator[Service]:
    """The service with no worker running, space `acme` and ``flow`` saved in it."""
    service = await Service.open(make_settings())
    try:
        await service.store.spaces.create_space("acme")
        await service.save_flow("acme", flow)
        yield service
    finally:
        await service.close()


async def test_a_timer_and_a_completion_that_overlap_both_count_for_the_join(
    make_settings: Callable[..., Settings],
) -> None:
    """The timer ends `c` and holds its transaction open while a completion ends `b`.

    The completion must wait for the order's row and then see `c` ended; had it read the
    tasks without that lock, neither transaction would see both predecessors and `d` would
    never be queued.
    """
    async with engine_off(make_settings, join_flow("https://127.0.0.1:9")) as service:
        body = order_doc("RACE-1", flow_key="split-and-join")
        order, _ = await service.create_order(body, start=True, actor="test")
        first = await _claim(service, "a")
        await service.store.complete([_done(first["a"], TaskStatus.SUCCEEDED)])
        second = await _claim(service, "b", "c")
        past = datetime.now(UTC) - timedelta(seconds=1)
        waiting = _done(second["c"], TaskStatus.WAITING, due_at=past, wake=Wake.FIRE)
        await service.store.complete([waiting])

        completing: asyncio.Task[list[bool]] | None = None
        async with service.store.unit() as uow:
            [row] = await due_waiting(uow, 10)
            await writer.apply(uow, [timer_change(row, second["c"].flow)])
            completing = asyncio.create_task(
                service.store.complete([_done(second["b"], TaskStatus.SUCCEEDED)])
            )
            done, _ = await asyncio.wait([completing], timeout=0.5)
            assert not done, "the completion went ahead while the timer held the order"
        assert await completing == [True]

        view = await service.store.get_order("acme", order.id)
        statuses = {task.key: task.status for task in view.tasks}
        assert statuses == {
            "a": TaskStatus.SUCCEEDED,
            "b": TaskStatus.SUCCEEDED,
            "c": TaskStatus.SUCCEEDED,
            "d": TaskStatus.PENDING,
        }
