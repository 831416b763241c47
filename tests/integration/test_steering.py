"""Operators steer orders through the API (SPEC §3.5): pause/resume, skip, cancel with a
reason, restart onto another flow version; on both databases, with the engine running."""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest

from tests.integration.conftest import bearer_prefix, held_by, wait_for_requests, wait_for_status
from tests.support.factories import flow_doc, order_doc, rest_task, stage_doc, staged_flow
from tests.support.receiver import HttpsReceiver, Reply

PROBLEM_JSON = "application/problem+json"


def two_steps(receiver: HttpsReceiver, second: str = "/second") -> dict[str, Any]:
    """book → notify, both connector calls to the test receiver."""
    tasks = [
        rest_task(receiver.url("/book"), "book", ["notify"], retry={"maxAttempts": 1}),
        rest_task(receiver.url(second), "notify", [], retry={"maxAttempts": 1}),
    ]
    return staged_flow("made-to-order", "Two steps", stage_doc("make", ["book"], tasks))


def requests_to(receiver: HttpsReceiver, path: str) -> list[Any]:
    return [request for request in receiver.requests if request.path == path]


async def put_flow(client: httpx2.AsyncClient, headers: dict[str, str], doc: dict[str, Any]) -> int:
    response = await client.put(f"/api/flows/{doc['key']}", json=doc, headers=headers)
    assert response.status_code in (200, 201), response.text
    version: int = response.json()["version"]
    return version


async def create(
    client: httpx2.AsyncClient,
    headers: dict[str, str],
    third_party_id: str = "WEB-1001",
    **extra: Any,
) -> str:
    body = order_doc(third_party_id, **extra)
    response = await client.post("/api/orders", json=body, headers=headers)
    assert response.status_code == 201, response.text
    order_id: str = response.json()["id"]
    return order_id


async def events(client: httpx2.AsyncClient, headers: dict[str, str], order_id: str) -> list[Any]:
    answer = await client.get(f"/api/orders/{order_id}/events", headers=headers)
    items: list[Any] = answer.json()["items"]
    return items


async def test_a_paused_order_finishes_its_attempt_in_flight_and_starts_nothing_until_resumed(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
    gate: threading.Event,
) -> None:
    https_receiver.script("/book", Reply(status=201, before=held_by(gate)))
    https_receiver.script("/second", Reply(status=201))
    await put_flow(client, acme, two_steps(https_receiver))
    order_id = await create(client, acme)
    await wait_for_requests(https_receiver, 1, path="/book")

    paused = await client.post(
        f"/api/orders/{order_id}/pause", json={"reason": "material out"}, headers=acme
    )

    assert paused.status_code == 200, paused.text
    view = paused.json()
    assert (view["status"], view["paused"]) == ("IN_PROGRESS", True)
    assert view["pause"]["reason"] == "material out"
    assert view["pause"]["by"] == f"api-key:{bearer_prefix(acme)}… (test)"
    again = await client.post(f"/api/orders/{order_id}/pause", headers=acme)
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM_JSON
    assert again.json()["detail"] == "the order is already paused"
    gate.set()  # the attempt in flight ends and is recorded
    for _ in range(200):  # 10 s at most
        order = (await client.get(f"/api/orders/{order_id}", headers=acme)).json()
        if {t["key"]: t["status"] for t in order["tasks"]}.get("book") == "SUCCEEDED":
            break
        await asyncio.sleep(0.05)
    tasks = {t["key"]: t for t in order["tasks"]}
    assert tasks["book"]["status"] == "SUCCEEDED"
    assert tasks["notify"]["status"] == "PENDING"
    assert tasks["notify"]["dueAt"] is None  # held: nothing claims it
    await asyncio.sleep(0.5)  # ten polls of the engine
    assert requests_to(https_receiver, "/second") == []

    resumed = await client.post(f"/api/orders/{order_id}/resume", headers=acme)

    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["paused"] is False
    assert resumed.json()["pause"] is None
    done = await wait_for_status(client, acme, order_id, "SUCCESS", "FAILURE")
    assert done["status"] == "SUCCESS"
    assert len(requests_to(https_receiver, "/second")) == 1
    timeline = [(e["type"], e["data"]) for e in await events(client, acme, order_id)]
    assert ("order.paused", {"reason": "material out"}) in timeline
    assert ("order.resumed", None) in timeline
    assert timeline.index(("order.resumed", None)) < [t for t, _ in timeline].index(
        "order.status", timeline.index(("order.resumed", None))
    )
    not_paused = await client.post(f"/api/orders/{order_id}/resume", headers=acme)
    assert not_paused.status_code == 409
    assert not_paused.json()["detail"] == "the order is not paused"
    final = await client.post(f"/api/orders/{order_id}/pause", headers=acme)
    assert final.json()["detail"] == "a SUCCESS order cannot be paused"


