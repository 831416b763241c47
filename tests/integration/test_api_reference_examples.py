"""The API reference's JSON examples are what the service really sends and accepts.

Every ```json block of docs/reference/api.md is either a request body, which the running app
must accept as printed, or an answer, which is compared with the app's real answer to the same
kind of call: the same members (all of them, except where an example shortens on purpose), the
same JSON types, times in the same format (milliseconds and `Z`) and ids with the same prefix.
A format change that the reference does not follow fails here.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.integration.conftest import wait_for_requests, wait_for_status
from tests.integration.handler_flows import chain, task
from tests.support.factories import flow_doc, order_doc
from tests.support.receiver import HttpsReceiver, Reply

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "reference" / "api.md"
_BLOCKS = re.compile(r"^#{2,3} (.+?)$|^```json\n(.*?)^```", re.MULTILINE | re.DOTALL)
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
TIME_AS_SERVED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ID = re.compile(r"(ord|dlv)_[0-9a-z]{26}")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the examples describe the API, which is the same on both databases."""
    return f"sqlite+aiosqlite:///{tmp_path}/ordermill.db"


def doc_examples() -> dict[tuple[str, int], Any]:
    """Every JSON example of the API reference by (its heading, its place under it)."""
    examples: dict[tuple[str, int], Any] = {}
    heading, count = "", 0
    for match in _BLOCKS.finditer(API_DOC.read_text()):
        if match.group(1) is not None:
            heading, count = match.group(1), 0
            continue
        examples[(heading, count)] = json.loads(match.group(2))
        count += 1
    return examples


def drift(doc: Any, real: Any, at: str = "", partial: frozenset[str] = frozenset()) -> list[str]:
    """Where the real answer departs from the documented example.

    A string with "…" in the example stands for any string, `null` for any value, and an
    empty object or array for any content. An example object names every member of the real
    one, except at the pointers in ``partial`` (examples shortened on purpose). In arrays, the
    first example item describes the real item of the same `type` (else the first real item).
    """
    where = at or "/"
    if doc is None:
        return []
    if isinstance(doc, dict):
        if not isinstance(real, dict):
            return [f"{where}: the doc shows an object, the service sends {real!r}"]
        problems = [
            f"{where}: the doc shows {name!r}, not sent" for name in doc if name not in real
        ]
        if doc and at not in partial:
            problems += [
                f"{where}: {name!r} is sent but not in the doc" for name in real if name not in doc
            ]
        for name in doc:
            if name in real:
                problems += drift(doc[name], real[name], f"{at}/{name}", partial)
        return problems
    if isinstance(doc, list):
        if not isinstance(real, list):
            return [f"{where}: the doc shows an array, the service sends {real!r}"]
        if not doc:
            return []
        if not real:
            return [f"{where}: the doc shows items, the service sent none to compare"]
        first = doc[0]
        same_type = [
            item
            for item in real
            if isinstance(item, dict)
            and isinstance(first, dict)
            and "type" in first
            and item.get("type") == first["type"]
        ]
        return drift(first, (same_type or real)[0], f"{at}/0", partial)
    if isinstance(doc, bool) or isinstance(real, bool):
        same = isinstance(doc, bool) and isinstance(real, bool)
        return [] if same else [f"{where}: the doc shows {doc!r}, the service sends {real!r}"]
    if isinstance(doc, int | float):
        number = isinstance(real, int | float)
        return [] if number else [f"{where}: the doc shows a number, the service sends {real!r}"]
    if not isinstance(real, str):
        return [f"{where}: the doc shows a string, the service sends {real!r}"]
    if "…" in doc:
        return []
    if TIME.fullmatch(doc) and not (
        TIME_AS_SERVED.fullmatch(doc) and TIME_AS_SERVED.fullmatch(real)
    ):
        return [f"{where}: the doc shows the time {doc}, the service sends {real}"]
    if ID.fullmatch(doc) and not real.startswith(doc[:4]):
        return [f"{where}: the doc shows the id {doc}, the service sends {real}"]
    return []


