"""Subscriptions: events of a space's orders delivered from the outbox to a real https receiver,
signed (checked with the standardwebhooks package), in order per order, under two workers."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx2
import pytest

from ordermill.flows.model import RetryPolicy
from ordermill.service import Service
from tests.integration.conftest import order_doc, wait_for_requests, wait_for_status
from tests.integration.handler_flows import chain, task
from tests.integration.test_delivery import verifies
from tests.support.receiver import HttpsReceiver, ReceivedRequest, Reply

FAST = RetryPolicy(
    max_attempts=3, initial_interval_ms=50, backoff_coefficient=1.0, max_interval_ms=50
)
SUBSCRIBED = ("order.created", "order.status", "task.failed", "order.amended")


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ordermill.engine.subscriptions.DELIVERY_RETRY", FAST)


async def subscribe(
    client: httpx2.AsyncClient, headers: dict[str, str], uri: str, **extra: Any
) -> dict[str, Any]:
    body = {"uri": uri, "events": list(SUBSCRIBED), **extra}
    answer = await client.post("/api/spaces/acme/subscriptions", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    made: dict[str, Any] = answer.json()
    return made


async def wait_flow(client: httpx2.AsyncClient, headers: dict[str, str]) -> None:
    flow = chain(task("a", "wait", {"durationMs": 0}), task("b", "wait", {"durationMs": 0}))
    answer = await client.put("/api/flows/made-to-order", json=flow, headers=headers)
    assert answer.status_code in (200, 201), answer.text


async def timeline(
    client: httpx2.AsyncClient, headers: dict[str, str], order_id: str
) -> list[dict[str, Any]]:
    events = (await client.get(f"/api/orders/{order_id}/events", headers=headers)).json()
    items: list[dict[str, Any]] = events["items"] if isinstance(events, dict) else events
    return [e for e in items if e["type"] in SUBSCRIBED]


async def settled_log(
    client: httpx2.AsyncClient, headers: dict[str, str], subscription_id: str
) -> list[dict[str, Any]]:
    """The delivery log once no event is pending (the receiver answers before the outcome is
    recorded); the last view after 20 s."""
    items: list[dict[str, Any]] = []
    for _ in range(400):
        answer = await client.get(
            f"/api/spaces/acme/subscriptions/{subscription_id}/deliveries", headers=headers
        )
        items = answer.json()["items"]
        if all(item["status"] != "PENDING" for item in items):
            break
        await asyncio.sleep(0.05)
    return items


def shape(event: dict[str, Any]) -> tuple[Any, ...]:
    return (event["type"], event.get("from"), event.get("to"), event.get("taskKey"))


def expected(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            e["type"],
            (e.get("data") or {}).get("from") if e["type"] == "order.status" else None,
            (e.get("data") or {}).get("to") if e["type"] == "order.status" else None,
            e.get("taskKey"),
        )
        for e in entries
    ]


async def test_each_event_of_an_order_arrives_signed_with_the_documented_body(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    secret = (await client.get("/api/spaces/acme/signing-secret", headers=acme)).json()["current"]
    await wait_flow(client, acme)
    made = await subscribe(client, acme, https_receiver.url("/events"))
    assert made["enabled"] is True
    assert made["flowKeys"] is None
    created = await client.post("/api/orders", json=order_doc("SUB-1"), headers=acme)
    order_id = created.json()["id"]
    await wait_for_status(client, acme, order_id, "SUCCESS")
    entries = await timeline(client, acme, order_id)
    received = await wait_for_requests(https_receiver, len(entries), path="/events")
    assert all(verifies(secret, request) for request in received)
    bodies = [request.json() for request in received]
    assert [shape(b["event"]) for b in bodies] == expected(entries)
    assert bodies[0]["event"]["type"] == "order.created"
    assert bodies[-1]["event"]["to"] == "SUCCESS"
    for request, body in zip(received, bodies, strict=True):
        assert body["order"]["updateUrl"] is None
        assert body["order"]["thirdPartyOrderId"] == "SUB-1"
        assert body["context"]["orderId"] == order_id
        assert body["context"]["subscriptionId"] == made["id"]
        assert request.headers["webhook-id"] == body["context"]["deliveryId"]
    items = await settled_log(client, acme, made["id"])
    assert {item["status"] for item in items} == {"DELIVERED"}
    assert all(item["statusCode"] == 201 for item in items)


async def test_flow_keys_and_event_types_filter_what_is_delivered(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    await wait_flow(client, acme)
    await subscribe(client, acme, https_receiver.url("/other"), flowKeys=["another-flow"])
    await subscribe(client, acme, https_receiver.url("/status"), events=["order.status"])
    created = await client.post("/api/orders", json=order_doc("SUB-2"), headers=acme)
    order_id = created.json()["id"]
    await wait_for_status(client, acme, order_id, "SUCCESS")
    statuses = [e for e in await timeline(client, acme, order_id) if e["type"] == "order.status"]
    received = await wait_for_requests(https_receiver, len(statuses), path="/status")
    assert {r.json()["event"]["type"] for r in received} == {"order.status"}
    await asyncio.sleep(0.3)
    assert not [r for r in https_receiver.requests if r.path == "/other"]


async def test_crud_validation_and_test_send(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    secret = (await client.get("/api/spaces/acme/signing-secret", headers=acme)).json()["current"]
    base = "/api/spaces/acme/subscriptions"
    bad = await client.post(
        base, json={"uri": "http://erp.example.com/x", "events": ["order.made"]}, headers=acme
    )
    assert bad.status_code == 400
    pointers = {p["pointer"] for p in bad.json()["problems"]}
    assert {"/uri", "/events/0"} <= pointers
    made = await subscribe(client, acme, https_receiver.url("/t"))
    listed = (await client.get(base, headers=acme)).json()["items"]
    assert [s["id"] for s in listed] == [made["id"]]
    patched = await client.patch(
        f"{base}/{made['id']}", json={"events": ["task.failed"]}, headers=acme
    )
    assert patched.json()["events"] == ["task.failed"]
    tested = await client.post(f"{base}/{made['id']}/test", headers=acme)
    assert tested.json()["delivered"] is True
    (request,) = await wait_for_requests(https_receiver, 1, path="/t")
    assert verifies(secret, request)
    assert request.json()["event"]["type"] == "subscription.test"
    assert (await client.delete(f"{base}/{made['id']}", headers=acme)).status_code == 204
    assert (await client.get(f"{base}/{made['id']}", headers=acme)).status_code == 404


async def test_a_failing_subscription_is_disabled_and_redelivers_everything_since_when_enabled(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    from ordermill.storage.subscriptions import DISABLE_AFTER

    await wait_flow(client, acme)
    https_receiver.script("/down", Reply(400))
    made = await subscribe(client, acme, https_receiver.url("/down"), events=["order.created"])
    base = f"/api/spaces/acme/subscriptions/{made['id']}"
    for index in range(DISABLE_AFTER + 2):
        await client.post("/api/orders", json=order_doc(f"DOWN-{index}"), headers=acme)
    view: dict[str, Any] = {}
    for _ in range(200):
        view = (await client.get(base, headers=acme)).json()
        if not view["enabled"]:
            break
        await asyncio.sleep(0.05)
    assert view["enabled"] is False
    # Deliveries already in flight when the budget ran out still end and count.
    assert view["failures"] >= DISABLE_AFTER
    assert view["disabledAt"] is not None
    # Every attempt the receiver saw ends as a counted failure (the last may still be recording).
    tried, failures = -1, -2
    for _ in range(200):
        tried = len([r for r in https_receiver.requests if r.path == "/down"])
        failures = (await client.get(base, headers=acme)).json()["failures"]
        if tried == failures:
            break
        await asyncio.sleep(0.05)
    assert tried == failures
    # Held while disabled: nothing more goes out.
    await client.post("/api/orders", json=order_doc("DOWN-held"), headers=acme)
    await asyncio.sleep(0.3)
    assert len([r for r in https_receiver.requests if r.path == "/down"]) == tried
    https_receiver.script("/down", Reply(201))
    enabled = await client.post(f"{base}/enable", json={"redeliver": True}, headers=acme)
    assert enabled.json()["enabled"] is True
    everything = DISABLE_AFTER + 3  # every order's event: given up on, or held
    received = await wait_for_requests(https_receiver, tried + everything, path="/down", timeout=30)
    ids = {r.json()["order"]["thirdPartyOrderId"] for r in received}
    assert ids == {f"DOWN-{i}" for i in range(DISABLE_AFTER + 2)} | {"DOWN-held"}
    log = await settled_log(client, acme, made["id"])
    assert {item["status"] for item in log} == {"DELIVERED"}


async def test_one_orders_events_arrive_in_order_under_two_workers_and_retries(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
    service: Service,
) -> None:
    tries: dict[str, int] = {}
    accepted: list[dict[str, Any]] = []
    lock = threading.Lock()

    def created_fails_twice(request: ReceivedRequest) -> Reply:
        """Each order's first event is refused twice: its later events must wait for it."""
        body = request.json()
        with lock:
            webhook_id = request.headers["webhook-id"]
            tries[webhook_id] = tries.get(webhook_id, 0) + 1
            if body["event"]["type"] == "order.created" and tries[webhook_id] <= 2:
                return Reply(503)
            accepted.append(body)
        return Reply(201)

    https_receiver.respond("/events", created_fails_twice)
    await wait_flow(client, acme)
    await subscribe(client, acme, https_receiver.url("/events"))
    second = service.worker()
    running = asyncio.create_task(second.run())
    try:
        ids = []
        for index in range(6):
            created = await client.post("/api/orders", json=order_doc(f"ORD-{index}"), headers=acme)
            ids.append(created.json()["id"])
        wanted = {}
        for order_id in ids:
            await wait_for_status(client, acme, order_id, "SUCCESS")
            wanted[order_id] = expected(await timeline(client, acme, order_id))
        total = sum(len(v) for v in wanted.values())
        await wait_for_requests(https_receiver, total + 2 * len(ids), path="/events", timeout=30)
    finally:
        second.stop()
        await running
    seen: dict[str, list[tuple[Any, ...]]] = {order_id: [] for order_id in ids}
    for body in accepted:
        seen[body["context"]["orderId"]].append(shape(body["event"]))
    assert seen == wanted


