"""Hostile input from a valid key (or from nobody) is a 400/404/413 problem naming where, never a
500: JSON limits, out-of-range values, NUL characters, coerced payload fields (issue 10 §4), on
both databases. The limits are those of docs/reference/limits.md."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx2
import pytest

from ordermill.jsoncodec import MAX_DEPTH, MAX_NUMBER_CHARS
from ordermill.service import Service
from tests.integration.conftest import sign_in_owner
from tests.support.factories import flow_doc, order_doc

PROBLEM_JSON = "application/problem+json"
UNREACHED = "https://example.invalid/orders"  # orders here are never started


def nested(levels: int) -> str:
    """``levels`` arrays inside each other, as text (the standard library cannot write it)."""
    return "[" * levels + "]" * levels


def order_text(**replace: str) -> str:
    """The reference order as JSON text, with the named top-level values spliced in verbatim."""
    document = order_doc(start=False)
    marks = {name: f"@@{name}@@" for name in replace}
    document.update(marks)
    text = json.dumps(document)
    for name, raw in replace.items():
        text = text.replace(json.dumps(marks[name]), raw)
    return text


def refused(response: httpx2.Response, status: int = 400) -> list[dict[str, str]]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problems: list[dict[str, str]] = response.json().get("problems", [])
    return problems


async def post_raw(
    client: httpx2.AsyncClient, path: str, text: str, headers: dict[str, str]
) -> httpx2.Response:
    return await client.post(
        path, content=text.encode(), headers={**headers, "content-type": "application/json"}
    )


@pytest.fixture
async def flow(client: httpx2.AsyncClient, acme: dict[str, str]) -> None:
    response = await client.post("/api/flows", json=flow_doc(UNREACHED), headers=acme)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("levels", [256, 1000, 3000])
async def test_deeply_nested_order_data_is_refused_at_its_pointer(
    client: httpx2.AsyncClient, acme: dict[str, str], flow: None, levels: int
) -> None:
    response = await post_raw(client, "/api/orders", order_text(data=nested(levels)), acme)
    [problem] = refused(response)
    assert problem["pointer"] == "/data" + "/0" * (MAX_DEPTH - 1)
    assert problem["message"] == f"nesting deeper than {MAX_DEPTH} levels"


async def test_feedback_nested_3000_levels_is_a_400_before_any_token_check(
    client: httpx2.AsyncClient,
) -> None:
    response = await post_raw(client, "/api/feedback/no-such-token", nested(3000), {})
    [problem] = refused(response)
    assert problem["message"] == f"nesting deeper than {MAX_DEPTH} levels"


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/flows", "POST"),
        ("/api/flows/validate", "POST"),
        ("/api/flows/deep", "PUT"),
        ("/api/spaces/acme/api-keys", "POST"),
        ("/api/orders/retry", "POST"),
    ],
)
async def test_every_json_route_bounds_nesting(
    client: httpx2.AsyncClient, acme: dict[str, str], path: str, method: str
) -> None:
    text = '{"name": ' + nested(500) + "}"
    response = await client.request(
        method, path, content=text, headers={**acme, "content-type": "application/json"}
    )
    [problem] = refused(response)
    assert problem["pointer"].startswith("/name/0/0")


async def test_a_number_of_4000_digits_is_refused(
    client: httpx2.AsyncClient, acme: dict[str, str], flow: None
) -> None:
    document = order_doc(start=False)
    text = json.dumps(document).replace('"amountOfUnits": 2', '"amountOfUnits": ' + "9" * 4000)
    [problem] = refused(await post_raw(client, "/api/orders", text, acme))
    assert problem == {
        "pointer": "/orderLines/0/amountOfUnits",
        "message": f"a number longer than {MAX_NUMBER_CHARS} characters",
    }


@pytest.mark.parametrize(
    ("amount", "value"), [("1e308", "1e308"), ("1e999", "1"), ("NaN", "1"), ("2", "Infinity")]
)
async def test_overflowing_and_non_finite_numbers_are_refused(
    client: httpx2.AsyncClient, acme: dict[str, str], flow: None, amount: str, value: str
) -> None:
    text = (
        json.dumps(order_doc(start=False))
        .replace('"amountOfUnits": 2', f'"amountOfUnits": {amount}')
        .replace('"valuePerUnit": 49.5', f'"valuePerUnit": {value}')
    )
    [problem] = refused(await post_raw(client, "/api/orders", text, acme))
    assert problem["pointer"].startswith("/orderLines")


async def test_nan_in_data_is_refused_not_stored_as_null(
    client: httpx2.AsyncClient, acme: dict[str, str], flow: None
) -> None:
    text = order_text(data='{"a": [1, NaN]}')
    [problem] = refused(await post_raw(client, "/api/orders", text, acme))
    assert problem == {
        "pointer": "/data/a/1",
        "message": "must be a finite number (NaN and Infinity are not JSON)",
    }


@pytest.mark.parametrize("deadline", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"])
async def test_deadlines_outside_the_utc_calendar_are_refused(
    client: httpx2.AsyncClient, acme: dict[str, str], flow: None, deadline: str
) -> None:
    document = order_doc(start=False)
    document["orderLines"][0]["deadline"] = deadline
    [problem] = refused(await client.post("/api/orders", json=document, headers=acme))
    assert problem["pointer"] == "/orderLines/0/deadline"
    assert problem["message"] == "must fall between years 0001 and 9999 in UTC"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/flows/made-to-order/versions/{n}"),
        ("GET", "/api/assets/{n}/download"),
        ("DELETE", "/api/spaces/acme/api-keys/{n}"),
    ],
)
@pytest.mark.parametrize("number", [2**63, 10**30, -(2**63) - 1])
async def test_integers_beyond_bigint_in_paths_are_a_400(
    client: httpx2.AsyncClient, acme: dict[str, str], method: str, path: str, number: int
) -> None:
    response = await client.request(method, path.format(n=number), headers=acme)
    [problem] = refused(response)
    assert problem["message"].startswith("path parameter: must be at")


@pytest.mark.parametrize("number", [2**31, 2**63 - 1])
async def test_a_flow_version_no_column_could_hold_is_not_found(
    client: httpx2.AsyncClient, acme: dict[str, str], flow: None, number: int
) -> None:
    """Versions are INTEGER columns: a larger number names no version (404), on every database,
    whether it comes in the path or in a dry run's body."""
    by_path = await client.get(f"/api/flows/made-to-order/versions/{number}", headers=acme)
    dry = await client.post(
        "/api/flows/dry-run",
        json={"flowKey": "made-to-order", "version": number, "order": order_doc(start=False)},
        headers=acme,
    )
    for response in (by_path, dry):
        assert response.status_code == 404, response.text
        assert response.json()["detail"] == f"flow version {number} does not exist"