@dataclass
class Checks:
    """The examples checked so far and the drift found."""

    examples: dict[tuple[str, int], Any] = field(default_factory=doc_examples)
    seen: set[tuple[str, int]] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def request(self, heading: str, index: int = 0) -> Any:
        """A documented request body, to send as printed."""
        self.seen.add((heading, index))
        return self.examples[(heading, index)]

    def answer(self, heading: str, real: Any, index: int = 0, *partial: str) -> None:
        self.seen.add((heading, index))
        found = drift(self.examples[(heading, index)], real, "", frozenset(partial))
        self.problems += [f"{heading} (example {index + 1}) {problem}" for problem in found]


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def test_every_json_example_of_the_api_reference_matches_the_service(
    client: httpx2.AsyncClient,
    admin: dict[str, str],
    https_receiver: HttpsReceiver,
) -> None:
    checks = Checks()
    get: Callable[..., Any] = client.get
    post: Callable[..., Any] = client.post

    checks.answer("`GET /healthz`", await ok(await get("/healthz")))
    checks.answer("`GET /readyz`", await ok(await get("/readyz")))

    space_body = checks.request("`POST /api/spaces`")
    checks.answer(
        "Spaces and API keys",
        await ok(await post("/api/spaces", json=space_body, headers=admin), 201),
    )
    key = await ok(
        await post("/api/spaces/acme/api-keys", json={"name": "shop"}, headers=admin), 201
    )
    checks.answer("`POST /api/spaces/{key}/api-keys`", key)
    acme = {"Authorization": f"Bearer {key['key']}"}
    allowances = checks.request("`PUT /api/spaces/{key}/connector-allowances`")
    await ok(
        await client.put("/api/spaces/acme/connector-allowances", json=allowances, headers=admin)
    )
    local = {"connectorAllowNetworks": ["127.0.0.1/32"], "connectorAllowHttp": []}
    await ok(await client.put("/api/spaces/acme/connector-allowances", json=local, headers=admin))
    rotated = await ok(await post("/api/spaces/acme/signing-secret/rotate", headers=acme))
    checks.answer("`POST /api/spaces/{key}/signing-secret/rotate`", rotated)

    flow = flow_doc(https_receiver.url("/orders"), sends_feedback=True, timeoutDuration=60_000)
    await ok(await post("/api/flows", json=flow, headers=acme), 201)
    await ok(
        await client.put(
            "/api/flows/made-to-order", json={**flow, "name": "Made to order (EU) v2"}, headers=acme
        )
    )
    checks.answer("`GET /api/flows`", await ok(await get("/api/flows", headers=acme)))
    checks.answer(
        "`GET /api/flows/{key}/versions`",
        await ok(await get("/api/flows/made-to-order/versions", headers=acme)),
    )
    invalid = {"key": "empty", "name": "Empty flow", "stages": []}
    checks.answer(
        "`POST /api/flows/validate`",
        await ok(await post("/api/flows/validate", json=invalid, headers=acme)),
    )
    checks.answer(
        "`GET /api/handlers`",
        await ok(await get("/api/handlers", headers=acme)),
        0,
        "/items/0/payloadSchema",
    )

    order_body = checks.request("`POST /api/orders`")
    created = await ok(await post("/api/orders", json=order_body, headers=acme), 201)
    (delivery,) = await wait_for_requests(https_receiver, 1)
    update_url = delivery.json()["order"]["updateUrl"]
    checks.answer("The order", await ok(await get(f"/api/orders/{created['id']}", headers=acme)))
    await ok(await post(update_url, json={"status": "progress", "message": "in production"}))
    await ok(await post(update_url, json=checks.request("`POST /api/feedback/{token}`")))
    await wait_for_status(client, acme, created["id"], "SUCCESS")
    checks.answer(
        "`GET /api/orders/{id}/events`",
        await ok(await get(f"/api/orders/{created['id']}/events", headers=acme)),
    )
    https_receiver.script("/refusing", [Reply(400, {"detail": "unknown SKU"})])
    refusing = flow_doc(https_receiver.url("/refusing"), key="refusing")
    await ok(await post("/api/flows", json=refusing, headers=acme), 201)
    failing = order_doc("WEB-F1", flow_key="refusing")
    failed = await ok(await post("/api/orders", json=failing, headers=acme), 201)
    await wait_for_status(client, acme, failed["id"], "FAILURE")
    listed = await ok(await get("/api/orders?limit=1", headers=acme))
    checks.answer("`GET /api/orders`", listed, 0, "/items/0")
    retried = await ok(await post("/api/orders/retry", json={}, headers=acme))
    checks.answer("`POST /api/orders/retry`", retried)
    await wait_for_status(client, acme, failed["id"], "FAILURE")
    explained = await ok(await get(f"/api/orders/{failed['id']}/explain", headers=acme))
    checks.answer("`GET /api/orders/{id}/explain`", explained)
    counted = await ok(await post("/api/orders/restart", json={"dryRun": True}, headers=acme))
    checks.answer("`POST /api/orders/restart`", counted)

    bad_order = {**order_doc("WEB-BAD")}
    bad_order["orderLines"][0]["deadline"] = "soon"
    bad_order["orderLines"][0]["colour"] = "red"
    checks.answer(
        "Errors",
        await ok(await post("/api/orders", json=bad_order, headers=acme), 400),
    )

    approval = task(
        "approve",
        "manual-confirmation",
        {
            "title": "Print {{ order.thirdPartyOrderId }}?",
            "description": "Size M",
            "assignees": ["boss@example.com"],
        },
    )
    export = task("export", "export", {}, timeoutDuration=5000)
    await ok(
        await post("/api/flows", json=chain(export, approval, key="approval"), headers=acme), 201
    )
    plain = order_doc("WEB-2001", flow_key="approval")
    plain["orderLines"][0]["items"][0]["assets"] = []
    waiting = await ok(await post("/api/orders", json=plain, headers=acme), 201)
    inbox: list[Any] = []
    for _ in range(200):
        inbox = (await ok(await get("/api/confirmations", headers=acme)))["items"]
        if inbox:
            break
        await asyncio.sleep(0.05)
    checks.answer("Confirmations", inbox[0])
    assets = await ok(await get(f"/api/orders/{waiting['id']}/assets", headers=acme))
    checks.answer("`GET /api/orders/{id}/assets`", assets)

    assert not checks.problems, "\n".join(["the API reference drifted:", *checks.problems])
    assert sorted(set(checks.examples) - checks.seen) == [], (
        "an example of the API reference is not checked"
    )


def test_the_drift_check_notices_a_changed_time_format_a_missing_and_an_extra_member() -> None:
    doc = {
        "id": "ord_01m8d5efd839kds6fbp55cm0dm",
        "createdAt": "2026-11-27T00:10:54.760Z",
        "tasks": [{"key": "a"}],
    }
    real = {
        "id": "ord_01m8d5efd839kds6fbp55cm0dm",
        "createdAt": "2026-11-27T00:10:54.760123+00:00",
        "tasks": [{"key": "a", "extra": 1}],
        "more": True,
    }

    assert drift(doc, real) == [
        "/: 'more' is sent but not in the doc",
        "/createdAt: the doc shows the time 2026-11-27T00:10:54.760Z, "
        "the service sends 2026-11-27T00:10:54.760123+00:00",
        "/tasks/0: 'extra' is sent but not in the doc",
    ]
    assert drift({**doc, "gone": 1}, {**doc}) == ["/: the doc shows 'gone', not sent"]
    assert drift(doc, {**doc, "tasks": []}) == [
        "/tasks: the doc shows items, the service sent none to compare"
    ]
    assert drift(doc, {**doc, "more": True}, partial=frozenset({""})) == []
