"""Connector delivery: signing and rotation, retries, the network guard, redelivery, bulkheads."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ordermill.service import Service
from ordermill.storage import tables
from tests.integration.conftest import flow_doc, order_doc, wait_for_status
from tests.support.receiver import HttpsReceiver, ReceivedRequest, Reply

FAST_RETRY = {
    "maxAttempts": 5,
    "initialIntervalMs": 50,
    "backoffCoefficient": 1.0,
    "maxIntervalMs": 100,
}


def verifies(secret: str, request: ReceivedRequest) -> bool:
    try:
        Webhook(secret).verify(request.body, request.headers, json_parse=False)
    except WebhookVerificationError:
        return False
    return True


async def run_order(
    client: httpx2.AsyncClient,
    headers: dict[str, str],
    flow: dict[str, Any],
    tpid: str,
    *statuses: str,
) -> dict[str, Any]:
    response = await client.put(f"/api/flows/{flow['key']}", json=flow, headers=headers)
    assert response.status_code in (200, 201), response.text
    response = await client.post(
        "/api/orders", json=order_doc(tpid, flow_key=flow["key"]), headers=headers
    )
    assert response.status_code == 201, response.text
    return await wait_for_status(client, headers, response.json()["id"], *statuses)


async def task_reaches(
    client: httpx2.AsyncClient, headers: dict[str, str], order_id: str, status: str
) -> dict[str, Any]:
    for _ in range(400):
        task: dict[str, Any] = (
            await client.get(f"/api/orders/{order_id}", headers=headers)
        ).json()["tasks"][0]
        if task["status"] == status:
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"the task never reached {status}; last seen {task}")


async def test_every_request_verifies_with_the_spaces_secret(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    secret = (await client.get("/api/spaces/acme/signing-secret", headers=acme)).json()["current"]
    assert secret.startswith("whsec_")

    order = await run_order(
        client, acme, flow_doc(https_receiver.url("/o")), "S-1", "SUCCESS", "FAILURE"
    )

    assert order["status"] == "SUCCESS"
    (request,) = https_receiver.requests
    assert verifies(secret, request)
    assert request.headers["webhook-id"] == request.json()["context"]["deliveryId"]
    assert not verifies("whsec_" + "A" * 43, request)


async def test_during_a_rotation_old_and_new_secrets_both_verify_and_afterwards_only_the_new(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
    service: Service,
) -> None:
    old = (await client.get("/api/spaces/acme/signing-secret", headers=acme)).json()["current"]
    rotated = (await client.post("/api/spaces/acme/signing-secret/rotate", headers=acme)).json()
    new = rotated["current"]
    assert new != old
    await run_order(client, acme, flow_doc(https_receiver.url("/o")), "S-2", "SUCCESS")
    during = https_receiver.requests[-1]
    assert verifies(old, during)
    assert verifies(new, during)

    # Let the overlap pass: the previous secret's expiry moves into the past.
    async with service.db.transaction() as conn:
        await conn.execute(
            update(tables.signing_secrets)
            .where(tables.signing_secrets.c.expires_at.is_not(None))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    service.store.spaces._delivery.clear()
    newest = (await client.get("/api/spaces/acme/signing-secret", headers=acme)).json()
    assert newest["all"] == [new]
    await run_order(client, acme, flow_doc(https_receiver.url("/o")), "S-3", "SUCCESS")
    after = https_receiver.requests[-1]
    assert verifies(new, after)
    assert not verifies(old, after)


async def test_retries_resend_identical_bytes_with_fresh_timestamps(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/o", [Reply(500), Reply(500), Reply(201)])
    flow = flow_doc(
        https_receiver.url("/o"),
        retry={**FAST_RETRY, "initialIntervalMs": 2100, "maxIntervalMs": 2100},
    )

    order = await run_order(client, acme, flow, "S-4", "SUCCESS", "FAILURE")

    assert order["status"] == "SUCCESS"
    requests = https_receiver.requests
    assert len(requests) == 3
    assert len({r.body for r in requests}) == 1
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    assert len({r.headers["webhook-timestamp"] for r in requests}) == 3
    assert [r.headers["ordermill-attempt"] for r in requests] == ["1", "2", "3"]


async def test_retry_after_is_honoured(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/o", [Reply(429, headers={"Retry-After": "2"}), Reply(201)])
    flow = flow_doc(https_receiver.url("/o"), retry={**FAST_RETRY, "maxIntervalMs": 10_000})

    await run_order(client, acme, flow, "S-5", "SUCCESS")

    first, second = https_receiver.requests
    assert second.received_at - first.received_at >= 2.0


async def test_redirects_are_not_followed(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    https_receiver.script(
        "/o", [Reply(302, headers={"Location": https_receiver.url("/elsewhere")})]
    )

    order = await run_order(client, acme, flow_doc(https_receiver.url("/o")), "S-6", "FAILURE")

    assert [r.path for r in https_receiver.requests] == ["/o"]
    assert "redirect" in order["tasks"][0]["error"]["message"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_loopback_targets_are_refused_without_a_single_packet(
    client: httpx2.AsyncClient, make_space: Any, https_receiver: HttpsReceiver, host: str
) -> None:
    headers = await make_space("closed")
    uri = f"https://{host}:{https_receiver.port}/o"
    flow = flow_doc(uri)
    assert (
        await client.post("/api/flows", json={**flow, "spaceKey": "closed"}, headers=headers)
    ).status_code == 201
    body = {**order_doc("S-7"), "spaceKey": "closed"}
    order_id = (await client.post("/api/orders", json=body, headers=headers)).json()["id"]

    order = await wait_for_status(client, headers, order_id, "FAILURE")

    message = order["tasks"][0]["error"]["message"]
    assert "loopback" in message
    assert "ORDERMILL_CONNECTOR_ALLOW_NETWORKS" in message
    assert https_receiver.requests == []


async def test_feedback_may_be_signed_and_a_space_can_require_it(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    secret = (await client.get("/api/spaces/acme/signing-secret", headers=acme)).json()["current"]
    response = await client.put(
        "/api/spaces/acme/feedback-signature", json={"requireFeedbackSignature": True}, headers=acme
    )
    assert response.json()["requireFeedbackSignature"] is True
    flow = flow_doc(https_receiver.url("/o"), sends_feedback=True, timeoutDuration=60_000)
    await client.post("/api/flows", json=flow, headers=acme)
    order_id = (await client.post("/api/orders", json=order_doc("S-8"), headers=acme)).json()["id"]
    (request,) = await asyncio.to_thread(https_receiver.wait_for, 1, 20)
    path = urlsplit(request.json()["order"]["updateUrl"]).path
    raw = json.dumps({"status": "success"}).encode()

    unsigned = await client.post(path, content=raw, headers={"content-type": "application/json"})
    now = datetime.now(UTC)
    forged = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook("whsec_" + "B" * 43).sign("msg_1", now, raw.decode()),
    }
    wrong = await client.post(
        path, content=raw, headers={"content-type": "application/json", **forged}
    )
    signed_headers = {
        **forged,
        "webhook-signature": Webhook(secret).sign("msg_1", now, raw.decode()),
    }
    signed = await client.post(
        path, content=raw, headers={"content-type": "application/json", **signed_headers}
    )

    assert (unsigned.status_code, wrong.status_code, signed.status_code) == (401, 401, 200)
    assert unsigned.headers["content-type"] == "application/problem+json"
    assert (await wait_for_status(client, acme, order_id, "SUCCESS"))["status"] == "SUCCESS"


async def test_progress_feedback_extends_the_wait_and_failure_keeps_its_problem(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    flow = flow_doc(https_receiver.url("/o"), sends_feedback=True, timeoutDuration=60_000)
    flow["stages"][0]["taskDefinitions"][0]["payload"]["heartbeatTimeoutDuration"] = 120_000
    await client.post("/api/flows", json=flow, headers=acme)
    order_id = (await client.post("/api/orders", json=order_doc("S-9"), headers=acme)).json()["id"]
    (request,) = await asyncio.to_thread(https_receiver.wait_for, 1, 20)
    path = urlsplit(request.json()["order"]["updateUrl"]).path
    before = await task_reaches(client, acme, order_id, "WAITING")

    progress = await client.post(path, json={"status": "progress", "message": "slicing 40%"})
    after = (await client.get(f"/api/orders/{order_id}", headers=acme)).json()["tasks"][0]
    problem = {"type": "about:blank", "title": "Unprintable", "detail": "wall too thin"}
    failure = await client.post(path, json={"status": "failure", "problem": problem})

    assert progress.status_code == 200
    assert before["status"] == after["status"] == "WAITING"
    assert after["dueAt"] > before["dueAt"]
    assert failure.status_code == 200
    order = await wait_for_status(client, acme, order_id, "FAILURE")
    assert order["tasks"][0]["error"]["problem"] == problem
    assert order["tasks"][0]["error"]["message"] == "wall too thin"
    events = (await client.get(f"/api/orders/{order_id}/events", headers=acme)).json()["items"]
    assert any(
        e["type"] == "feedback.progress" and e["data"]["message"] == "slicing 40%" for e in events
    )


async def test_redeliver_sends_again_under_the_same_delivery_id(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    order = await run_order(client, acme, flow_doc(https_receiver.url("/o")), "S-10", "SUCCESS")

    response = await client.post(f"/api/orders/{order['id']}/tasks/task-1/redeliver", headers=acme)

    assert response.status_code == 200, response.text
    await asyncio.to_thread(https_receiver.wait_for, 2, 20)
    again = await wait_for_status(client, acme, order["id"], "SUCCESS")
    first, second = https_receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert again["tasks"][0]["attempts"] == 2
    events = (await client.get(f"/api/orders/{order['id']}/events", headers=acme)).json()["items"]
    assert any(e["type"] == "task.redelivery_requested" and e["actor"] for e in events)


async def test_a_running_task_cannot_be_redelivered(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    flow = flow_doc(https_receiver.url("/o"), sends_feedback=True, timeoutDuration=60_000)
    await client.post("/api/flows", json=flow, headers=acme)
    order_id = (await client.post("/api/orders", json=order_doc("S-11"), headers=acme)).json()["id"]
    await asyncio.to_thread(https_receiver.wait_for, 1, 20)

    response = await client.post(f"/api/orders/{order_id}/tasks/task-1/redeliver", headers=acme)

    assert response.status_code == 409
    assert "has not ended" in response.json()["detail"]


async def test_bulk_retry_recovers_orders_after_a_connector_outage(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/o", [Reply(400), Reply(400), Reply(400), Reply(201)])
    flow = flow_doc(https_receiver.url("/o"))
    await client.post("/api/flows", json=flow, headers=acme)
    ids = []
    for n in range(3):
        response = await client.post("/api/orders", json=order_doc(f"B-{n}"), headers=acme)
        ids.append(response.json()["id"])
        await wait_for_status(client, acme, ids[-1], "FAILURE")

    response = await client.post(
        "/api/orders/retry", json={"flowKey": "made-to-order"}, headers=acme
    )

    assert response.status_code == 200, response.text
    assert sorted(response.json()["retried"]) == sorted(ids)
    for order_id in ids:
        assert (await wait_for_status(client, acme, order_id, "SUCCESS"))["status"] == "SUCCESS"


async def test_a_slow_connector_at_its_bulkhead_does_not_hold_up_a_fast_one(
    make_settings: Any, https_receiver: HttpsReceiver
) -> None:
    """4 worker slots, 2 per host: 6 orders queued on a slow host leave the fast host's free."""
    from ordermill.api.app import create_app

    settings = make_settings(
        connector_ca_file=https_receiver.ca_pem_path, connector_max_per_host=2, worker_concurrency=4
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            admin = {"Authorization": "Bearer admin-test-key"}
            await client.post(
                "/api/spaces",
                json={"key": "acme", "connectorAllowNetworks": ["127.0.0.1/32", "::1/128"]},
                headers=admin,
            )
            https_receiver.script("/slow", [Reply(201, delay=3.0)])
            slow = flow_doc(
                f"https://localhost:{https_receiver.port}/slow", key="slow", timeoutDuration=20_000
            )
            fast = flow_doc(https_receiver.url("/fast"), key="fast")
            for flow in (slow, fast):
                response = await client.post(
                    "/api/flows", json={**flow, "spaceKey": "acme"}, headers=admin
                )
                assert response.status_code == 201, response.text
            for n in range(6):
                await client.post(
                    "/api/orders", json=order_doc(f"SLOW-{n}", flow_key="slow"), headers=admin
                )
            fast_ids = []
            for n in range(5):
                response = await client.post(
                    "/api/orders", json=order_doc(f"FAST-{n}", flow_key="fast"), headers=admin
                )
                fast_ids.append(response.json()["id"])
            for order_id in fast_ids:
                await wait_for_status(client, admin, order_id, "SUCCESS", timeout=30)
            listing = (
                await client.get(
                    "/api/orders",
                    params={"spaceKey": "acme", "flowKey": "slow", "status": "SUCCESS"},
                    headers=admin,
                )
            ).json()["items"]
            # Slow orders finish two at a time, three seconds apart; the fast ones did not wait.
            assert len(listing) <= 2


async def test_assets_sent_back_in_feedback_reach_the_next_connector_as_new_versions(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    flow = flow_doc(
        https_receiver.url("/slicer"), key="two-step", sends_feedback=True, timeoutDuration=60_000
    )
    flow["stages"].append(
        {
            "key": "stage-2",
            "initialTaskDefinitionKeys": ["erp"],
            "taskDefinitions": [
                {
                    "key": "erp",
                    "handlerKey": "consume-rest-api",
                    "payload": {"uri": https_receiver.url("/erp")},
                    "next": [],
                }
            ],
        }
    )
    await client.post("/api/flows", json=flow, headers=acme)
    order_id = (
        await client.post("/api/orders", json=order_doc("S-12", flow_key="two-step"), headers=acme)
    ).json()["id"]
    (request,) = await asyncio.to_thread(https_receiver.wait_for, 1, 20)
    path = urlsplit(request.json()["order"]["updateUrl"]).path
    sliced = {"itemId": "item-1", "id": "model", "url": "https://cdn.example.com/b-sliced.gcode"}

    response = await client.post(path, json={"status": "success", "assets": [sliced]})

    assert response.status_code == 200, response.text
    await wait_for_status(client, acme, order_id, "SUCCESS")
    erp = next(r for r in https_receiver.requests if r.path == "/erp")
    item = erp.json()["order"]["orderLines"][0]["items"][0]
    (model,) = [asset for asset in item["assets"] if asset["id"] == "model"]
    assert [v["url"] for v in model["versions"]] == [
        "https://cdn.example.com/b.stl",
        "https://cdn.example.com/b-sliced.gcode",
    ]
    assert model["url"] == "https://cdn.example.com/b-sliced.gcode"


async def test_proxy_variables_in_the_environment_do_not_reroute_connectors(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proxy that does not exist would fail every delivery if the client honoured it."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")

    order = await run_order(
        client, acme, flow_doc(https_receiver.url("/o")), "S-13", "SUCCESS", "FAILURE"
    )

    assert order["status"] == "SUCCESS"
    assert len(https_receiver.requests) == 1