async def test_redelivery_after_enable_takes_give_ups_that_commit_out_of_order(
    make_settings: Any, admin: dict[str, str]
) -> None:
    """Attempts end concurrently: an earlier give-up may commit after a later one. Enabling with
    redelivery still takes both (the run of failures began at the earliest ending)."""
    from datetime import UTC, datetime, timedelta

    from ordermill.api.app import create_app
    from ordermill.storage.subscriptions import Delivered

    application = create_app(make_settings(), run_worker=False)
    async with application.router.lifespan_context(application):
        transport = httpx2.ASGITransport(app=application)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as http:
            await http.post("/api/spaces", json={"key": "acme"}, headers=admin)
            key = await http.post("/api/spaces/acme/api-keys", json={"name": "t"}, headers=admin)
            acme = {"Authorization": f"Bearer {key.json()['key']}"}
            await wait_flow(http, acme)
            made = await subscribe(http, acme, "https://127.0.0.1:9/down", events=["order.created"])
            for index in range(2):
                await http.post("/api/orders", json=order_doc(f"OOO-{index}"), headers=acme)
            store = application.state.service.store.subscriptions
            start = datetime.now(UTC)
            first, second = await store.claim("test", 10, 30.0, start)
            gave_up = Delivered(ok=False, body=b"{}", status_code=400)
            assert await store.finish(second, "test", gave_up, start + timedelta(seconds=2))
            assert await store.finish(first, "test", gave_up, start + timedelta(seconds=1))
            await store.enable("acme", made["id"], redeliver=True, now=start + timedelta(seconds=3))
            log = await store.deliveries("acme", made["id"])
    assert [item["status"] for item in log] == ["PENDING", "PENDING"]
