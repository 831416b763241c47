"""/api/orders: intake, idempotency, input errors, operator actions, listing and timelines
(SPEC §4, §3.5, §7), on both databases."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest

from tests.integration.conftest import (
    bearer_prefix,
    held_by,
    wait_for_requests,
    wait_for_status,
)
from tests.integration.matchers import DELIVERY_ID, INSTANT, ORDER_ID
from tests.support.factories import flow_doc, order_doc
from tests.support.receiver import HttpsReceiver, Reply

PROBLEM_JSON = "application/problem+json"


@pytest.fixture
async def flow(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> dict[str, Any]:
    """The reference flow of space acme, calling the test receiver at /orders."""
    response = await client.post(
        "/api/flows", json=flow_doc(https_receiver.url("/orders")), headers=acme
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def stored_order(document: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The API's view of an order created from ``document`` (the reference order's values)."""
    view = {
        "id": ORDER_ID,
        "spaceKey": document["spaceKey"],
        "flowKey": document["flowKey"],
        "flowVersion": 1,
        "thirdPartyOrderId": document["thirdPartyOrderId"],
        "status": "CREATED",
        "paused": False,
        "pause": None,
        "cancelReason": None,
        "restarts": [],
        "revision": 1,
        "value": 99.0,
        "deadline": "2026-10-01T00:00:00.000Z",
        "createdAt": INSTANT,
        "updatedAt": INSTANT,
        "endedAt": None,
        "addresses": document["addresses"],
        "data": document["data"],
        "orderLines": document["orderLines"],
        "tasks": [],
    }
    view.update(fields)
    return view


def problem(status: int, title: str, detail: str, instance: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }


