"""export: the production package of an order on the local blob store, its downloads, and the
network guard on item files — on both databases."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest

from ordermill.errors import PermanentError, RetryableError, TargetRefused
from ordermill.handlers.export.fetch import ByteBudget, GuardedFetcher
from ordermill.handlers.netguard import OutboundClient, check_host, parse_networks
from ordermill.service import Service
from tests.integration.export_checks import (
    check_package,
    expected_listing,
    export_order,
    list_assets,
    run_export,
    serve_item_files,
)
from tests.support.receiver import HttpsReceiver, Reply

PROBLEM_JSON = "application/problem+json"


async def test_an_export_stores_the_sheet_the_manifest_and_the_bundle(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    serve_item_files(https_receiver)
    order = await run_export(client, acme, export_order(https_receiver))
    assert order["status"] == "SUCCESS", order["tasks"]
    assert await list_assets(client, acme, order["id"]) == expected_listing()
    await check_package(client, acme, order)
    assert sorted(r.path for r in https_receiver.requests) == ["/cdn/b.stl", "/cdn/wood.png"]


async def test_a_signed_link_downloads_without_a_key_until_tampered_or_expired(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
    service: Service,
    make_space: Callable[..., Any],
) -> None:
    serve_item_files(https_receiver)
    order = await run_export(client, acme, export_order(https_receiver))
    sheet = (await list_assets(client, acme, order["id"]))[0]

    signed = await client.get(sheet["url"])
    assert signed.status_code == 200
    assert signed.content.startswith(b"%PDF")
    assert signed.headers["content-type"] == "application/pdf"

    parts = urlsplit(sheet["url"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    other_row = f"/api/assets/{sheet['id'] + 1}/download?{parts.query}"
    tampered = [
        f"{parts.path}?{urlencode({**query, 'signature': query['signature'][:-2] + 'xx'})}",
        f"{parts.path}?{urlencode({**query, 'expires': str(int(query['expires']) + 60)})}",
        f"{parts.path}?expires={query['expires']}",
        other_row,
        service.links.sign(parts.path, service.clock.now() - timedelta(seconds=5)),
    ]
    for url in tampered:
        refused = await client.get(url)
        assert refused.status_code == 403, url
        assert refused.headers["content-type"] == PROBLEM_JSON
        assert refused.json()["detail"].startswith("This download link is invalid or has expired")

    assert (await client.get(parts.path)).status_code == 401
    stranger = await make_space("globex")
    assert (await client.get(parts.path, headers=stranger)).status_code == 404
    listing = await client.get(f"/api/orders/{order['id']}/assets", headers=stranger)
    assert listing.status_code == 404


async def test_an_item_file_on_a_loopback_address_is_refused_without_the_allowance(
    client: httpx2.AsyncClient, make_space: Callable[..., Any], https_receiver: HttpsReceiver
) -> None:
    serve_item_files(https_receiver)
    closed = await make_space("closed")
    order = await run_export(client, closed, export_order(https_receiver, "closed"))
    assert order["status"] == "FAILURE"
    (task,) = order["tasks"]
    assert task["error"] == {
        "class": "TargetRefused",
        "message": f"asset 'model' of item 'item-1': {check_host('127.0.0.1', ())}",
    }
    assert "127.0.0.1 is a loopback address; allow it with" in task["error"]["message"]
    assert task["attempts"] == 1
    assert https_receiver.requests == []
    assert await list_assets(client, closed, order["id"]) == []


# --- the fetcher against a real https server, without the app ----------------------------------


@pytest.fixture
async def fetcher(https_receiver: HttpsReceiver) -> AsyncIterator[GuardedFetcher]:
    """A fetcher trusting the test CA, closed before the receiver stops."""
    fetch = GuardedFetcher(
        OutboundClient(ca_file=https_receiver.ca_pem_path, user_agent="ordermill-test")
    )
    yield fetch
    await fetch.close()


async def fetch(
    fetcher: GuardedFetcher, url: str, target: Path, budget: ByteBudget | None = None
) -> tuple[int, str]:
    return await fetcher.fetch(
        url,
        target,
        label="asset 'model' of item 'item-1'",
        budget=budget or ByteBudget(10_000, 10_000),
        allowed=parse_networks(["127.0.0.1/32"]),
        allow_http_hosts=(),
        seconds=5.0,
    )


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (Reply(404, b"gone"), PermanentError, "the server answered 404"),
        (Reply(503, b"busy"), RetryableError, "the server answered 503"),
        (
            Reply(302, b"", {"location": "https://127.0.0.1/x"}),
            PermanentError,
            "the server answered 302 (a redirect; redirects are not followed)",
        ),
        (Reply(200, b"x" * 2000), PermanentError, "larger than the per-file limit of 1000 bytes"),
    ],
)
async def test_failed_downloads_say_why_and_whether_a_retry_may_help(
    fetcher: GuardedFetcher,
    https_receiver: HttpsReceiver,
    tmp_path: Path,
    reply: Reply,
    error: type[Exception],
    message: str,
) -> None:
    https_receiver.script("/f", reply)
    with pytest.raises(error) as caught:
        await fetch(fetcher, https_receiver.url("/f"), tmp_path / "f", ByteBudget(1000, 5000))
    assert str(caught.value).startswith("asset 'model' of item 'item-1'")
    assert message in str(caught.value)


async def test_a_file_streams_to_disk_with_its_checksum(
    fetcher: GuardedFetcher, https_receiver: HttpsReceiver, tmp_path: Path
) -> None:
    https_receiver.script("/f", Reply(200, b"abc" * 1000))
    size, sha = await fetch(fetcher, https_receiver.url("/f"), tmp_path / "f")
    assert (size, (tmp_path / "f").read_bytes()) == (3000, b"abc" * 1000)
    assert sha == hashlib.sha256(b"abc" * 1000).hexdigest()


async def test_names_resolving_to_refused_addresses_and_plain_http_are_refused(
    fetcher: GuardedFetcher, https_receiver: HttpsReceiver, tmp_path: Path
) -> None:
    with pytest.raises(
        TargetRefused, match=r"localhost \((127\.0\.0\.1|::1)\) is a loopback address"
    ):
        await fetcher.fetch(
            f"https://localhost:{https_receiver.port}/f",
            tmp_path / "f",
            label="asset 'model' of item 'item-1'",
            budget=ByteBudget(10, 10),
            allowed=(),
            allow_http_hosts=(),
            seconds=5.0,
        )
    with pytest.raises(PermanentError, match="plain http is allowed only for the hosts named in"):
        await fetch(fetcher, "http://cdn.example.com/b.stl", tmp_path / "f")
    assert https_receiver.requests == []
