"""Connector calls and export downloads refuse disguised internal hosts, for good, everywhere.

The test receiver listens on 127.0.0.1 with a certificate valid for 127.0.0.1, so a disguise that
slipped through would succeed; each one must instead fail its task at the first attempt with
``TargetRefused``, and the receiver must see no request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from ordermill.handlers.netguard import OutboundClient, parse_networks
from tests.integration.conftest import wait_for_status
from tests.integration.export_checks import export_order, list_assets, run_export
from tests.support.factories import flow_doc, order_doc
from tests.support.receiver import HttpsReceiver, Reply

# Spellings yarl turns into 127.0.0.1 after parsing: the guard must judge what is dialled.
UNICODE_LOOPBACK = ["１２７.０.０.１", "127。0。0。1", "①②⑦.0.0.1"]
# Legacy IPv4 forms the system resolver maps onto 127.0.0.1: refused even where loopback is allowed.
NUMERIC_LOOPBACK = ["127.1", "2130706433", "0177.0.0.1", "127.000.000.001", "0x7f.0.0.1", "0"]


async def run_connector(
    client: httpx2.AsyncClient, headers: dict[str, str], uri: str, space_key: str
) -> dict[str, Any]:
    created = await client.post("/api/flows", json=flow_doc(uri), headers=headers)
    assert created.status_code == 201, created.text
    posted = await client.post("/api/orders", json=order_doc(spaceKey=space_key), headers=headers)
    assert posted.status_code == 201, posted.text
    return await wait_for_status(client, headers, posted.json()["id"], "FAILURE", "SUCCESS")


def assert_refused_once(order: dict[str, Any], phrase: str) -> None:
    assert order["status"] == "FAILURE"
    [task] = order["tasks"]
    assert (task["status"], task["attempts"]) == ("FAILED", 1), task
    assert task["error"]["class"] == "TargetRefused", task["error"]
    assert phrase in task["error"]["message"]


@pytest.mark.parametrize("host", UNICODE_LOOPBACK)
async def test_a_connector_host_that_normalises_to_loopback_is_refused(
    client: httpx2.AsyncClient,
    make_space: Callable[..., Any],
    https_receiver: HttpsReceiver,
    host: str,
) -> None:
    https_receiver.script("/o", Reply(status=201))
    closed = await make_space("closed")
    order = await run_connector(client, closed, f"https://{host}:{https_receiver.port}/o", "closed")

    assert_refused_once(order, "target 127.0.0.1 is a loopback address")
    assert https_receiver.requests == []


@pytest.mark.parametrize("host", NUMERIC_LOOPBACK)
async def test_a_non_canonical_ipv4_connector_host_is_refused_even_where_loopback_is_allowed(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
    host: str,
) -> None:
    https_receiver.script("/o", Reply(status=201))
    order = await run_connector(client, acme, f"https://{host}:{https_receiver.port}/o", "acme")

    assert_refused_once(order, "is not a canonical IPv4 address")
    assert https_receiver.requests == []


@pytest.mark.parametrize("host", [UNICODE_LOOPBACK[0], NUMERIC_LOOPBACK[1]])
async def test_an_export_asset_url_with_a_disguised_loopback_host_is_refused(
    client: httpx2.AsyncClient,
    make_space: Callable[..., Any],
    https_receiver: HttpsReceiver,
    host: str,
) -> None:
    https_receiver.script("/cdn/b.stl", Reply(200, b"solid x"))
    closed = await make_space("closed")
    order = export_order(https_receiver, "closed")
    item = order["orderLines"][0]["items"][0]
    url = f"https://{host}:{https_receiver.port}/cdn/b.stl"
    item["assets"][0].update(url=url, versions=[{"url": url, "date": "2026-09-23T14:23:17.580Z"}])

    done = await run_export(client, closed, order)

    phrase = "is not a canonical IPv4 address" if host.isascii() else "is a loopback address"
    assert_refused_once(done, phrase)
    assert done["tasks"][0]["error"]["message"].startswith("asset 'model' of item 'item-1': ")
    assert https_receiver.requests == []
    assert await list_assets(client, closed, done["id"]) == []


async def test_a_cookie_a_receiver_sets_is_never_sent_back(https_receiver: HttpsReceiver) -> None:
    """One session per set of allowances serves every space with those allowances: a cookie
    kept from one receiver's answer could travel with another space's request to that host."""
    outbound = OutboundClient(ca_file=https_receiver.ca_pem_path, user_agent="ordermill-test")
    https_receiver.script(
        "/c",
        [Reply(status=200, headers={"Set-Cookie": "session=tenant-a; Path=/"}), Reply(status=200)],
    )
    allowed = parse_networks(["127.0.0.1/32"])
    try:
        for _ in range(2):
            async with outbound.request(
                "POST", https_receiver.url("/c"), allowed=allowed, data=b"{}"
            ) as response:
                assert response.status == 200
    finally:
        await outbound.close()
    first, second = https_receiver.requests
    assert "set-cookie" not in first.headers
    assert "cookie" not in first.headers
    assert "cookie" not in second.headers