async def create(
    client: httpx2.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post("/api/orders", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# --- creating -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("flow")
async def test_a_bare_order_is_created_with_201_and_its_value(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    document = order_doc(start=False)

    response = await client.post("/api/orders", json=document, headers=acme)

    assert response.status_code == 201, response.text
    del document["start"]
    assert response.json() == stored_order(document)
    again = await client.get(f"/api/orders/{response.json()['id']}", headers=acme)
    assert again.json() == response.json()


@pytest.mark.usefixtures("flow")
async def test_a_wrapped_order_is_created_and_started(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
    gate: threading.Event,
) -> None:
    https_receiver.script("/orders", Reply(status=201, before=held_by(gate)))

    response = await client.post(
        "/api/orders", json={"order": order_doc(), "start": True}, headers=acme
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body == stored_order(order_doc(), status="IN_PROGRESS", tasks=body["tasks"])
    assert [(t["key"], t["stageKey"], t["handlerKey"]) for t in body["tasks"]] == [
        ("task-1", "stage-1", "consume-rest-api")
    ]
    assert body["tasks"][0]["status"] in ("PENDING", "RUNNING")
    await wait_for_requests(https_receiver, 1)
    gate.set()
    done = await wait_for_status(client, acme, body["id"], "SUCCESS", "FAILURE")
    assert done["status"] == "SUCCESS"
    assert done["endedAt"] == INSTANT


@pytest.mark.usefixtures("flow")
async def test_start_beside_a_wrapped_order_wins_over_the_default(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    body = await create(client, acme, {"order": order_doc(), "start": False})

    assert body["status"] == "CREATED"
    assert body["tasks"] == []


@pytest.mark.usefixtures("flow")
async def test_start_beside_a_wrapped_order_is_read_like_start_inside_it(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    """A string "false" does not start the order, wherever it stands; "maybe" is a 400."""
    bare = await create(client, acme, order_doc("BARE-1", start="false"))
    wrapped = await create(client, acme, {"order": order_doc("WRAP-1"), "start": "false"})
    invalid = await client.post(
        "/api/orders", json={"order": order_doc("WRAP-2"), "start": "maybe"}, headers=acme
    )

    assert (bare["status"], wrapped["status"]) == ("CREATED", "CREATED")
    assert invalid.status_code == 400
    assert [p["pointer"] for p in invalid.json()["problems"]] == ["/start"]
    listed = (await client.get("/api/orders", headers=acme)).json()["items"]
    assert sorted(o["thirdPartyOrderId"] for o in listed) == ["BARE-1", "WRAP-1"]


@pytest.mark.usefixtures("flow")
async def test_resending_the_same_order_answers_200_with_the_same_order(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    first = await create(client, acme, order_doc(start=False))

    again = await client.post("/api/orders", json=order_doc(start=False), headers=acme)
    wrapped = await client.post(
        "/api/orders", json={"order": order_doc(), "start": False}, headers=acme
    )

    assert again.status_code == 200, again.text
    assert again.json() == first
    assert wrapped.status_code == 200, wrapped.text
    assert wrapped.json()["id"] == first["id"]
    listed = (await client.get("/api/orders", headers=acme)).json()
    assert [order["id"] for order in listed["items"]] == [first["id"]]


@pytest.mark.usefixtures("flow")
async def test_the_same_third_party_id_with_another_body_is_a_409_problem(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    first = await create(client, acme, order_doc(start=False))
    changed = order_doc(start=False, data={"customerEmail": "someone@example.com"})

    response = await client.post("/api/orders", json=changed, headers=acme)

    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json() == problem(
        409,
        "Conflict",
        "an order with thirdPartyOrderId 'WEB-1001' already exists with a different body",
        "/api/orders",
    )
    stored = await client.get(f"/api/orders/{first['id']}", headers=acme)
    assert stored.json()["data"] == order_doc()["data"]


@pytest.mark.usefixtures("flow")
async def test_unknown_keys_inside_data_objects_are_kept_verbatim(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    document = order_doc(start=False)
    free = {
        "anything": {"goes": [1, 2.5, None, True, {"deep": {"deeper": ["x"]}}]},
        "with/slash~tilde": "ok",
        "ünïcødé": "ja",
        "empty": {},
        "numbers": [1.0, 0.1, -0.5, 12345678901234567890, 1e-7],
    }
    document["data"] = {**document["data"], **free}
    document["addresses"][0]["data"]["doorCode"] = {"digits": "1234#"}
    document["orderLines"][0]["data"] = {"erpLine": 7, "notes": ["a", "b"]}
    document["orderLines"][0]["items"][0]["data"]["engraving"] = {"text": "Jo", "font": None}
    document["orderLines"][0]["items"][0]["items"][0]["data"]["nested"] = {"level": 3}

    created = await create(client, acme, document)
    stored = (await client.get(f"/api/orders/{created['id']}", headers=acme)).json()

    def canonical(value: Any) -> str:  # 1.0 and 1 compare equal in Python, not here
        return json.dumps(value, sort_keys=True)

    for field in ("data", "addresses", "orderLines"):
        assert canonical(stored[field]) == canonical(document[field]), field


# --- refusing bad input ---------------------------------------------------------------------------


@pytest.mark.usefixtures("flow")
async def test_an_invalid_order_is_a_400_problem_listing_every_problem(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    document = order_doc(updateUrl="https://evil.example.com/feedback", colour="blue")
    del document["thirdPartyOrderId"]
    document["orderLines"][0]["items"][0]["assets"][0]["versions"][0]["date"] = 20260923

    response = await client.post("/api/orders", json=document, headers=acme)

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json() == problem(
        400,
        "Bad Request",
        "The order is invalid.",
        "/api/orders",
        problems=[
            {
                "pointer": "/thirdPartyOrderId",
                "message": "required field 'thirdPartyOrderId' is missing",
            },
            {
                "pointer": "/orderLines/0/items/0/assets/0/versions/0/date",
                "message": "must be a string",
            },
            {"pointer": "/updateUrl", "message": "unknown field 'updateUrl'"},
            {"pointer": "/colour", "message": "unknown field 'colour'"},
        ],
    )
    assert (await client.get("/api/orders", headers=acme)).json()["items"] == []


@pytest.mark.usefixtures("flow")
async def test_problems_in_a_wrapped_order_point_inside_order(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    document = order_doc()
    document["orderLines"][0]["deadline"] = "next tuesday"

    response = await client.post("/api/orders", json={"order": document}, headers=acme)

    assert response.status_code == 400
    assert response.json()["problems"] == [
        {
            "pointer": "/order/orderLines/0/deadline",
            "message": "must be an ISO 8601 date-time such as 2026-10-01T00:00:00.000Z",
        }
    ]


@pytest.mark.usefixtures("flow")
async def test_a_body_that_is_not_json_is_a_400_problem(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    response = await client.post(
        "/api/orders",
        content=b'{"spaceKey": "acme", ',
        headers={**acme, "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["problems"] == [
        {"pointer": "", "message": "the request body is not valid JSON"}
    ]


LIMIT_DETAIL = (
    "The request body is larger than the limit of 65536 bytes (ORDERMILL_MAX_BODY_BYTES)."
)


@pytest.mark.usefixtures("flow")
async def test_a_body_over_the_size_limit_is_a_413_problem(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    document = order_doc(data={"blob": "x" * 100 * 1024})

    response = await client.post("/api/orders", json=document, headers=acme)

    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json() == problem(413, "Content Too Large", LIMIT_DETAIL, "/api/orders")
    assert (await client.get("/api/orders", headers=acme)).json()["items"] == []


@pytest.mark.usefixtures("flow")
async def test_a_streamed_body_without_content_length_is_limited_too(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"spaceKey": "acme", "data": {"blob": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}}'

    response = await client.post(
        "/api/orders", content=chunks(), headers={**acme, "Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json() == problem(413, "Content Too Large", LIMIT_DETAIL, "/api/orders")
    assert (await client.get("/api/orders", headers=acme)).json()["items"] == []


async def test_an_order_for_an_unknown_space_is_a_404_problem(
    client: httpx2.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post("/api/orders", json=order_doc(spaceKey="nowhere"), headers=admin)

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json() == problem(
        404, "Not Found", "space 'nowhere' does not exist", "/api/orders"
    )


@pytest.mark.usefixtures("flow")
async def test_an_order_for_an_unknown_flow_is_a_404_problem(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    response = await client.post(
        "/api/orders", json=order_doc(flow_key="no-such-flow"), headers=acme
    )

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json() == problem(
        404, "Not Found", "flow 'no-such-flow' does not exist in space 'acme'", "/api/orders"
    )


MISSING_KEY = "A valid API key is required (Authorization: Bearer <key>)."
UNKNOWN_KEY = "The API key is unknown or revoked."


async def test_the_api_needs_a_valid_api_key(client: httpx2.AsyncClient) -> None:
    """No key, a key in another scheme, and a key nobody issued are each a 401 problem."""
    for headers, detail in (
        ({}, MISSING_KEY),
        ({"Authorization": "Basic YWNtZTphY21l"}, MISSING_KEY),
        ({"Authorization": "Bearer om_not-a-real-key"}, UNKNOWN_KEY),
    ):
        for response in (
            await client.post("/api/orders", json=order_doc(), headers=headers),
            await client.get("/api/orders", headers=headers),
            await client.get("/api/orders/ord_x/events", headers=headers),
            await client.post(
                "/api/flows", json=flow_doc("https://x.example.com"), headers=headers
            ),
            await client.get("/api/handlers", headers=headers),
        ):
            path = response.request.url.path
            assert response.status_code == 401, (headers, path)
            assert response.headers["content-type"] == PROBLEM_JSON
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json() == problem(401, "Unauthorized", detail, path)


# --- operator actions -----------------------------------------------------------------------------


@pytest.mark.usefixtures("flow")
async def test_a_created_order_runs_once_started(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
    gate: threading.Event,
) -> None:
    https_receiver.script("/orders", Reply(status=201, before=held_by(gate)))
    created = await create(client, acme, order_doc(start=False))
    assert created["status"] == "CREATED"

    started = await client.post(f"/api/orders/{created['id']}/start", headers=acme)

    assert started.status_code == 200, started.text
    assert started.json()["status"] == "IN_PROGRESS"
    await wait_for_requests(https_receiver, 1)
    gate.set()
    done = await wait_for_status(client, acme, created["id"], "SUCCESS", "FAILURE")
    assert done["status"] == "SUCCESS"
    again = await client.post(f"/api/orders/{created['id']}/start", headers=acme)
    assert again.status_code == 409
    assert again.json()["detail"] == "only CREATED orders can be started; this one is SUCCESS"
    events = (await client.get(f"/api/orders/{created['id']}/events", headers=acme)).json()
    starts = [e for e in events["items"] if e["type"] == "order.started"]
    assert [(e["actor"], e["data"]) for e in starts] == [
        (f"api-key:{bearer_prefix(acme)}… (test)", None)
    ]


@pytest.mark.usefixtures("flow")
async def test_cancelling_twice_is_a_409_problem(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    created = await create(client, acme, order_doc(start=False))

    cancelled = await client.post(f"/api/orders/{created['id']}/cancel", headers=acme)
    again = await client.post(f"/api/orders/{created['id']}/cancel", headers=acme)

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == stored_order(
        order_doc(), id=created["id"], status="CANCELLED", endedAt=INSTANT
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM_JSON
    assert again.json()["detail"] == "a CANCELLED order cannot be cancelled"
    start = await client.post(f"/api/orders/{created['id']}/start", headers=acme)
    assert start.status_code == 409


@pytest.mark.usefixtures("flow")
async def test_cancelling_a_running_order_cancels_its_task(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
    gate: threading.Event,
) -> None:
    https_receiver.script("/orders", Reply(status=201, before=held_by(gate)))
    created = await create(client, acme, order_doc())
    [request] = await wait_for_requests(https_receiver, 1)

    cancelled = await client.post(f"/api/orders/{created['id']}/cancel", headers=acme)

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED"
    assert [(t["key"], t["status"]) for t in cancelled.json()["tasks"]] == [("task-1", "CANCELLED")]
    update_path = urlsplit(request.json()["order"]["updateUrl"]).path
    feedback = await client.post(update_path, json={"status": "success"})
    assert feedback.status_code == 409
    assert feedback.json()["detail"] == "the order was cancelled; feedback is no longer accepted"
    retry = await client.post(f"/api/orders/{created['id']}/retry", headers=acme)
    assert retry.status_code == 409


@pytest.mark.usefixtures("flow")
async def test_the_same_order_posted_concurrently_is_stored_once(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    responses = await asyncio.gather(
        *(client.post("/api/orders", json=order_doc(start=False), headers=acme) for _ in range(4))
    )

    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201], [
        r.text for r in responses
    ]
    assert len({r.json()["id"] for r in responses}) == 1
    listed = (await client.get("/api/orders", headers=acme)).json()["items"]
    assert [o["id"] for o in listed] == [responses[0].json()["id"]]


@pytest.mark.usefixtures("flow")
async def test_one_id_posted_concurrently_with_two_bodies_is_stored_once_and_refused_once(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    first, second = await asyncio.gather(
        client.post("/api/orders", json=order_doc(start=False), headers=acme),
        client.post("/api/orders", json=order_doc(start=False, data={"other": True}), headers=acme),
    )

    assert sorted([first.status_code, second.status_code]) == [201, 409]
    winner = first if first.status_code == 201 else second
    listed = (await client.get("/api/orders", headers=acme)).json()["items"]
    assert [o["id"] for o in listed] == [winner.json()["id"]]


async def test_actions_on_an_unknown_order_are_404_problems(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    for action in ("start", "cancel", "retry"):
        response = await client.post(f"/api/orders/ord_unknown/{action}", headers=acme)
        assert response.status_code == 404
        assert response.json()["detail"] == "order 'ord_unknown' does not exist"


# --- reading --------------------------------------------------------------------------------------


async def test_listing_filters_by_status_flow_and_third_party_id(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    for key in ("made-to-order", "express"):
        flow = flow_doc(https_receiver.url("/orders"), key=key)
        assert (await client.post("/api/flows", json=flow, headers=acme)).status_code == 201
    first = await create(client, acme, order_doc("A-1", start=False))
    express = await create(client, acme, order_doc("B-1", flow_key="express", start=False))
    running = await create(client, acme, order_doc("C-1"))
    await wait_for_status(client, acme, running["id"], "SUCCESS")

    async def ids(query: str) -> list[str]:
        response = await client.get(f"/api/orders?{query}", headers=acme)
        assert response.status_code == 200, response.text
        assert response.json()["nextCursor"] is None
        return [order["id"] for order in response.json()["items"]]

    assert await ids("") == [running["id"], express["id"], first["id"]]
    assert await ids("status=CREATED") == [express["id"], first["id"]]
    assert await ids("status=SUCCESS") == [running["id"]]
    assert await ids("status=SUCCESS&status=CREATED") == [
        running["id"],
        express["id"],
        first["id"],
    ]
    assert await ids("status=FAILURE") == []
    assert await ids("flowKey=express") == [express["id"]]
    assert await ids("flowKey=made-to-order&status=CREATED") == [first["id"]]
    assert await ids("thirdPartyOrderId=A-1") == [first["id"]]
    assert await ids("thirdPartyOrderId=Z-9") == []


@pytest.mark.usefixtures("flow")
async def test_listing_filters_by_creation_time_given_with_a_time_zone(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    created = await create(client, acme, order_doc(start=False))

    async def ids(query: str) -> list[str]:
        response = await client.get("/api/orders", params=query, headers=acme)
        assert response.status_code == 200, response.text
        return [order["id"] for order in response.json()["items"]]

    assert await ids("createdFrom=2000-01-01T00:00:00Z") == [created["id"]]
    assert await ids("createdTo=2000-01-01T00:00:00Z") == []
    assert await ids("createdFrom=2000-01-01T00:00:00Z&createdTo=2999-01-01T00:00:00%2B02:00") == [
        created["id"]
    ]
    naive = await client.get("/api/orders?createdFrom=2000-01-01T00:00:00", headers=acme)
    assert naive.status_code == 400
    assert naive.json()["problems"] == [
        {"pointer": "", "message": "query parameter createdFrom: give a time zone, e.g. Z"}
    ]


async def test_listing_with_an_unknown_status_is_a_400_problem(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    response = await client.get("/api/orders?status=DONE", headers=acme)

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
    assert [p["pointer"] for p in response.json()["problems"]] == ["/status/0"]


@pytest.mark.usefixtures("flow")
async def test_cursor_pagination_walks_every_order_newest_first_without_repeats(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    created = [
        (await create(client, acme, order_doc(f"P-{n}", start=False)))["id"] for n in range(5)
    ]

    pages: list[list[str]] = []
    cursor: str | None = None
    for _ in range(5):  # bounded: three pages are expected
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(f"/api/orders?{query}", headers=acme)).json()
        pages.append([order["id"] for order in page["items"]])
        cursor = page["nextCursor"]
        if cursor is None:
            break

    newest_first = list(reversed(created))
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:5]]
    listed = (await client.get("/api/orders?limit=2", headers=acme)).json()
    assert listed["nextCursor"] == newest_first[1]
    assert [o["thirdPartyOrderId"] for o in listed["items"]] == ["P-4", "P-3"]
    assert "tasks" not in listed["items"][0]


@pytest.mark.usefixtures("flow")
async def test_the_timeline_records_creation_then_each_task_step_in_order(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    created = await create(client, acme, order_doc())
    order = await wait_for_status(client, acme, created["id"], "SUCCESS", "FAILURE")
    assert order["status"] == "SUCCESS"

    response = await client.get(f"/api/orders/{created['id']}/events", headers=acme)

    assert response.status_code == 200
    events = response.json()["items"]
    actor = f"api-key:{bearer_prefix(acme)}… (test)"
    assert [(e["type"], e["taskKey"], e["actor"], e["data"]) for e in events] == [
        ("order.created", None, actor, {"flowVersion": 1}),
        ("order.started", None, actor, None),
        ("stage.started", None, None, {"stage": "stage-1"}),
        ("task.queued", "task-1", None, None),
        ("task.running", "task-1", None, {"attempt": 1}),
        ("task.succeeded", "task-1", None, {"attempt": 1}),
        ("order.status", None, "engine", {"from": "IN_PROGRESS", "to": "SUCCESS"}),
    ]
    assert all(e["at"] == INSTANT for e in events)
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert order["tasks"] == [
        {
            "key": "task-1",
            "stageKey": "stage-1",
            "handlerKey": "consume-rest-api",
            "status": "SUCCEEDED",
            "attempts": 1,
            "dueAt": None,
            "deliveryId": DELIVERY_ID,
            "result": {"statusCode": 201},
            "error": None,
            "createdAt": INSTANT,
            "updatedAt": INSTANT,
            "endedAt": INSTANT,
        }
    ]


async def test_reading_an_unknown_order_is_a_404_problem(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    for path in ("", "/events", "/tasks/task-1/attempts"):
        response = await client.get(f"/api/orders/ord_unknown{path}", headers=acme)
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["detail"] == "order 'ord_unknown' does not exist"


@pytest.mark.usefixtures("flow")
async def test_attempts_of_an_unknown_task_are_a_404_problem(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    created = await create(client, acme, order_doc(start=False))

    response = await client.get(
        f"/api/orders/{created['id']}/tasks/no-such-task/attempts", headers=acme
    )

    assert response.status_code == 404
    assert response.json()["detail"] == f"order {created['id']!r} has no task 'no-such-task'"
