"""Idempotent intake under concurrency, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx2

from tests.integration.conftest import flow_doc, order_doc


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