async def test_cancel_stores_its_reason_in_the_order_and_the_timeline(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    await put_flow(client, acme, two_steps(https_receiver))
    order_id = await create(client, acme, start=False)

    cancelled = await client.post(
        f"/api/orders/{order_id}/cancel", json={"reason": "customer withdrew"}, headers=acme
    )

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancelReason"] == "customer withdrew"
    [entry] = [e for e in await events(client, acme, order_id) if e["type"] == "order.cancelled"]
    assert entry["data"] == {"reason": "customer withdrew"}
    assert entry["actor"] == f"api-key:{bearer_prefix(acme)}… (test)"
    unknown = await client.post(
        f"/api/orders/{order_id}/cancel", json={"reason": "x", "why": 1}, headers=acme
    )
    assert unknown.status_code == 400


async def test_skipping_a_failed_task_runs_its_successor_and_the_order_succeeds(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/book", Reply(status=422))
    https_receiver.script("/second", Reply(status=201))
    await put_flow(client, acme, two_steps(https_receiver))
    order_id = await create(client, acme)
    failed = await wait_for_status(client, acme, order_id, "FAILURE", "SUCCESS")
    assert failed["status"] == "FAILURE"
    running = await client.post(f"/api/orders/{order_id}/tasks/notify/skip", headers=acme)
    assert running.status_code == 404

    skipped = await client.post(
        f"/api/orders/{order_id}/tasks/book/skip",
        json={"reason": "booked by phone", "result": {"erpId": "E-17"}},
        headers=acme,
    )

    assert skipped.status_code == 200, skipped.text
    book = next(t for t in skipped.json()["tasks"] if t["key"] == "book")
    assert book["status"] == "SUCCEEDED"
    assert book["result"] == {"erpId": "E-17", "skipped": True}
    done = await wait_for_status(client, acme, order_id, "SUCCESS", "FAILURE")
    assert done["status"] == "SUCCESS"
    [entry] = [e for e in await events(client, acme, order_id) if e["type"] == "task.skipped"]
    assert (entry["taskKey"], entry["data"]) == ("book", {"reason": "booked by phone"})
    assert entry["actor"] == f"api-key:{bearer_prefix(acme)}… (test)"
    twice = await client.post(f"/api/orders/{order_id}/tasks/book/skip", headers=acme)
    assert twice.status_code == 409
    assert "SUCCESS order cannot be skipped" in twice.json()["detail"]


async def test_restart_on_the_latest_version_sends_to_the_fixed_url_and_keeps_both_versions(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/book", Reply(status=201))
    https_receiver.script("/wrong", Reply(status=404))
    https_receiver.script("/second", Reply(status=201))
    assert await put_flow(client, acme, two_steps(https_receiver, "/wrong")) == 1
    order_id = await create(client, acme)
    failed = await wait_for_status(client, acme, order_id, "FAILURE", "SUCCESS")
    assert failed["status"] == "FAILURE"
    in_progress = await client.post(f"/api/orders/{order_id}/retry", headers=acme)
    assert in_progress.status_code == 200
    await wait_for_status(client, acme, order_id, "FAILURE")
    assert await put_flow(client, acme, two_steps(https_receiver, "/second")) == 2

    restarted = await client.post(
        f"/api/orders/{order_id}/restart",
        json={"flowVersion": "latest", "from": "failed", "reason": "URL fixed"},
        headers=acme,
    )

    assert restarted.status_code == 200, restarted.text
    view = restarted.json()
    assert view["flowVersion"] == 2
    [restart] = view["restarts"]
    assert (restart["fromVersion"], restart["toVersion"], restart["from"]) == (1, 2, "failed")
    assert restart["reason"] == "URL fixed"
    done = await wait_for_status(client, acme, order_id, "SUCCESS", "FAILURE")
    assert done["status"] == "SUCCESS"
    statuses = {t["key"]: t["status"] for t in done["tasks"]}
    assert statuses == {"book": "SUCCEEDED", "notify": "SUCCEEDED", "notify~1": "FAILED"}
    assert len(requests_to(https_receiver, "/book")) == 1  # kept, not sent again
    assert len(requests_to(https_receiver, "/second")) == 1
    attempts = await client.get(f"/api/orders/{order_id}/tasks/notify~1/attempts", headers=acme)
    assert [a["statusCode"] for a in attempts.json()["items"]] == [404, 404]
    [entry] = [e for e in await events(client, acme, order_id) if e["type"] == "order.restarted"]
    assert entry["data"]["kept"] == ["book"]
    assert entry["actor"] == f"api-key:{bearer_prefix(acme)}… (test)"
    refused = await client.post(f"/api/orders/{order_id}/restart", headers=acme)
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "a SUCCESS order cannot be restarted; only FAILURE, UNHEALTHY or CANCELLED ones"
    )


async def test_restart_refuses_a_version_that_cannot_hold_the_history_and_unknown_versions(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/book", Reply(status=201))
    https_receiver.script("/second", Reply(status=422))
    await put_flow(client, acme, two_steps(https_receiver))
    order_id = await create(client, acme)
    await wait_for_status(client, acme, order_id, "FAILURE")
    # version 2 makes "book" a wait: its result came from another kind of task
    changed = two_steps(https_receiver)
    changed["stages"][0]["taskDefinitions"][0] = {
        "key": "book",
        "handlerKey": "wait",
        "payload": {"durationMs": 1},
        "next": ["notify"],
    }
    assert await put_flow(client, acme, changed) == 2

    refused = await client.post(f"/api/orders/{order_id}/restart", json={}, headers=acme)
    unknown = await client.post(
        f"/api/orders/{order_id}/restart", json={"flowVersion": 9}, headers=acme
    )
    from_start = await client.post(
        f"/api/orders/{order_id}/restart", json={"from": "start"}, headers=acme
    )

    assert refused.status_code == 409
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert "cannot hold the order's history: task 'book'" in refused.json()["detail"]
    assert unknown.status_code == 404
    assert from_start.status_code == 200, from_start.text
    assert from_start.json()["flowVersion"] == 2
    keys = sorted(t["key"] for t in from_start.json()["tasks"])
    assert keys == ["book", "book~1", "notify~1"]


@pytest.mark.parametrize("action", ["pause", "resume", "restart", "tasks/book/skip"])
async def test_actions_on_an_unknown_order_are_404_problems(
    client: httpx2.AsyncClient, acme: dict[str, str], action: str
) -> None:
    answer = await client.post(f"/api/orders/ord_nope/{action}", headers=acme)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == PROBLEM_JSON


async def test_a_timer_that_falls_due_while_paused_fires_on_resume(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    flow = staged_flow(
        "made-to-order",
        "Cure and wait",
        stage_doc(
            "make",
            ["cure"],
            [{"key": "cure", "handlerKey": "wait", "payload": {"durationMs": 1500}, "next": []}],
        ),
    )
    await put_flow(client, acme, flow)
    order_id = await create(client, acme, start=False)
    await client.post(f"/api/orders/{order_id}/pause", json={"reason": "hold"}, headers=acme)
    started = await client.post(f"/api/orders/{order_id}/start", headers=acme)
    assert started.json()["tasks"][0]["dueAt"] is None
    await client.post(f"/api/orders/{order_id}/resume", headers=acme)
    for _ in range(200):  # 10 s at most: the wait runs and its timer is set
        order = (await client.get(f"/api/orders/{order_id}", headers=acme)).json()
        if order["tasks"][0]["status"] == "WAITING":
            break
        await asyncio.sleep(0.05)
    assert order["tasks"][0]["status"] == "WAITING"

    held = await client.post(f"/api/orders/{order_id}/pause", headers=acme)
    assert held.status_code == 200, held.text  # paused well before the 1.5 s timer is due
    await asyncio.sleep(1.8)  # the timer falls due meanwhile

    assert held.json()["tasks"][0]["dueAt"] is None
    still = (await client.get(f"/api/orders/{order_id}", headers=acme)).json()
    assert (still["status"], still["tasks"][0]["status"]) == ("IN_PROGRESS", "WAITING")
    resumed = await client.post(f"/api/orders/{order_id}/resume", headers=acme)
    # Its due time is back, already past: a worker's timer round may fire it between the
    # resume's commit and the read that answers it.
    task = resumed.json()["tasks"][0]
    assert (task["status"], task["dueAt"] is not None) in {("WAITING", True), ("SUCCEEDED", False)}
    done = await wait_for_status(client, acme, order_id, "SUCCESS", "FAILURE", timeout=10)
    assert done["status"] == "SUCCESS"


async def test_explain_names_the_feedback_waited_for_its_last_progress_and_the_pause(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/orders", Reply(status=202))
    flow = flow_doc(https_receiver.url("/orders"), sends_feedback=True, timeoutDuration=60_000)
    flow["stages"][0]["taskDefinitions"][0]["payload"]["heartbeatTimeoutDuration"] = 600_000
    await client.post("/api/flows", json=flow, headers=acme)
    order_id = await create(client, acme)
    [request] = await wait_for_requests(https_receiver, 1, path="/orders")
    path = urlsplit(request.json()["order"]["updateUrl"]).path
    for _ in range(200):  # 10 s at most
        order = (await client.get(f"/api/orders/{order_id}", headers=acme)).json()
        if order["tasks"][0]["status"] == "WAITING":
            break
        await asyncio.sleep(0.05)
    progress = await client.post(path, json={"status": "progress", "message": "in production"})
    assert progress.status_code == 200

    explained = await client.get(f"/api/orders/{order_id}/explain", headers=acme)

    assert explained.status_code == 200, explained.text
    answer = explained.json()
    [wait] = answer["tasks"]
    assert (wait["taskKey"], wait["status"], wait["waitsFor"]) == ("task-1", "WAITING", "feedback")
    assert wait["detail"]["lastProgress"] == "in production"
    assert wait["until"] is not None
    assert answer["sentence"].startswith("Waiting ")
    assert "for the connector's feedback on task-1" in answer["sentence"]
    assert "the deadline of line 1 passed" in answer["sentence"]  # 2026-10-01
    assert answer["deadlineLine"] == 1
    assert answer["criticalPath"] == ["task-1"]
    assert answer["missesDeadline"] is True

    await client.post(f"/api/orders/{order_id}/pause", json={"reason": "hold"}, headers=acme)
    paused = (await client.get(f"/api/orders/{order_id}/explain", headers=acme)).json()
    assert paused["sentence"].startswith("Paused for ")
    assert "(hold)" in paused["sentence"]
    # a heartbeat while paused pushes the held timeout on, not a live due time
    await client.post(path, json={"status": "progress", "message": "still here"})
    later = (await client.get(f"/api/orders/{order_id}/explain", headers=acme)).json()
    assert later["tasks"][0]["until"] > paused["tasks"][0]["until"]
    assert (await client.get(f"/api/orders/{order_id}", headers=acme)).json()["tasks"][0][
        "dueAt"
    ] is None
    unknown = await client.get("/api/orders/ord_nope/explain", headers=acme)
    assert unknown.status_code == 404


async def test_bulk_pause_resume_cancel_and_restart_count_first_then_act(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/book", Reply(status=201))
    https_receiver.script("/wrong", Reply(status=404))
    https_receiver.script("/second", Reply(status=201))
    await put_flow(client, acme, two_steps(https_receiver, "/wrong"))
    waiting = [await create(client, acme, f"WEB-C{n}", start=False) for n in range(3)]
    failed = [await create(client, acme, f"WEB-F{n}") for n in range(2)]
    for order_id in failed:
        await wait_for_status(client, acme, order_id, "FAILURE")

    counted = await client.post("/api/orders/pause", json={"dryRun": True}, headers=acme)
    assert counted.status_code == 200, counted.text
    assert counted.json() == {
        "action": "pause",
        "dryRun": True,
        "matched": 3,
        "changed": sorted(waiting, reverse=True),
        "skipped": 0,
    }
    views = [(await client.get(f"/api/orders/{o}", headers=acme)).json() for o in waiting]
    assert [view["paused"] for view in views] == [False, False, False]
    paused = await client.post("/api/orders/pause", json={"reason": "stocktake"}, headers=acme)
    assert len(paused.json()["changed"]) == 3
    again = await client.post("/api/orders/pause", json={"dryRun": True}, headers=acme)
    assert (again.json()["changed"], again.json()["skipped"]) == ([], 3)
    resumed = await client.post("/api/orders/resume", json={}, headers=acme)
    assert len(resumed.json()["changed"]) == 3

    retry_count = await client.post("/api/orders/retry", json={"dryRun": True}, headers=acme)
    assert retry_count.json()["dryRun"] is True
    assert sorted(retry_count.json()["retried"]) == sorted(failed)
    # The list's search narrows a bulk action as it narrows the list.
    searched = await client.post(
        "/api/orders/retry", json={"dryRun": True, "q": "web-f1"}, headers=acme
    )
    assert searched.json()["retried"] == [failed[1]]
    searched = await client.post(
        "/api/orders/pause", json={"dryRun": True, "q": "WEB-C0"}, headers=acme
    )
    assert searched.json()["changed"] == [waiting[0]]
    for order_id in failed:
        view = (await client.get(f"/api/orders/{order_id}", headers=acme)).json()
        assert view["status"] == "FAILURE"
    await put_flow(client, acme, two_steps(https_receiver, "/second"))
    restart_count = await client.post("/api/orders/restart", json={"dryRun": True}, headers=acme)
    assert sorted(restart_count.json()["changed"]) == sorted(failed)
    restarted = await client.post(
        "/api/orders/restart", json={"flowVersion": "latest", "reason": "URL fixed"}, headers=acme
    )
    assert sorted(restarted.json()["changed"]) == sorted(failed)
    for order_id in failed:
        done = await wait_for_status(client, acme, order_id, "SUCCESS", "FAILURE")
        assert (done["status"], done["flowVersion"]) == ("SUCCESS", 2)

    cancel = await client.post(
        "/api/orders/cancel", json={"status": ["CREATED"], "reason": "closing"}, headers=acme
    )
    assert sorted(cancel.json()["changed"]) == sorted(waiting)
    view = (await client.get(f"/api/orders/{waiting[0]}", headers=acme)).json()
    assert (view["status"], view["cancelReason"]) == ("CANCELLED", "closing")
    bad = await client.post("/api/orders/cancel", json={"status": ["LOST"]}, headers=acme)
    assert bad.status_code == 400
