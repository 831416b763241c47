"""A flow's failure stage through the API, the engine and a real https receiver."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2

from ordermill.handlers.connector import ORDER_FIELDS
from tests.integration.conftest import flow_doc, order_doc, wait_for_requests, wait_for_status
from tests.integration.test_delivery import verifies
from tests.support.receiver import HttpsReceiver, Reply

DOCUMENTED_ORDER_FIELDS = set(ORDER_FIELDS)


def failing_flow(receiver: HttpsReceiver, **failure: Any) -> dict[str, Any]:
    flow = flow_doc(receiver.url("/make"), retry={"maxAttempts": 1})
    flow["failureStage"] = {
        "key": "tell-erp",
        "initialTaskDefinitionKeys": ["erp-failed"],
        "taskDefinitions": [
            {
                "key": "erp-failed",
                "handlerKey": "consume-rest-api",
                "payload": {"uri": receiver.url("/failed"), "sendsFeedback": False},
                "next": [],
            }
        ],
        **failure,
    }
    return flow


async def task_status(
    client: httpx2.AsyncClient, headers: dict[str, str], order_id: str, key: str, status: str
) -> dict[str, Any]:
    task: dict[str, Any] = {}
    for _ in range(400):
        order = (await client.get(f"/api/orders/{order_id}", headers=headers)).json()
        task = next((t for t in order["tasks"] if t["key"] == key), {})
        if task.get("status") == status:
            return order
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {key} never reached {status}; last seen {task}")


async def test_a_failed_order_tells_its_failure_stage_once_per_failure(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    secret = (await client.get("/api/spaces/acme/signing-secret", headers=acme)).json()["current"]
    https_receiver.script("/make", [Reply(400, {"title": "no such size"})])
    https_receiver.script("/failed", Reply(201))
    flow = failing_flow(https_receiver)
    assert (await client.put("/api/flows/made-to-order", json=flow, headers=acme)).status_code in (
        200,
        201,
    )
    created = await client.post("/api/orders", json=order_doc("F-1"), headers=acme)
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]

    (told,) = await wait_for_requests(https_receiver, 1, path="/failed")
    assert verifies(secret, told)
    body = told.json()
    assert set(body["order"]) == DOCUMENTED_ORDER_FIELDS
    assert body["order"]["thirdPartyOrderId"] == "F-1"
    trigger = body["context"]["trigger"]
    assert trigger["event"] == "order.failed"
    assert trigger["taskKey"] == "task-1"
    assert trigger["error"]["statusCode"] == 400
    assert body["context"]["stageKey"] == "tell-erp"
    assert body["context"]["taskKey"] == "erp-failed"

    order = await task_status(client, acme, order_id, "erp-failed", "SUCCEEDED")
    assert order["status"] == "FAILURE"
    events = (await client.get(f"/api/orders/{order_id}/events", headers=acme)).json()
    items = events["items"] if isinstance(events, dict) else events
    started = [e for e in items if e["type"] == "stage.started" and e["data"].get("failureStage")]
    assert len(started) == 1
    assert started[0]["data"]["stage"] == "tell-erp"
    statuses = [e["data"]["to"] for e in items if e["type"] == "order.status"]
    assert statuses[-1] == "FAILURE"

    # A retry that fails again tells the failure stage again, with the same bytes per attempt.
    https_receiver.script("/make", [Reply(400, {"title": "still no such size"})])
    assert (await client.post(f"/api/orders/{order_id}/retry", headers=acme)).status_code == 200
    second = await wait_for_requests(https_receiver, 2, path="/failed")
    assert verifies(secret, second[1])
    assert second[1].json()["context"]["trigger"]["taskKey"] == "task-1"
    await task_status(client, acme, order_id, "erp-failed", "SUCCEEDED")

    # A retry that succeeds does not run it.
    https_receiver.script("/make", Reply(201))
    assert (await client.post(f"/api/orders/{order_id}/retry", headers=acme)).status_code == 200
    done = await wait_for_status(client, acme, order_id, "SUCCESS")
    assert done["status"] == "SUCCESS"
    await asyncio.sleep(0.3)
    assert len([r for r in https_receiver.requests if r.path == "/failed"]) == 2


async def test_a_failing_failure_stage_leaves_the_order_as_it_was(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/make", Reply(422))
    https_receiver.script("/failed", Reply(400))
    flow = failing_flow(https_receiver)
    await client.put("/api/flows/made-to-order", json=flow, headers=acme)
    created = await client.post("/api/orders", json=order_doc("F-2"), headers=acme)
    order_id = created.json()["id"]
    order = await task_status(client, acme, order_id, "erp-failed", "FAILED")
    assert order["status"] == "FAILURE"
    # A retry retries the ordinary task, not the failure stage's.
    https_receiver.script("/make", Reply(201))
    assert (await client.post(f"/api/orders/{order_id}/retry", headers=acme)).status_code == 200
    done = await wait_for_status(client, acme, order_id, "SUCCESS")
    failed = next(t for t in done["tasks"] if t["key"] == "erp-failed")
    assert failed["status"] == "FAILED"


async def test_an_unhealthy_order_tells_the_stage_only_when_the_flow_says_so(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/make", Reply(201))
    flow = failing_flow(https_receiver, on=["FAILURE", "UNHEALTHY"])
    flow["stages"][0]["taskDefinitions"][0]["payload"]["sendsFeedback"] = True
    flow["stages"][0]["taskDefinitions"][0]["payload"]["feedbackTimeoutDuration"] = 300
    saved = await client.put("/api/flows/made-to-order", json=flow, headers=acme)
    assert saved.status_code in (200, 201), saved.text
    assert saved.json()["failureStage"]["on"] == ["FAILURE", "UNHEALTHY"]
    created = await client.post("/api/orders", json=order_doc("F-3"), headers=acme)
    order_id = created.json()["id"]
    (told,) = await wait_for_requests(https_receiver, 1, path="/failed")
    assert told.json()["context"]["trigger"]["event"] == "order.unhealthy"
    order = await wait_for_status(client, acme, order_id, "UNHEALTHY")
    assert order["status"] == "UNHEALTHY"


async def test_the_failure_stage_is_validated_with_pointers(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    flow = failing_flow(https_receiver, on=["SUCCESS"])
    flow["failureStage"]["taskDefinitions"][0]["payload"]["uri"] = "http://erp.example.com/x"
    answer = await client.post("/api/flows/validate", json=flow, headers=acme)
    problems = {p["pointer"] for p in answer.json()["problems"]}
    assert "/failureStage/on/0" in problems
    assert "/failureStage/taskDefinitions/0/payload/uri" in problems
