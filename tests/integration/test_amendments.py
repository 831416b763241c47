"""Amending an order: PATCH /api/orders/{id} through the API, the engine and a real https
receiver (signatures checked with standardwebhooks), on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
from fastapi import FastAPI

from tests.integration.conftest import (
    order_doc,
    sign_in_owner,
    wait_for_requests,
    wait_for_status,
)
from tests.integration.test_delivery import verifies
from tests.support.receiver import HttpsReceiver, Reply


def amend_flow(receiver: HttpsReceiver) -> dict[str, Any]:
    """book (resent on amendment) → ship (waits for feedback, so the order stays open)."""
    return {
        "key": "made-to-order",
        "name": "Made to order (EU)",
        "stages": [
            {
                "key": "stage-1",
                "initialTaskDefinitionKeys": ["book"],
                "taskDefinitions": [
                    {
                        "key": "book",
                        "handlerKey": "consume-rest-api",
                        "payload": {"uri": receiver.url("/book"), "sendsFeedback": False},
                        "onAmend": "resend",
                        "next": ["ship"],
                    },
                    {
                        "key": "ship",
                        "handlerKey": "consume-rest-api",
                        "payload": {"uri": receiver.url("/ship"), "sendsFeedback": True},
                        "timeoutDuration": 60000,
                    },
                ],
            }
        ],
    }


async def started(
    client: httpx2.AsyncClient, headers: dict[str, str], receiver: HttpsReceiver, tpid: str
) -> str:
    saved = await client.put("/api/flows/made-to-order", json=amend_flow(receiver), headers=headers)
    assert saved.status_code in (200, 201), saved.text
    created = await client.post("/api/orders", json=order_doc(tpid), headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["revision"] == 1
    order_id: str = created.json()["id"]
    await wait_for_requests(receiver, 1, path="/ship")
    return order_id


async def test_an_amendment_resends_a_succeeded_task_with_the_new_content(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    secret = (await client.get("/api/spaces/acme/signing-secret", headers=acme)).json()["current"]
    order_id = await started(client, acme, https_receiver, "AM-1")
    patch = {
        "data": {"customerEmail": "jo@example.org", "giftNote": "Happy birthday"},
        "reason": "customer called",
    }
    answer = await client.patch(
        f"/api/orders/{order_id}",
        json=patch,
        headers={**acme, "If-Match": '"1"', "Content-Type": "application/merge-patch+json"},
    )
    assert answer.status_code == 200, answer.text
    amended = answer.json()
    assert amended["revision"] == 2
    assert answer.headers["etag"] == '"2"'
    assert amended["data"]["customerEmail"] == "jo@example.org"
    assert amended["data"]["nested"] == {"kept": ["verbatim", 1]}  # merged, not replaced

    requests = await wait_for_requests(https_receiver, 2, path="/book")
    first, again = requests[0].json(), requests[1].json()
    assert verifies(secret, requests[1])
    assert "amendment" not in first["context"]
    assert again["context"]["amendment"] == {
        "revision": 2,
        "changed": ["/data/customerEmail", "/data/giftNote"],
    }
    assert again["order"]["data"]["giftNote"] == "Happy birthday"
    assert set(again["order"]) == set(first["order"])

    events = (await client.get(f"/api/orders/{order_id}/events", headers=acme)).json()
    items = events["items"] if isinstance(events, dict) else events
    (entry,) = [e for e in items if e["type"] == "order.amended"]
    assert entry["data"]["reason"] == "customer called"
    assert entry["data"]["revision"] == 2
    assert entry["data"]["resend"] == ["book"]
    assert {"pointer": "/data/customerEmail", "old": "jo@example.com", "new": "jo@example.org"} in (
        entry["data"]["diff"]
    )
    assert entry["actor"]

    # The same patch on the same revision again changes nothing.
    repeat = await client.patch(
        f"/api/orders/{order_id}", json={**patch, "revision": 1}, headers=acme
    )
    assert repeat.status_code == 200
    assert repeat.json()["revision"] == 2
    # Another patch on that old revision is refused.
    stale = await client.patch(
        f"/api/orders/{order_id}", json={"data": {"x": 1}, "revision": 1}, headers=acme
    )
    assert stale.status_code == 409
    await asyncio.sleep(0.3)
    assert len([r for r in https_receiver.requests if r.path == "/book"]) == 2


async def test_fixed_fields_are_refused_and_a_finished_order_cannot_be_amended(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    order_id = await started(client, acme, https_receiver, "AM-2")
    refused = await client.patch(
        f"/api/orders/{order_id}",
        json={"spaceKey": "other", "thirdPartyOrderId": "X", "flowKey": "f", "status": "x"},
        headers=acme,
    )
    assert refused.status_code == 400
    pointers = {p["pointer"] for p in refused.json()["problems"]}
    assert pointers == {"/spaceKey", "/thirdPartyOrderId", "/flowKey", "/status"}
    invalid = await client.patch(
        f"/api/orders/{order_id}",
        json={"orderLines": [{"orderId": "L", "amountOfUnits": -1}]},
        headers=acme,
    )
    assert invalid.status_code == 400
    assert any(p["pointer"].startswith("/orderLines/0") for p in invalid.json()["problems"])

    cancelled = await client.post(f"/api/orders/{order_id}/cancel", headers=acme)
    assert cancelled.status_code == 200
    late = await client.patch(f"/api/orders/{order_id}", json={"data": {"a": 1}}, headers=acme)
    assert late.status_code == 409
    assert (await client.get(f"/api/orders/{order_id}", headers=acme)).json()["revision"] == 1


async def test_concurrent_amendments_each_make_a_revision(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/ship", Reply(201))
    order_id = await started(client, acme, https_receiver, "AM-3")
    answers = await asyncio.gather(
        *(
            client.patch(f"/api/orders/{order_id}", json={"data": {f"k{i}": i}}, headers=acme)
            for i in range(4)
        )
    )
    assert all(a.status_code == 200 for a in answers)
    final = await wait_for_status(client, acme, order_id, "IN_PROGRESS")
    assert final["revision"] == 5
    assert {f"k{i}" for i in range(4)} <= set(final["data"])
    events = (await client.get(f"/api/orders/{order_id}/events", headers=acme)).json()
    items = events["items"] if isinstance(events, dict) else events
    revisions = [e["data"]["revision"] for e in items if e["type"] == "order.amended"]
    assert sorted(revisions) == [2, 3, 4, 5]


async def test_the_order_page_shows_revisions_and_their_diffs(
    app: FastAPI,
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
) -> None:
    order_id = await started(client, acme, https_receiver, "AM-4")
    patch = {"data": {"customerEmail": "new@example.org"}, "reason": "typo in e-mail"}
    assert (await client.patch(f"/api/orders/{order_id}", json=patch, headers=acme)).is_success
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as browser:
        await sign_in_owner(app.state.service, browser)
        page = (await browser.get(f"/orders/{order_id}")).text
    assert "revision 2" in page
    assert "Revision 2" in page
    assert "typo in e-mail" in page
    assert "/data/customerEmail" in page
    assert "new@example.org" in page


async def test_subscriptions_hear_of_an_amendment(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    secret = (await client.get("/api/spaces/acme/signing-secret", headers=acme)).json()["current"]
    subscribed = await client.post(
        "/api/spaces/acme/subscriptions",
        json={"uri": https_receiver.url("/events"), "events": ["order.amended"]},
        headers=acme,
    )
    assert subscribed.status_code == 201
    order_id = await started(client, acme, https_receiver, "AM-5")
    patch = {"data": {"giftNote": "Hi"}}
    assert (await client.patch(f"/api/orders/{order_id}", json=patch, headers=acme)).is_success
    (request,) = await wait_for_requests(https_receiver, 1, path="/events")
    assert verifies(secret, request)
    body = request.json()
    assert body["event"]["type"] == "order.amended"
    assert body["event"]["revision"] == 2
    assert body["event"]["changed"] == ["/data/giftNote"]
    assert body["order"]["data"]["giftNote"] == "Hi"
