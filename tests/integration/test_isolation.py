"""One space never sees another's data; keys act only in their space; revoked keys stop working
(SPEC §7), on both databases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from tests.support.factories import flow_doc, order_doc

PROBLEM_JSON = "application/problem+json"
URI = "https://erp.example.com/orders"


@pytest.fixture
async def beta(make_space: Callable[..., Any]) -> dict[str, str]:
    """A second space, `beta`."""
    headers: dict[str, str] = await make_space("beta")
    return headers


@pytest.fixture
async def acme_order(client: httpx2.AsyncClient, acme: dict[str, str]) -> dict[str, Any]:
    """A CREATED order of space acme (not started, so no connector is called)."""
    response = await client.post("/api/flows", json=flow_doc(URI), headers=acme)
    assert response.status_code == 201, response.text
    response = await client.post("/api/orders", json=order_doc(start=False), headers=acme)
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


async def test_a_space_cannot_read_another_spaces_order(
    client: httpx2.AsyncClient, beta: dict[str, str], acme_order: dict[str, Any]
) -> None:
    order_id = acme_order["id"]
    for path in ("", "/events", "/tasks/task-1/attempts"):
        response = await client.get(f"/api/orders/{order_id}{path}", headers=beta)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["detail"] == f"order {order_id!r} does not exist"

    listed = await client.get("/api/orders", headers=beta)
    by_id = await client.get("/api/orders?thirdPartyOrderId=WEB-1001", headers=beta)
    by_space = await client.get("/api/orders?spaceKey=acme", headers=beta)

    assert listed.json() == {"items": [], "nextCursor": None}
    assert by_id.json() == {"items": [], "nextCursor": None}
    assert by_space.status_code == 403
    assert by_space.json()["detail"] == "this API key belongs to space 'beta', not 'acme'"


async def test_a_space_cannot_act_on_another_spaces_order(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    beta: dict[str, str],
    acme_order: dict[str, Any],
) -> None:
    order_id = acme_order["id"]
    for action in ("start", "cancel", "retry"):
        response = await client.post(f"/api/orders/{order_id}/{action}", headers=beta)
        assert response.status_code == 404, action

    unchanged = await client.get(f"/api/orders/{order_id}", headers=acme)
    assert unchanged.json()["status"] == "CREATED"


async def test_a_space_cannot_read_or_change_another_spaces_flows(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    beta: dict[str, str],
    acme_order: dict[str, Any],
) -> None:
    for path in ("/api/flows/made-to-order", "/api/flows/made-to-order/versions"):
        response = await client.get(path, headers=beta)
        assert response.status_code == 404, path
        assert response.json()["detail"] == "flow 'made-to-order' does not exist in space 'beta'"
    assert (
        await client.get("/api/flows/made-to-order/versions/1", headers=beta)
    ).status_code == 404
    assert (await client.get("/api/flows", headers=beta)).json() == {"items": []}
    assert (await client.delete("/api/flows/made-to-order", headers=beta)).status_code == 404
    named = await client.get("/api/flows/made-to-order?spaceKey=acme", headers=beta)
    assert named.status_code == 403
    assert (await client.get("/api/flows/made-to-order", headers=acme)).status_code == 200


async def test_the_same_keys_in_two_spaces_are_two_separate_things(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    beta: dict[str, str],
    acme_order: dict[str, Any],
) -> None:
    """Flow keys and thirdPartyOrderIds are unique per space, not globally."""
    flow = await client.post(
        "/api/flows", json=flow_doc("https://beta.example.com/orders"), headers=beta
    )
    order = await client.post(
        "/api/orders", json=order_doc(spaceKey="beta", start=False), headers=beta
    )

    assert flow.status_code == 201, flow.text
    assert (flow.json()["spaceKey"], flow.json()["version"]) == ("beta", 1)
    assert order.status_code == 201, order.text
    assert order.json()["id"] != acme_order["id"]
    assert order.json()["spaceKey"] == "beta"
    acme_flow = await client.get("/api/flows/made-to-order", headers=acme)
    assert acme_flow.json()["stages"][0]["taskDefinitions"][0]["payload"]["uri"] == URI


async def test_a_key_posting_an_order_into_another_space_is_forbidden(
    client: httpx2.AsyncClient, acme: dict[str, str], beta: dict[str, str]
) -> None:
    await client.post("/api/flows", json=flow_doc(URI), headers=beta)

    response = await client.post(
        "/api/orders", json=order_doc(spaceKey="beta", start=False), headers=acme
    )

    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json() == {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "this API key belongs to space 'acme', not 'beta'",
        "instance": "/api/orders",
    }
    assert (await client.get("/api/orders", headers=beta)).json()["items"] == []


async def test_a_key_posting_a_flow_into_another_space_is_forbidden(
    client: httpx2.AsyncClient, acme: dict[str, str], beta: dict[str, str]
) -> None:
    response = await client.post(
        "/api/flows", json={**flow_doc(URI), "spaceKey": "beta"}, headers=acme
    )

    assert response.status_code == 403
    assert response.json()["detail"] == "this API key belongs to space 'acme', not 'beta'"
    assert (await client.get("/api/flows", headers=beta)).json() == {"items": []}


async def test_a_key_cannot_manage_another_spaces_api_keys(
    client: httpx2.AsyncClient, acme: dict[str, str], beta: dict[str, str]
) -> None:
    listed = await client.get("/api/spaces/acme/api-keys", headers=beta)
    created = await client.post("/api/spaces/acme/api-keys", json={"name": "x"}, headers=beta)
    revoked = await client.delete("/api/spaces/acme/api-keys/1", headers=beta)

    assert [listed.status_code, created.status_code, revoked.status_code] == [403, 403, 403]
    assert (await client.get("/api/orders", headers=acme)).status_code == 200


async def test_admin_reads_every_space(
    client: httpx2.AsyncClient,
    admin: dict[str, str],
    beta: dict[str, str],
    acme_order: dict[str, Any],
) -> None:
    await client.post("/api/flows", json=flow_doc(URI), headers=beta)
    beta_order = (
        await client.post("/api/orders", json=order_doc(spaceKey="beta", start=False), headers=beta)
    ).json()

    acme_view = await client.get(f"/api/orders/{acme_order['id']}", headers=admin)
    beta_view = await client.get(f"/api/orders/{beta_order['id']}", headers=admin)
    everything = await client.get("/api/orders", headers=admin)
    only_beta = await client.get("/api/orders?spaceKey=beta", headers=admin)
    acme_flow = await client.get("/api/flows/made-to-order?spaceKey=acme", headers=admin)
    beta_flow = await client.get("/api/flows/made-to-order?spaceKey=beta", headers=admin)

    assert acme_view.json() == acme_order
    assert beta_view.json() == beta_order
    assert [o["id"] for o in everything.json()["items"]] == [beta_order["id"], acme_order["id"]]
    assert [o["id"] for o in only_beta.json()["items"]] == [beta_order["id"]]
    assert (acme_flow.json()["spaceKey"], beta_flow.json()["spaceKey"]) == ("acme", "beta")


async def test_admin_must_name_the_space_of_a_flow(
    client: httpx2.AsyncClient, admin: dict[str, str], acme_order: dict[str, Any]
) -> None:
    response = await client.get("/api/flows", headers=admin)

    assert response.status_code == 400
    assert response.json()["problems"] == [
        {"pointer": "/spaceKey", "message": "the admin key must name the space (spaceKey)"}
    ]


async def test_a_revoked_key_is_refused(
    client: httpx2.AsyncClient, admin: dict[str, str], acme: dict[str, str]
) -> None:
    """The key is revoked before its first use: the API caches a successful key lookup for
    5 seconds, so a key used just before its revocation keeps working for up to that long."""
    made = await client.post("/api/spaces/acme/api-keys", json={"name": "ci"}, headers=admin)
    assert made.status_code == 201, made.text
    key = made.json()
    revoked = await client.delete(f"/api/spaces/acme/api-keys/{key['id']}", headers=admin)
    assert revoked.status_code == 204

    response = await client.get("/api/orders", headers={"Authorization": f"Bearer {key['key']}"})

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["detail"] == "The API key is unknown or revoked."
    keys = (await client.get("/api/spaces/acme/api-keys", headers=acme)).json()["items"]
    assert [(k["name"], k["revokedAt"] is not None) for k in keys] == [
        ("test", False),
        ("ci", True),
    ]
    assert all("key" not in k and "keyHash" not in k for k in keys)
    assert (await client.get("/api/orders", headers=acme)).status_code == 200
