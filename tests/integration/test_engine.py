"""The engine against a real https connector (SPEC §3, §5), on both databases.

Every test posts a flow and an order through the API, lets the in-process engine call the
receiver on 127.0.0.1, and reads the outcome back through the API.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest

from tests.integration.conftest import (
    bearer_prefix,
    held_by,
    wait_for_requests,
    wait_for_status,
)
from tests.integration.matchers import DELIVERY_ID, INSTANT, Matches
from tests.support.factories import flow_doc, order_doc
from tests.support.receiver import HttpsReceiver, ReceivedRequest, Reply

PROBLEM_JSON = "application/problem+json"
ORDER_FIELDS = [
    "spaceKey",
    "flowKey",
    "thirdPartyOrderId",
    "updateUrl",
    "addresses",
    "data",
    "orderLines",
]
UPDATE_URL = Matches(r"http://testserver/api/feedback/[0-9a-f]{64}", "UPDATE_URL")
FAST_RETRY = {
    "maxAttempts": 5,
    "initialIntervalMs": 50,
    "backoffCoefficient": 1.0,
    "maxIntervalMs": 100,
}


def latency(value: object) -> bool:
    return isinstance(value, int | float) and value >= 0


async def run_order(
    client: httpx2.AsyncClient,
    headers: dict[str, str],
    flow: dict[str, Any],
    order: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Post ``flow`` and ``order`` (the reference order by default); returns the created order."""
    response = await client.post("/api/flows", json=flow, headers=headers)
    assert response.status_code == 201, response.text
    response = await client.post("/api/orders", json=order or order_doc(), headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def wait_for_task(
    client: httpx2.AsyncClient,
    headers: dict[str, str],
    order_id: str,
    task_key: str,
    *statuses: str,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Poll the order until its task ``task_key`` reaches one of ``statuses``; returns the task."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    order: dict[str, Any] = {}
    while loop.time() < deadline:
        order = (await client.get(f"/api/orders/{order_id}", headers=headers)).json()
        for task in order.get("tasks", []):
            if task["key"] == task_key and task["status"] in statuses:
                found: dict[str, Any] = task
                return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_key} never reached {statuses}; last seen: {order}")


async def events_of(
    client: httpx2.AsyncClient, headers: dict[str, str], order_id: str
) -> list[tuple[str, str | None, Any]]:
    """The order's timeline as (type, taskKey, data) triples."""
    response = await client.get(f"/api/orders/{order_id}/events", headers=headers)
    assert response.status_code == 200, response.text
    return [(e["type"], e["taskKey"], e["data"]) for e in response.json()["items"]]


async def attempts_of(
    client: httpx2.AsyncClient, headers: dict[str, str], order_id: str, task_key: str = "task-1"
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/api/orders/{order_id}/tasks/{task_key}/attempts", headers=headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def feedback_path(request: ReceivedRequest) -> str:
    """The path of the updateUrl the connector received (the app is reached in-process)."""
    return urlsplit(request.json()["order"]["updateUrl"]).path


# --- the request a connector receives -------------------------------------------------------------


async def test_connector_receives_exactly_the_documented_order_shape(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    uri = https_receiver.url("/orders")
    created = await run_order(client, acme, flow_doc(uri))

    order = await wait_for_status(client, acme, created["id"], "SUCCESS", "FAILURE")

    assert order["status"] == "SUCCESS"
    [request] = https_receiver.requests
    task = order["tasks"][0]
    assert (request.method, request.path, request.query) == ("POST", "/orders", "")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == task["deliveryId"]
    assert request.headers["ordermill-attempt"] == "1"
    body = request.json()
    assert list(body) == ["order", "context"]
    assert list(body["order"]) == ORDER_FIELDS
    document = order_doc()
    assert body == {
        "order": {
            "spaceKey": "acme",
            "flowKey": "made-to-order",
            "thirdPartyOrderId": "WEB-1001",
            "updateUrl": UPDATE_URL,
            "addresses": document["addresses"],
            "data": document["data"],
            "orderLines": document["orderLines"],
        },
        "context": {
            "orderId": created["id"],
            "stageKey": "stage-1",
            "taskKey": "task-1",
            "deliveryId": task["deliveryId"],
        },
    }
    assert task == {
        "key": "task-1",
        "stageKey": "stage-1",
        "handlerKey": "consume-rest-api",
        "status": "SUCCEEDED",
        "attempts": 1,
        "dueAt": None,
        "deliveryId": DELIVERY_ID,
        "result": {"statusCode": 201},
        "error": None,
        "createdAt": INSTANT,
        "updatedAt": INSTANT,
        "endedAt": INSTANT,
    }
    [attempt] = await attempts_of(client, acme, created["id"])
    assert latency(attempt.pop("latencyMs"))
    logged = attempt["request"]["headers"]
    signature = request.headers.get("webhook-signature")
    if signature is not None:  # signed deliveries log the signature shortened, never whole
        assert logged.pop("webhook-timestamp") == request.headers["webhook-timestamp"]
        assert logged.pop("webhook-signature") != signature
        assert signature not in json.dumps(attempt)
    # The body sent, exactly, and the connector's answer headers.
    assert attempt["request"].pop("body") == request.body.decode()
    answered = attempt["request"].pop("responseHeaders")
    assert answered["Content-Type"] == "application/json"
    assert answered["Content-Length"] == "12"
    assert attempt == {
        "number": 1,
        "startedAt": INSTANT,
        "endedAt": INSTANT,
        "outcome": "succeeded",
        "statusCode": 201,
        "request": {
            "method": "POST",
            "url": uri,
            "headers": {
                "Content-Type": "application/json",
                "User-Agent": "ordermill",
                "webhook-id": task["deliveryId"],
                "ordermill-attempt": "1",
            },
        },
        "responseBody": '{"ok": true}',
        "errorClass": None,
        "errorMessage": None,
    }


# --- feedback -------------------------------------------------------------------------------------


async def test_feedback_completes_a_waiting_task_and_answers_by_the_contract(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    created = await run_order(
        client,
        acme,
        flow_doc(https_receiver.url("/orders"), sends_feedback=True, timeoutDuration=60_000),
    )
    waiting = await wait_for_task(client, acme, created["id"], "task-1", "WAITING")
    assert waiting["dueAt"] == INSTANT
    path = feedback_path(https_receiver.requests[0])

    progress = await client.post(path, json={"status": "progress", "message": "printing"})
    still = (await client.get(f"/api/orders/{created['id']}", headers=acme)).json()
    success = await client.post(
        path, json={"status": "success", "message": "shipped", "data": {"tracking": "TR-1"}}
    )
    done = (await client.get(f"/api/orders/{created['id']}", headers=acme)).json()
    same_again = await client.post(path, json={"status": "success", "message": "shipped"})
    different = await client.post(path, json={"status": "failure"})
    unknown = await client.post("/api/feedback/" + "0" * 64, json={"status": "success"})
    malformed = await client.post(path, json={"status": "done", "colour": "blue"})
    not_json = await client.post(
        path, content=b"status=success", headers={"Content-Type": "application/json"}
    )

    assert (progress.status_code, progress.json()) == (
        200,
        {"accepted": True, "outcome": "recorded"},
    )
    assert (still["status"], still["tasks"][0]["status"]) == ("IN_PROGRESS", "WAITING")
    assert (success.status_code, success.json()) == (200, {"accepted": True, "outcome": "applied"})
    assert done["status"] == "SUCCESS"
    assert done["tasks"][0]["status"] == "SUCCEEDED"
    assert done["tasks"][0]["result"] == {
        "statusCode": 201,
        "feedback": {"status": "success", "message": "shipped", "data": {"tracking": "TR-1"}},
    }
    assert (same_again.status_code, same_again.json()) == (
        200,
        {"accepted": True, "outcome": "duplicate"},
    )
    assert different.status_code == 409
    assert different.headers["content-type"] == PROBLEM_JSON
    assert different.json()["detail"] == "the task already ended as SUCCEEDED"
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == PROBLEM_JSON
    assert unknown.json()["detail"] == "no task has this update URL"
    assert malformed.status_code == 400
    assert malformed.headers["content-type"] == PROBLEM_JSON
    assert [p["pointer"] for p in malformed.json()["problems"]] == ["/status", "/colour"]
    assert not_json.status_code == 400
    assert not_json.headers["content-type"] == PROBLEM_JSON
    timeline = await events_of(client, acme, created["id"])
    assert timeline[-5:] == [
        ("task.waiting", "task-1", {"attempt": 1}),
        ("feedback.progress", "task-1", {"message": "printing"}),
        ("feedback.received", "task-1", {"status": "success", "message": "shipped"}),
        ("task.succeeded", "task-1", {"by": "feedback", "message": "shipped"}),
        ("order.status", None, {"from": "IN_PROGRESS", "to": "SUCCESS"}),
    ]
    assert len(https_receiver.requests) == 1


async def test_failure_feedback_fails_the_order(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    created = await run_order(
        client,
        acme,
        flow_doc(https_receiver.url("/orders"), sends_feedback=True, timeoutDuration=60_000),
    )
    await wait_for_task(client, acme, created["id"], "task-1", "WAITING")

    response = await client.post(
        feedback_path(https_receiver.requests[0]),
        json={"status": "failure", "message": "out of stock"},
    )

    assert response.status_code == 200
    order = (await client.get(f"/api/orders/{created['id']}", headers=acme)).json()
    assert order["status"] == "FAILURE"
    assert order["tasks"][0]["status"] == "FAILED"
    assert order["tasks"][0]["error"] == {"class": "FeedbackFailure", "message": "out of stock"}


async def test_a_wait_for_feedback_times_out_unhealthy_and_a_late_answer_completes_it(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    flow = flow_doc(https_receiver.url("/orders"), sends_feedback=True, timeoutDuration=300)
    created = await run_order(client, acme, flow)

    unhealthy = await wait_for_status(client, acme, created["id"], "UNHEALTHY", "FAILURE")

    assert unhealthy["status"] == "UNHEALTHY"
    assert unhealthy["endedAt"] is None
    [task] = unhealthy["tasks"]
    assert (task["status"], task["error"]) == (
        "TIMED_OUT",
        {"class": "WaitTimeout", "message": "no answer came in time"},
    )
    # Every attempt carries the same updateUrl; on a loaded machine the 300 ms may also cut
    # an HTTP attempt short, which is retried, so we do not insist on a single request.
    late = await client.post(feedback_path(https_receiver.requests[-1]), json={"status": "success"})
    assert (late.status_code, late.json()) == (200, {"accepted": True, "outcome": "applied"})
    order = (await client.get(f"/api/orders/{created['id']}", headers=acme)).json()
    assert order["status"] == "SUCCESS"
    assert order["tasks"][0]["status"] == "SUCCEEDED"
    assert order["tasks"][0]["error"] is None
    timeline = await events_of(client, acme, created["id"])
    assert timeline[-6:] == [
        ("task.waiting", "task-1", {"attempt": task["attempts"]}),
        ("task.timed_out", "task-1", {"error": "no answer came in time"}),
        ("order.status", None, {"from": "IN_PROGRESS", "to": "UNHEALTHY"}),
        ("feedback.received", "task-1", {"status": "success", "message": None}),
        ("task.succeeded", "task-1", {"by": "feedback", "message": None}),
        ("order.status", None, {"from": "UNHEALTHY", "to": "SUCCESS"}),
    ]


async def test_feedback_timeout_duration_bounds_the_feedback_wait_on_its_own(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    flow = flow_doc(https_receiver.url("/orders"), sends_feedback=True, timeoutDuration=60_000)
    flow["stages"][0]["taskDefinitions"][0]["payload"]["feedbackTimeoutDuration"] = 300
    created = await run_order(client, acme, flow)

    order = await wait_for_status(client, acme, created["id"], "UNHEALTHY", "FAILURE", "SUCCESS")

    assert order["status"] == "UNHEALTHY"
    assert order["tasks"][0]["status"] == "TIMED_OUT"


async def test_feedback_that_arrives_before_the_http_answer_is_held_then_applied(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
    gate: threading.Event,
) -> None:
    https_receiver.script("/orders", Reply(status=202, before=held_by(gate)))
    created = await run_order(
        client,
        acme,
        flow_doc(https_receiver.url("/orders"), sends_feedback=True, timeoutDuration=60_000),
    )
    [request] = await wait_for_requests(https_receiver, 1)
    path = feedback_path(request)

    early = await client.post(path, json={"status": "success", "message": "fast"})
    early_again = await client.post(path, json={"status": "success", "message": "fast"})
    contradicting = await client.post(path, json={"status": "failure"})
    meanwhile = (await client.get(f"/api/orders/{created['id']}", headers=acme)).json()
    gate.set()
    order = await wait_for_status(client, acme, created["id"], "SUCCESS", "FAILURE")

    assert (early.status_code, early.json()) == (200, {"accepted": True, "outcome": "held"})
    assert (early_again.status_code, early_again.json()) == (
        200,
        {"accepted": True, "outcome": "duplicate"},
    )
    assert contradicting.status_code == 409
    assert contradicting.json()["detail"] == "feedback 'success' was already received for this task"
    assert (meanwhile["status"], meanwhile["tasks"][0]["status"]) == ("IN_PROGRESS", "RUNNING")
    assert order["status"] == "SUCCESS"
    assert order["tasks"][0]["result"] == {
        "statusCode": 202,
        "feedback": {"status": "success", "message": "fast", "data": None},
    }
    timeline = await events_of(client, acme, created["id"])
    assert timeline[-5:] == [
        ("task.running", "task-1", {"attempt": 1}),
        ("feedback.received", "task-1", {"status": "success", "message": "fast", "held": True}),
        ("task.waiting", "task-1", {"attempt": 1}),
        ("task.succeeded", "task-1", {"by": "feedback", "message": "fast"}),
        ("order.status", None, {"from": "IN_PROGRESS", "to": "SUCCESS"}),
    ]


# --- failures and retries -------------------------------------------------------------------------


async def test_a_400_fails_the_order_after_one_attempt_and_keeps_the_problem_body(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    problem = {
        "type": "https://erp.example.com/problems/unknown-sku",
        "title": "Unknown SKU",
        "status": 400,
        "detail": "SKU 'bracelet-m' is not in the catalogue",
    }
    https_receiver.script(
        "/orders",
        Reply(status=400, body=problem, headers={"Content-Type": "application/problem+json"}),
    )
    created = await run_order(client, acme, flow_doc(https_receiver.url("/orders")))

    order = await wait_for_status(client, acme, created["id"], "FAILURE", "SUCCESS")

    assert order["status"] == "FAILURE"
    assert order["endedAt"] == INSTANT
    [task] = order["tasks"]
    assert (task["status"], task["attempts"], task["error"]) == (
        "FAILED",
        1,
        {"class": "PermanentError", "message": "the connector answered 400", "statusCode": 400},
    )
    [attempt] = await attempts_of(client, acme, created["id"])
    assert (attempt["number"], attempt["outcome"], attempt["statusCode"]) == (1, "failed", 400)
    assert json.loads(attempt["responseBody"]) == problem
    assert attempt["responseBody"] == json.dumps(problem)
    assert (attempt["errorClass"], attempt["errorMessage"]) == (
        "PermanentError",
        "the connector answered 400",
    )
    assert len(https_receiver.requests) == 1
    timeline = await events_of(client, acme, created["id"])
    assert timeline[-2:] == [
        ("task.failed", "task-1", {"attempt": 1, "error": "the connector answered 400"}),
        ("order.status", None, {"from": "IN_PROGRESS", "to": "FAILURE"}),
    ]


async def test_5xx_answers_are_retried_with_the_same_delivery_until_one_succeeds(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    https_receiver.script(
        "/orders",
        [Reply(status=500, body="boom"), Reply(status=500, body="boom"), Reply(status=201)],
    )
    flow = flow_doc(https_receiver.url("/orders"), retry=FAST_RETRY)
    created = await run_order(client, acme, flow)

    order = await wait_for_status(client, acme, created["id"], "SUCCESS", "FAILURE")

    assert order["status"] == "SUCCESS"
    assert order["tasks"][0]["attempts"] == 3
    requests = https_receiver.requests
    assert len(requests) == 3
    delivery_id = order["tasks"][0]["deliveryId"]
    assert [r.headers["webhook-id"] for r in requests] == [delivery_id] * 3
    assert [r.json()["context"]["deliveryId"] for r in requests] == [delivery_id] * 3
    assert [r.headers["ordermill-attempt"] for r in requests] == ["1", "2", "3"]
    assert len({r.body for r in requests}) == 1, "a retry resends the same bytes"
    attempts = await attempts_of(client, acme, created["id"])
    assert [(a["number"], a["outcome"], a["statusCode"], a["responseBody"]) for a in attempts] == [
        (1, "retry", 500, "boom"),
        (2, "retry", 500, "boom"),
        (3, "succeeded", 201, ""),
    ]
    timeline = await events_of(client, acme, created["id"])
    scheduled = [data for kind, _, data in timeline if kind == "task.retry_scheduled"]
    assert scheduled == [
        {"attempt": 1, "error": "the connector answered 500", "retryAt": INSTANT},
        {"attempt": 2, "error": "the connector answered 500", "retryAt": INSTANT},
    ]


async def test_retries_exhausted_fail_the_task(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/orders", Reply(status=503))
    flow = flow_doc(https_receiver.url("/orders"), retry={**FAST_RETRY, "maxAttempts": 2})
    created = await run_order(client, acme, flow)

    order = await wait_for_status(client, acme, created["id"], "FAILURE", "SUCCESS")

    assert order["status"] == "FAILURE"
    assert (order["tasks"][0]["status"], order["tasks"][0]["attempts"]) == ("FAILED", 2)
    assert [a["outcome"] for a in await attempts_of(client, acme, created["id"])] == [
        "retry",
        "failed",
    ]
    assert len(https_receiver.requests) == 2


async def test_an_attempt_that_runs_out_of_time_ends_timed_out_and_unhealthy(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
    gate: threading.Event,
) -> None:
    https_receiver.script("/orders", Reply(status=201, before=held_by(gate)))
    flow = flow_doc(
        https_receiver.url("/orders"), timeoutDuration=300, retry={**FAST_RETRY, "maxAttempts": 1}
    )
    created = await run_order(client, acme, flow)

    order = await wait_for_status(client, acme, created["id"], "UNHEALTHY", "FAILURE", "SUCCESS")

    assert order["status"] == "UNHEALTHY"
    [task] = order["tasks"]
    assert (task["status"], task["error"]["class"]) == ("TIMED_OUT", "AttemptTimeout")
    [attempt] = await attempts_of(client, acme, created["id"])
    assert (attempt["outcome"], attempt["statusCode"], attempt["errorClass"]) == (
        "timed_out",
        None,
        "AttemptTimeout",
    )


async def test_a_redirect_fails_the_order_and_is_not_followed(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    https_receiver.script(
        "/orders", Reply(status=302, headers={"Location": https_receiver.url("/elsewhere")})
    )
    created = await run_order(client, acme, flow_doc(https_receiver.url("/orders")))

    order = await wait_for_status(client, acme, created["id"], "FAILURE", "SUCCESS")

    assert order["status"] == "FAILURE"
    assert order["tasks"][0]["error"] == {
        "class": "PermanentError",
        "message": "the connector answered 302 (a redirect; redirects are not followed)",
        "statusCode": 302,
    }
    assert [r.path for r in https_receiver.requests] == ["/orders"]


async def test_an_operator_retry_runs_a_failed_order_again_and_records_who_did_it(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
    gate: threading.Event,
) -> None:
    https_receiver.script("/orders", Reply(status=400, body={"detail": "not yet"}))
    created = await run_order(client, acme, flow_doc(https_receiver.url("/orders")))
    await wait_for_status(client, acme, created["id"], "FAILURE", "SUCCESS")
    https_receiver.script("/orders", Reply(status=201, before=held_by(gate)))

    retried = await client.post(f"/api/orders/{created['id']}/retry", headers=acme)

    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "IN_PROGRESS"
    assert retried.json()["endedAt"] is None
    assert retried.json()["tasks"][0]["error"] is None
    gate.set()
    order = await wait_for_status(client, acme, created["id"], "SUCCESS", "FAILURE")
    assert order["status"] == "SUCCESS"
    assert order["tasks"][0]["attempts"] == 2
    actor = f"api-key:{bearer_prefix(acme)}… (test)"
    events = (await client.get(f"/api/orders/{created['id']}/events", headers=acme)).json()
    operator = [(e["type"], e["actor"], e["data"]) for e in events["items"] if e["actor"] == actor]
    assert operator == [
        ("order.created", actor, {"flowVersion": 1}),
        ("order.started", actor, None),
        ("order.retried", actor, {"tasks": ["task-1"]}),
        ("order.status", actor, {"from": "FAILURE", "to": "IN_PROGRESS"}),
    ]
    attempts = await attempts_of(client, acme, created["id"])
    assert [(a["number"], a["outcome"], a["statusCode"]) for a in attempts] == [
        (1, "failed", 400),
        (2, "succeeded", 201),
    ]
    requests = https_receiver.requests
    assert [r.headers["webhook-id"] for r in requests] == [order["tasks"][0]["deliveryId"]] * 2
    again = await client.post(f"/api/orders/{created['id']}/retry", headers=acme)
    assert again.status_code == 409
    assert again.json()["detail"] == "a SUCCESS order cannot be retried"


# --- flows with several tasks and stages ----------------------------------------------------------


def task(key: str, receiver: HttpsReceiver, *next_keys: str, **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "handlerKey": "consume-rest-api",
        "payload": {"uri": receiver.url(f"/{key}")},
        "timeoutDuration": 5000,
        "next": list(next_keys),
        **extra,
    }


async def test_fan_out_and_an_and_join_run_every_task_once_in_dependency_order(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
    gate: threading.Event,
) -> None:
    """stage-1: a → (b, c) → d, d joining all; stage-2: e. b is held until c has succeeded."""
    flow = {
        "key": "diamond",
        "name": "Diamond then a line",
        "stages": [
            {
                "key": "stage-1",
                "initialTaskDefinitionKeys": ["a"],
                "taskDefinitions": [
                    task("a", https_receiver, "b", "c"),
                    task("b", https_receiver, "d"),
                    task("c", https_receiver, "d"),
                    task("d", https_receiver, join="all"),
                ],
            },
            {
                "key": "stage-2",
                "initialTaskDefinitionKeys": ["e"],
                "taskDefinitions": [task("e", https_receiver)],
            },
        ],
    }
    https_receiver.script("/b", Reply(status=201, before=held_by(gate)))
    created = await run_order(client, acme, flow, order_doc(flow_key="diamond"))

    await wait_for_requests(https_receiver, 1, path="/b")
    await wait_for_task(client, acme, created["id"], "c", "SUCCEEDED")
    meanwhile = (await client.get(f"/api/orders/{created['id']}", headers=acme)).json()
    gate.set()
    order = await wait_for_status(client, acme, created["id"], "SUCCESS", "FAILURE")

    assert [(t["key"], t["status"]) for t in meanwhile["tasks"]] == [
        ("a", "SUCCEEDED"),
        ("b", "RUNNING"),
        ("c", "SUCCEEDED"),
    ], "d waits for both of its predecessors"
    assert order["status"] == "SUCCESS"
    assert [(t["key"], t["stageKey"], t["status"], t["attempts"]) for t in order["tasks"]] == [
        ("a", "stage-1", "SUCCEEDED", 1),
        ("b", "stage-1", "SUCCEEDED", 1),
        ("c", "stage-1", "SUCCEEDED", 1),
        ("d", "stage-1", "SUCCEEDED", 1),
        ("e", "stage-2", "SUCCEEDED", 1),
    ]
    arrivals = [r.path for r in https_receiver.requests]
    assert arrivals in (["/a", "/b", "/c", "/d", "/e"], ["/a", "/c", "/b", "/d", "/e"])
    timeline = await events_of(client, acme, created["id"])
    stages = [data["stage"] for kind, _, data in timeline if kind == "stage.started"]
    assert stages == ["stage-1", "stage-2"]
    queued = [key for kind, key, _ in timeline if kind == "task.queued"]
    assert queued == ["a", "b", "c", "d", "e"]


async def test_an_any_join_starts_after_the_first_predecessor_and_runs_once(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
    gate: threading.Event,
) -> None:
    flow = {
        "key": "race",
        "name": "First answer wins",
        "stages": [
            {
                "key": "stage-1",
                "initialTaskDefinitionKeys": ["fast", "slow"],
                "taskDefinitions": [
                    task("fast", https_receiver, "after"),
                    task("slow", https_receiver, "after"),
                    task("after", https_receiver, join="any"),
                ],
            }
        ],
    }
    https_receiver.script("/slow", Reply(status=201, before=held_by(gate)))
    created = await run_order(client, acme, flow, order_doc(flow_key="race"))

    await wait_for_requests(https_receiver, 1, path="/after")
    meanwhile = (await client.get(f"/api/orders/{created['id']}", headers=acme)).json()
    gate.set()
    order = await wait_for_status(client, acme, created["id"], "SUCCESS", "FAILURE")

    assert {t["key"]: t["status"] for t in meanwhile["tasks"]}["slow"] == "RUNNING"
    assert order["status"] == "SUCCESS"
    assert sorted(r.path for r in https_receiver.requests) == ["/after", "/fast", "/slow"]


async def test_an_order_finishes_on_the_flow_version_it_was_created_with(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
    gate: threading.Event,
) -> None:
    """SPEC §2.3: a new version while an order runs changes nothing for that order."""

    def two_steps(version: str) -> dict[str, Any]:
        first = task("first", https_receiver, "second")
        second = task("second", https_receiver)
        second["payload"]["uri"] = https_receiver.url(f"/{version}/second")
        return {
            "key": "pinned",
            "name": "Pinned versions",
            "stages": [
                {
                    "key": "stage-1",
                    "initialTaskDefinitionKeys": ["first"],
                    "taskDefinitions": [first, second],
                }
            ],
        }

    https_receiver.script("/first", [Reply(status=201, before=held_by(gate)), Reply(status=201)])
    old = await run_order(client, acme, two_steps("v1"), order_doc("OLD-1", flow_key="pinned"))
    await wait_for_requests(https_receiver, 1, path="/first")
    changed = await client.put("/api/flows/pinned", json=two_steps("v2"), headers=acme)
    assert (changed.status_code, changed.json()["version"]) == (200, 2)
    new = await client.post("/api/orders", json=order_doc("NEW-1", flow_key="pinned"), headers=acme)
    assert new.status_code == 201, new.text
    gate.set()

    old_done = await wait_for_status(client, acme, old["id"], "SUCCESS", "FAILURE")
    new_done = await wait_for_status(client, acme, new.json()["id"], "SUCCESS", "FAILURE")

    assert (old_done["status"], old_done["flowVersion"]) == ("SUCCESS", 1)
    assert (new_done["status"], new_done["flowVersion"]) == ("SUCCESS", 2)
    second_calls = {
        r.json()["order"]["thirdPartyOrderId"]: r.path
        for r in https_receiver.requests
        if r.path.endswith("/second")
    }
    assert second_calls == {"OLD-1": "/v1/second", "NEW-1": "/v2/second"}


# --- outbound network safety ----------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_connector_on_a_loopback_address_is_refused_without_the_spaces_allowance(
    client: httpx2.AsyncClient,
    make_space: Callable[..., Any],
    https_receiver: HttpsReceiver,
    host: str,
) -> None:
    other = await make_space("other")
    uri = f"https://{host}:{https_receiver.port}/orders"
    created = await run_order(client, other, flow_doc(uri), order_doc(spaceKey="other"))

    order = await wait_for_status(client, other, created["id"], "FAILURE", "SUCCESS")

    assert order["status"] == "FAILURE"
    [task_view] = order["tasks"]
    assert (task_view["status"], task_view["attempts"]) == ("FAILED", 1)
    shown = "127.0.0.1" if host == "127.0.0.1" else r"localhost \((127\.0\.0\.1|::1)\)"
    message = Matches(
        rf"target {shown} is a loopback address; allow it with "
        r"ORDERMILL_CONNECTOR_ALLOW_NETWORKS\b.*"
    )
    assert task_view["error"] == {"class": "TargetRefused", "message": message}
    assert https_receiver.requests == []


async def test_a_host_name_resolving_to_an_allowed_network_is_reached(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    uri = f"https://localhost:{https_receiver.port}/orders"
    created = await run_order(client, acme, flow_doc(uri))

    order = await wait_for_status(client, acme, created["id"], "SUCCESS", "FAILURE")

    assert order["status"] == "SUCCESS", order["tasks"]
    assert [r.path for r in https_receiver.requests] == ["/orders"]
