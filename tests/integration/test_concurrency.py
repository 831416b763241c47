"""Idempotent intake under concurrency, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading

import httpx2
from sqlalchemy import event

from ordermill.config import Settings
from ordermill.service import Service
from tests.integration.conftest import (
    flow_doc,
    held_by,
    order_doc,
    wait_for_requests,
    wait_for_status,
)
from tests.support.invariants import check_database, report
from tests.support.receiver import HttpsReceiver, Reply
from tests.support.statements import statements_sent


async def test_twenty_concurrent_posts_of_one_order_create_exactly_one(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    flow = flow_doc("https://erp.example.com/orders")
    assert (await client.post("/api/flows", json=flow, headers=acme)).status_code == 201
    body = {**order_doc("SAME-1"), "start": False}

    responses = await asyncio.gather(
        *(client.post("/api/orders", json=body, headers=acme) for _ in range(20))
    )

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 19 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    listing = await client.get("/api/orders", params={"thirdPartyOrderId": "SAME-1"}, headers=acme)
    assert len(listing.json()["items"]) == 1


async def test_concurrent_conflicting_posts_create_one_and_refuse_the_rest(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    flow = flow_doc("https://erp.example.com/orders")
    await client.post("/api/flows", json=flow, headers=acme)
    bodies = [{**order_doc("SAME-2"), "data": {"variant": n}, "start": False} for n in range(10)]

    responses = await asyncio.gather(
        *(client.post("/api/orders", json=body, headers=acme) for body in bodies)
    )

    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 9


async def test_orders_posted_together_share_transactions_and_are_each_stored(
    client: httpx2.AsyncClient, acme: dict[str, str], service: Service
) -> None:
    flow = flow_doc("https://erp.example.com/orders")
    assert (await client.post("/api/flows", json=flow, headers=acme)).status_code == 201
    commits: list[int] = []
    engine = service.store.db.writer.sync_engine
    listener = lambda _conn: commits.append(1)  # noqa: E731
    event.listen(engine, "commit", listener)
    bodies = [{**order_doc(f"BATCH-{n}"), "start": False} for n in range(24)]
    bodies.append({**order_doc("BATCH-0"), "start": False})  # a resend inside the batch
    bodies.append({**order_doc("BATCH-X"), "flowKey": "no-such-flow", "start": False})
    try:
        responses = await asyncio.gather(
            *(client.post("/api/orders", json=body, headers=acme) for body in bodies)
        )
    finally:
        event.remove(engine, "commit", listener)

    codes = [r.status_code for r in responses]
    assert sorted(codes[:24]) == [201] * 24
    assert codes[24] == 200
    assert responses[24].json()["id"] == responses[0].json()["id"]
    assert codes[25] == 404
    # 24 new orders in fewer transactions than orders, each readable with what the 201 said.
    assert 0 < len(commits) < 24
    for response in responses[:24]:
        stored = await client.get(f"/api/orders/{response.json()['id']}", headers=acme)
        assert stored.json()["thirdPartyOrderId"] == response.json()["thirdPartyOrderId"]
        events = await client.get(f"/api/orders/{response.json()['id']}/events", headers=acme)
        assert [e["type"] for e in events.json()["items"]][:1] == ["order.created"]


async def test_outcomes_answered_together_are_recorded_together_and_keep_every_invariant(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
    gate: threading.Event,
    settings: Settings,
    service: Service,
) -> None:
    """Twelve orders whose connector answers are held, then released at once: their outcomes
    are written as one batch (one UPDATE per table on PostgreSQL) and every order ends right."""
    flow = flow_doc(https_receiver.url("/held"))
    assert (await client.post("/api/flows", json=flow, headers=acme)).status_code == 201
    https_receiver.script("/held", Reply(status=201, before=held_by(gate)))
    posted = await asyncio.gather(
        *(client.post("/api/orders", json=order_doc(f"HELD-{n}"), headers=acme) for n in range(12))
    )
    assert [r.status_code for r in posted] == [201] * 12
    await wait_for_requests(https_receiver, 12, path="/held")
    async with statements_sent(service.store.db) as statements:
        gate.set()
        for response in posted:
            order = await wait_for_status(client, acme, response.json()["id"], "SUCCESS", "FAILURE")
            assert order["status"] == "SUCCESS"
            assert [(t["status"], t["attempts"]) for t in order["tasks"]] == [("SUCCEEDED", 1)]
    # (alone, or with the unit's last writes)
    updates = [statement for statement in statements if "UPDATE tasks SET" in statement]
    if not settings.database_url.startswith("sqlite"):
        assert any("FROM json_to_recordset(" in statement for statement in updates), updates
    violations = check_database(settings.database_url, deliveries=https_receiver.delivery_ids())
    assert violations == [], report(violations)