@pytest.mark.parametrize(
    "where", ["thirdPartyOrderId", "data key", "data value", "nested data value"]
)
async def test_nul_in_order_text_is_refused_on_every_database(
    client: httpx2.AsyncClient, acme: dict[str, str], flow: None, where: str
) -> None:
    document = order_doc(start=False)
    pointer = {
        "thirdPartyOrderId": "/thirdPartyOrderId",
        "data key": "/data/a\x00b",
        "data value": "/data/note",
        "nested data value": "/orderLines/0/data/x/0",
    }[where]
    if where == "thirdPartyOrderId":
        document["thirdPartyOrderId"] = "WEB-\x00-1"
    elif where == "data key":
        document["data"] = {"a\x00b": 1}
    elif where == "data value":
        document["data"] = {"note": "a\x00b"}
    else:
        document["orderLines"][0]["data"] = {"x": ["\x00"]}
    [problem] = refused(await client.post("/api/orders", json=document, headers=acme))
    assert problem["pointer"] == pointer
    assert "NUL character (U+0000)" in problem["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/orders?thirdPartyOrderId=WEB%001",
        "/api/orders?flowKey=%00",
        "/api/orders/ord_%00x",
        "/api/flows/made%00to-order",
        "/api/confirmations/dlv%00",
    ],
)
async def test_nul_in_a_query_or_path_is_a_400(
    client: httpx2.AsyncClient, acme: dict[str, str], path: str
) -> None:
    [problem] = refused(await client.get(path, headers=acme))
    assert "NUL character (U+0000)" in problem["message"]


async def test_duplicate_keys_are_refused_not_last_wins(
    client: httpx2.AsyncClient, acme: dict[str, str], flow: None
) -> None:
    text = '{"spaceKey": "beta", ' + json.dumps(order_doc(start=False))[1:]
    [problem] = refused(await post_raw(client, "/api/orders", text, acme))
    assert problem == {"pointer": "/spaceKey", "message": "duplicate key 'spaceKey'"}
    text = '{"key": "a", "name": "first", "name": "second"}'
    response = await post_raw(client, "/api/spaces", text, {"Authorization": "Bearer x"})
    assert refused(response) == [{"pointer": "/name", "message": "duplicate key 'name'"}]


@pytest.mark.parametrize("cursor", ["garbage", "ord_" + "!" * 26, "'; drop table orders; --"])
async def test_a_garbage_cursor_is_a_400(
    client: httpx2.AsyncClient, acme: dict[str, str], cursor: str
) -> None:
    response = await client.get("/api/orders", params={"cursor": cursor}, headers=acme)
    [problem] = refused(response)
    assert problem["message"].startswith("query parameter: must match")


