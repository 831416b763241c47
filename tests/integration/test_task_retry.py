"""Retrying one task of an order (`POST /api/orders/{id}/tasks/{key}/retry`): only that task
runs again, under its delivery id; on both databases, with the engine running."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2

from tests.integration.conftest import wait_for_status
from tests.support.factories import order_doc, rest_task, stage_doc, staged_flow
from tests.support.receiver import HttpsReceiver, Reply


def side_by_side(receiver: HttpsReceiver) -> dict[str, Any]:
    """Two connector tasks that start together and are tried once each."""
    tasks = [
        rest_task(receiver.url("/erp"), "book-erp", [], retry={"maxAttempts": 1}),
        rest_task(receiver.url("/shop"), "notify-shop", [], retry={"maxAttempts": 1}),
    ]
    return staged_flow(
        "made-to-order", "Side by side", stage_doc("make", ["book-erp", "notify-shop"], tasks)
    )


def tasks_of(order: dict[str, Any]) -> dict[str, tuple[str, int]]:
    return {task["key"]: (task["status"], task["attempts"]) for task in order["tasks"]}


async def test_retrying_one_task_runs_only_it_again_under_the_same_delivery_id(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/erp", [Reply(400, {"detail": "unknown SKU"}), Reply(201)])
    https_receiver.script("/shop", Reply(400, {"detail": "shop closed"}))
    response = await client.post("/api/flows", json=side_by_side(https_receiver), headers=acme)
    assert response.status_code == 201, response.text
    order_id = (await client.post("/api/orders", json=order_doc("T-1"), headers=acme)).json()["id"]
    await wait_for_status(client, acme, order_id, "FAILURE")
    base = f"/api/orders/{order_id}/tasks"

    response = await client.post(f"{base}/book-erp/retry", headers=acme)

    assert response.status_code == 200, response.text
    await asyncio.to_thread(https_receiver.wait_for, 2, 20, path="/erp")
    for _ in range(400):  # bounded: the attempt's outcome is written just after the answer
        order = (await client.get(f"/api/orders/{order_id}", headers=acme)).json()
        if tasks_of(order)["book-erp"][0] == "SUCCEEDED":
            break
        await asyncio.sleep(0.05)
    assert tasks_of(order) == {"book-erp": ("SUCCEEDED", 2), "notify-shop": ("FAILED", 1)}
    assert order["status"] == "FAILURE"  # notify-shop still failed
    first, second = (r for r in https_receiver.requests if r.path == "/erp")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert len([r for r in https_receiver.requests if r.path == "/shop"]) == 1
    events = (await client.get(f"/api/orders/{order_id}/events", headers=acme)).json()["items"]
    [retried] = [e for e in events if e["type"] == "order.retried"]
    assert (retried["data"], bool(retried["actor"])) == ({"tasks": ["book-erp"]}, True)

    again = await client.post(f"{base}/book-erp/retry", headers=acme)
    assert again.status_code == 409
    assert again.json()["detail"] == "task 'book-erp' has not failed or timed out"
    unknown = await client.post(f"{base}/nope/retry", headers=acme)
    assert unknown.status_code == 404
