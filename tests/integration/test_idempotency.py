"""An ``Idempotency-Key`` on the steering actions: a resend of the same request replays the
first answer without acting again, the key sent with another request is a 422; on both
databases, through the API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest

from ordermill.errors import Conflict, KeyReused
from ordermill.storage.database import Database
from ordermill.storage.idempotency import Answer, IdempotencyStore, Request
from ordermill.storage.migrate import upgrade
from ordermill.testing import FakeClock
from tests.integration.test_steering import create, events, put_flow, two_steps
from tests.support.receiver import HttpsReceiver

PROBLEM_JSON = "application/problem+json"


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def timeline_types(
    client: httpx2.AsyncClient, headers: dict[str, str], order: str
) -> list[str]:
    return [e["type"] for e in await events(client, headers, order)]


async def test_a_resent_pause_replays_its_first_answer_and_pauses_once(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    await put_flow(client, acme, two_steps(https_receiver))
    order_id = await create(client, acme, start=False)
    url = f"/api/orders/{order_id}/pause"

    first = await client.post(url, json={"reason": "stock"}, headers=keyed(acme, "pause-1"))
    again = await client.post(url, json={"reason": "stock"}, headers=keyed(acme, "pause-1"))
    unkeyed = await client.post(url, json={"reason": "stock"}, headers=acme)

    assert first.status_code == 200, first.text
    assert (again.status_code, again.json()) == (200, first.json())
    assert again.headers["content-type"] == "application/json"
    assert first.json()["pause"]["reason"] == "stock"
    assert unkeyed.status_code == 409
    assert unkeyed.json()["detail"] == "the order is already paused"
    assert (await timeline_types(client, acme, order_id)).count("order.paused") == 1


async def test_the_key_with_another_body_or_route_is_a_422_and_changes_nothing(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    await put_flow(client, acme, two_steps(https_receiver))
    order_id = await create(client, acme, start=False)
    headers = keyed(acme, "k-1")
    await client.post(f"/api/orders/{order_id}/pause", json={"reason": "a"}, headers=headers)

    other_body = await client.post(
        f"/api/orders/{order_id}/pause", json={"reason": "b"}, headers=headers
    )
    other_route = await client.post(f"/api/orders/{order_id}/resume", headers=headers)

    for refused in (other_body, other_route):
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == PROBLEM_JSON
        assert refused.json()["status"] == 422
    assert other_body.json()["detail"] == (
        f"this Idempotency-Key was sent before with another request (POST /api/orders/"
        f"{order_id}/pause, another body); use a new key"
    )
    view = (await client.get(f"/api/orders/{order_id}", headers=acme)).json()
    assert (view["paused"], view["pause"]["reason"]) == (True, "a")


async def test_a_refusal_is_replayed_too_even_after_the_state_changed(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    await put_flow(client, acme, two_steps(https_receiver))
    order_id = await create(client, acme, start=False)
    resume = f"/api/orders/{order_id}/resume"
    refused = await client.post(resume, headers=keyed(acme, "resume-1"))
    await client.post(f"/api/orders/{order_id}/pause", headers=acme)

    replayed = await client.post(resume, headers=keyed(acme, "resume-1"))

    assert refused.status_code == 409
    assert (replayed.status_code, replayed.json()) == (409, refused.json())
    assert replayed.headers["content-type"] == PROBLEM_JSON
    view = (await client.get(f"/api/orders/{order_id}", headers=acme)).json()
    assert view["paused"] is True


async def test_keys_belong_to_their_space_and_the_bulk_forms_replay_too(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    make_space: Callable[..., Any],
    https_receiver: HttpsReceiver,
) -> None:
    await put_flow(client, acme, two_steps(https_receiver))
    orders = [await create(client, acme, f"WEB-K{n}", start=False) for n in range(2)]
    other = await make_space("other")

    first = await client.post("/api/orders/pause", json={}, headers=keyed(acme, "bulk-1"))
    again = await client.post("/api/orders/pause", json={}, headers=keyed(acme, "bulk-1"))
    elsewhere = await client.post("/api/orders/pause", json={}, headers=keyed(other, "bulk-1"))

    assert first.status_code == 200, first.text
    assert sorted(first.json()["changed"]) == sorted(orders)
    assert again.json() == first.json()  # not "skipped: 2", which acting again would say
    assert elsewhere.json() == {
        "action": "pause",
        "dryRun": False,
        "matched": 0,
        "changed": [],
        "skipped": 0,
    }
    for order_id in orders:
        assert (await timeline_types(client, acme, order_id)).count("order.paused") == 1


async def test_two_copies_sent_at_once_act_once(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    await put_flow(client, acme, two_steps(https_receiver))
    order_id = await create(client, acme, start=False)
    url = f"/api/orders/{order_id}/cancel"
    headers = keyed(acme, "cancel-1")

    answers = await asyncio.gather(
        *(client.post(url, json={"reason": "dup"}, headers=headers) for _ in range(4))
    )

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses[0] == 200, [a.text for a in answers]
    assert set(statuses) <= {200, 409}, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert "still being answered" in answer.json()["detail"]
    assert (await timeline_types(client, acme, order_id)).count("order.cancelled") == 1
    later = await client.post(url, json={"reason": "dup"}, headers=headers)
    assert (later.status_code, later.json()["status"]) == (200, "CANCELLED")


async def test_a_key_is_kept_a_day_then_forgotten(database_url: str) -> None:
    database = Database(database_url)
    try:
        await upgrade(database)
        clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
        store = IdempotencyStore(database, clock)
        sent = Request("acme", "k", "POST /api/orders/o/pause", "a" * 64)
        assert await store.claim(sent) is None
        with pytest.raises(Conflict, match="still being answered"):
            await store.claim(sent)
        await store.answer(sent, Answer(200, {"id": "o"}))
        clock.advance(hours=23, minutes=59)
        assert await store.claim(sent) == Answer(200, {"id": "o"})
        with pytest.raises(KeyReused, match="another body"):
            await store.claim(Request("acme", "k", sent.route, "b" * 64))
        assert await store.claim(Request(None, "k", sent.route, "b" * 64)) is None  # the admin's
        clock.advance(minutes=2)
        assert await store.claim(Request("acme", "k", sent.route, "b" * 64)) is None
    finally:
        await database.dispose()