async def test_a_real_cursor_still_pages(
    client: httpx2.AsyncClient, acme: dict[str, str], flow: None
) -> None:
    for number in range(3):
        document = order_doc(f"WEB-{number}", start=False)
        assert (await client.post("/api/orders", json=document, headers=acme)).status_code == 201
    first = (await client.get("/api/orders", params={"limit": 2}, headers=acme)).json()
    cursor = first["nextCursor"]
    second = await client.get("/api/orders", params={"limit": 2, "cursor": cursor}, headers=acme)
    assert [o["thirdPartyOrderId"] for o in second.json()["items"]] == ["WEB-0"]


async def test_wide_integers_within_the_limit_are_kept_exactly(
    client: httpx2.AsyncClient, acme: dict[str, str], flow: None
) -> None:
    """In the 201 (built from what was posted) and in the stored order read again."""
    wide = 10**38 + 7
    text = order_text(data=f'{{"serial": {wide}, "negative": {-wide}, "small": 1.5}}')
    created = await post_raw(client, "/api/orders", text, acme)
    assert created.status_code == 201, created.text
    expected = {"serial": wide, "negative": -wide, "small": 1.5}
    assert json.loads(created.text)["data"] == expected
    read = await client.get(f"/api/orders/{created.json()['id']}", headers=acme)
    assert json.loads(read.text)["data"] == expected


@pytest.mark.parametrize(
    ("task", "pointer", "message"),
    [
        (
            {"payload": {"uri": UNREACHED, "sendsFeedback": "yes"}},
            "/stages/0/taskDefinitions/0/payload/sendsFeedback",
            "must be true or false",
        ),
        (
            {"handlerKey": "wait", "payload": {"durationMs": "1500"}},
            "/stages/0/taskDefinitions/0/payload/durationMs",
            "must be an integer",
        ),
        (
            {"handlerKey": "wait", "payload": {"durationMs": 1500.0}},
            "/stages/0/taskDefinitions/0/payload/durationMs",
            "must be an integer",
        ),
    ],
)
async def test_handler_payload_fields_are_not_coerced(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    task: dict[str, Any],
    pointer: str,
    message: str,
) -> None:
    document = flow_doc(UNREACHED, **task)
    response = await client.post("/api/flows/validate", json=document, headers=acme)
    assert response.status_code == 200, response.text
    problems = [{"pointer": pointer, "message": message}]
    assert response.json() == {"valid": False, "problems": problems}
    refused(await client.post("/api/flows", json=document, headers=acme))


async def test_a_deeply_nested_flash_cookie_is_ignored_not_a_500(
    client: httpx2.AsyncClient,
) -> None:
    nested_flash = base64.urlsafe_b64encode(nested(1500).encode()).decode()
    client.cookies.set("ordermill_flash", nested_flash)
    response = await client.get("/signin")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]


CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


async def csrf_of(client: httpx2.AsyncClient, path: str) -> str:
    page = await client.get(path)
    token = CSRF_FIELD.search(page.text)
    assert token is not None, page.text
    return token.group(1)


async def test_the_flow_editor_refuses_deep_json_with_a_problem_not_a_500(
    client: httpx2.AsyncClient, acme: dict[str, str], flow: None, service: Service
) -> None:
    await sign_in_owner(service, client)
    token = await csrf_of(client, "/flows/made-to-order")

    response = await client.post(
        "/flows/made-to-order/validate",
        data={"csrf": token, "name": "Made to order", "stages": nested(3000)},
    )

    assert response.status_code == 200, response.text
    assert f"nesting deeper than {MAX_DEPTH} levels" in response.text


@pytest.mark.parametrize("path", ["/?q=%00", "/orders/ord_%00", "/flows/a%00b"])
async def test_nul_in_a_page_path_or_query_is_a_400_page(
    client: httpx2.AsyncClient, acme: dict[str, str], path: str, service: Service
) -> None:
    await sign_in_owner(service, client)

    response = await client.get(path)

    assert response.status_code == 400, response.text
    assert "NUL character (U+0000)" in response.text


async def test_nul_in_a_form_field_is_a_400_page(
    client: httpx2.AsyncClient, acme: dict[str, str], service: Service
) -> None:
    await sign_in_owner(service, client)
    form = {"csrf": await csrf_of(client, "/settings"), "name": "bad\x00name"}

    response = await client.post("/settings/api-keys", data=form)

    assert response.status_code == 400, response.text
    assert "form field: contains the NUL character (U+0000)" in response.text
