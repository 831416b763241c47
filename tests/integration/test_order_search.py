"""GET /api/orders?q=: one search over ids and every text of an order, on both databases."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from alembic import command
from sqlalchemy import Connection, inspect

from ordermill.service import Service
from ordermill.storage import migrate
from ordermill.storage.search import TABLE_NAME
from tests.support.factories import flow_doc, order_doc


@pytest.fixture
async def orders(client: httpx2.AsyncClient, acme: dict[str, str]) -> dict[str, str]:
    """Three orders (not started) with distinct references, e-mails and cities."""
    flow = flow_doc("https://127.0.0.1:9/orders")
    assert (await client.post("/api/flows", json=flow, headers=acme)).status_code == 201
    made: dict[str, str] = {}
    for third_party, reference, email, city in (
        ("WEB-2001", "ACME-PO-4471", "jo@example.com", "Gent"),
        ("WEB-2002", "ACME-PO-5100", "an%na@example.org", "Antwerpen"),
        ("SHOP-77", "BETA_REF_9", "piet@example.net", "Brugge"),
    ):
        body = order_doc(third_party, start=False)
        body["data"] = {"customerReference": reference, "customer": {"email": email}}
        body["addresses"][0]["data"] = {"city": city}
        response = await client.post("/api/orders", json=body, headers=acme)
        assert response.status_code == 201, response.text
        made[third_party] = response.json()["id"]
    return made


async def found(client: httpx2.AsyncClient, headers: dict[str, str], **query: Any) -> set[str]:
    response = await client.get("/api/orders", params=query, headers=headers)
    assert response.status_code == 200, response.text
    return {item["thirdPartyOrderId"] for item in response.json()["items"]}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("ACME-PO-4471", {"WEB-2001"}),  # the customer reference inside data
        ("acme-po", {"WEB-2001", "WEB-2002"}),  # any part, any case
        ("web-2002", {"WEB-2002"}),  # the third-party id
        ("PIET@example.NET", {"SHOP-77"}),  # an e-mail, nested
        ("antwerp", {"WEB-2002"}),  # an address's city
        ("an%na", {"WEB-2002"}),  # LIKE's wildcards are plain characters
        ("n%", {"WEB-2002"}),  # shorter than a trigram: still found
        ("_ref_", {"SHOP-77"}),
        ("nowhere-at-all", set()),
    ],
)
async def test_q_finds_orders_by_any_text_they_carry(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    orders: dict[str, str],
    q: str,
    expected: set[str],
) -> None:
    assert await found(client, acme, q=q) == expected


async def test_q_finds_an_order_by_its_own_id_and_only_in_its_space(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    orders: dict[str, str],
    make_space: Any,
) -> None:
    other = await make_space("globex")

    assert await found(client, acme, q=orders["SHOP-77"]) == {"SHOP-77"}
    assert await found(client, other, q="ACME-PO-4471") == set()


async def test_a_deadline_range_keeps_orders_due_inside_it(
    client: httpx2.AsyncClient, acme: dict[str, str], orders: dict[str, str]
) -> None:
    due = (await client.get(f"/api/orders/{orders['WEB-2001']}", headers=acme)).json()["deadline"]
    assert due is not None

    assert await found(client, acme, deadlineFrom=due, q="web") == {"WEB-2001", "WEB-2002"}
    assert await found(client, acme, deadlineTo=due) == set()
    assert (
        await client.get("/api/orders", params={"deadlineTo": "2026-01-01T00:00:00"}, headers=acme)
    ).status_code == 400


async def test_the_search_migration_indexes_orders_taken_in_before_it(
    client: httpx2.AsyncClient, acme: dict[str, str], orders: dict[str, str], service: Service
) -> None:
    def step(connection: Connection, down: bool) -> None:
        config = migrate._config(connection)
        if down:
            command.downgrade(config, "0004")
        else:
            command.upgrade(config, "head")

    async with service.db.transaction() as conn:
        await conn.run_sync(step, True)
    async with service.db.read() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    assert TABLE_NAME not in tables

    async with service.db.transaction() as conn:
        await conn.run_sync(step, False)

    assert await found(client, acme, q="acme-po-4471") == {"WEB-2001"}
    assert await found(client, acme, q="brugge") == {"SHOP-77"}


async def test_an_amendment_rewrites_the_orders_searchable_text_and_no_other(
    client: httpx2.AsyncClient, acme: dict[str, str], orders: dict[str, str]
) -> None:
    answer = await client.patch(
        f"/api/orders/{orders['WEB-2002']}",
        json={"data": {"customerReference": "ACME-PO-9999"}, "reason": "new purchase order"},
        headers={**acme, "Content-Type": "application/merge-patch+json"},
    )
    assert answer.status_code == 200, answer.text
    assert await found(client, acme, q="ACME-PO-9999") == {"WEB-2002"}
    assert await found(client, acme, q="ACME-PO-5100") == set()
    assert await found(client, acme, q="an%na@example") == {"WEB-2002"}  # kept, merged
    assert await found(client, acme, q="acme-po") == {"WEB-2001", "WEB-2002"}
    assert await found(client, acme, q="brugge") == {"SHOP-77"}


async def test_a_search_pages_through_every_match_once_newest_first(
    client: httpx2.AsyncClient, acme: dict[str, str], orders: dict[str, str]
) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"q": "@example", "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/orders", params=params, headers=acme)).json()
        seen += [item["thirdPartyOrderId"] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == ["SHOP-77", "WEB-2002", "WEB-2001"]


async def test_counts_per_status_stop_at_the_cap_and_say_so(
    service: Service, orders: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ordermill.flows.status import OrderStatus
    from ordermill.storage.orders import OrderFilter
    from ordermill.ui import present, reads

    exact = await reads.status_counts(service.db, "acme", OrderFilter())
    assert exact[OrderStatus.CREATED] == 3
    assert present.total_label(exact) == "3"
    monkeypatch.setattr(reads, "COUNT_CAP", 2)
    monkeypatch.setattr(present, "COUNT_CAP", 2)
    capped = await reads.status_counts(service.db, "acme", OrderFilter())
    assert capped[OrderStatus.CREATED] == 3  # one past the cap: "more than"
    assert capped[OrderStatus.SUCCESS] == 0
    assert present.count_label(capped[OrderStatus.CREATED]) == "2+"
    assert present.total_label(capped) == "3+"
    searched = await reads.status_counts(service.db, "acme", OrderFilter(search="acme-po"))
    assert searched[OrderStatus.CREATED] == 2
