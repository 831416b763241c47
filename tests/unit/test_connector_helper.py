"""ordermill.connector: verify and parse connector requests (Standard Webhooks v1)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from ordermill.connector import (
    InvalidSecret,
    PayloadError,
    SignatureError,
    parse,
    sign_headers,
    verify,
)

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER = "whsec_" + base64.b64encode(b"o" * 32).decode()
DELIVERY = "dlv_01jq4e5v2yq8m9x0b1c2d3e4f5"


def reference_order() -> dict[str, Any]:
    """The documented shape ("Make your own connector") with every field filled in."""
    return {
        "spaceKey": "acme",
        "flowKey": "made-to-order",
        "thirdPartyOrderId": "WEB-1001",
        "updateUrl": "https://ordermill.example.com/api/feedback/tok_abc",
        "addresses": [
            {"addressType": "postal", "purpose": "shipping", "data": {"city": "Gent", "x": [1]}}
        ],
        "data": {"customerEmail": "jo@example.com", "somethingNew": {"nested": True}},
        "orderLines": [
            {
                "orderId": "WEB-1001-1",
                "title": "Custom bracelet",
                "data": {"giftWrap": True},
                "items": [
                    {
                        "id": "kit",
                        "data": {"size": "M"},
                        "tags": ["3dprint"],
                        "items": [
                            {
                                "id": "clasp",
                                "data": {"unknownKey": 1},
                                "tags": [],
                                "items": [],
                                "assets": [
                                    {
                                        "id": "clasp-stl",
                                        "url": "https://files.example.com/clasp.stl",
                                        "isPublic": True,
                                        "versions": [],
                                    }
                                ],
                                "isAsset": False,
                            }
                        ],
                        "assets": [
                            {
                                "id": "kit-stl",
                                "url": "https://files.example.com/kit.stl",
                                "isPublic": False,
                                "versions": [
                                    {
                                        "url": "https://f.example.com/v2",
                                        "date": "2020-09-24T10:00:00Z",
                                    },
                                    {
                                        "url": "https://f.example.com/v1",
                                        "date": "2020-09-23T14:23:17.580Z",
                                    },
                                ],
                            }
                        ],
                        "isAsset": True,
                    }
                ],
                "deadline": "2020-09-23T14:23:17.580Z",
                "amountOfUnits": 2,
                "valuePerUnit": 49.5,
            }
        ],
    }


def body_of(order: dict[str, Any] | None = None, **extra: Any) -> bytes:
    context = {
        "orderId": "ord_1",
        "stageKey": "intake",
        "taskKey": "notify",
        "deliveryId": DELIVERY,
    }
    document = {"order": order or reference_order(), "context": context, **extra}
    return json.dumps(document, separators=(",", ":")).encode()


def library_headers(
    body: bytes, *, secret: str = SECRET, at: datetime | None = None
) -> dict[str, str]:
    """Headers made by the standardwebhooks package itself, not by our sign_headers."""
    moment = at or datetime.now(UTC)
    return {
        "webhook-id": DELIVERY,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(DELIVERY, moment, body.decode()),
    }


def test_verify_accepts_a_request_signed_by_the_standardwebhooks_package() -> None:
    body = body_of()
    headers = {**library_headers(body), "ordermill-attempt": "2"}
    request = verify(body, headers, SECRET)
    assert (request.delivery_id, request.attempt) == (DELIVERY, 2)
    assert request.order.third_party_order_id == "WEB-1001"
    assert request.context.task_key == "notify"
    assert request.timestamp == datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)


def test_verify_matches_header_names_case_insensitively() -> None:
    body = body_of()
    headers = {name.title(): value for name, value in library_headers(body).items()}
    assert verify(body, headers, SECRET).delivery_id == DELIVERY


def test_verify_refuses_a_tampered_body() -> None:
    body = body_of()
    headers = library_headers(body)
    with pytest.raises(SignatureError, match="No signature matches"):
        verify(body.replace(b"WEB-1001", b"WEB-6666"), headers, SECRET)


def test_verify_refuses_a_request_signed_with_another_secret() -> None:
    body = body_of()
    with pytest.raises(SignatureError):
        verify(body, library_headers(body, secret=OTHER), SECRET)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_verify_refuses_a_request_without_a_signature_header(missing: str) -> None:
    body = body_of()
    headers = library_headers(body)
    del headers[missing]
    with pytest.raises(SignatureError, match=f"no {missing} header"):
        verify(body, headers, SECRET)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("webhook-signature", "v1"),
        ("webhook-signature", "garbage"),
        ("webhook-signature", "v1,***not-base64***"),
        ("webhook-signature", "v1,abc"),  # bad padding: the library would raise binascii.Error
        ("webhook-signature", "v2,c2ln v1a,c2ln"),
        ("webhook-signature", ",,, ,"),
        ("webhook-timestamp", "yesterday"),
        ("webhook-timestamp", "1.7e9"),
        ("webhook-timestamp", "-1700000000"),
        ("webhook-timestamp", "٣٣٣٣٣٣٣٣٣٣"),  # Arabic-Indic digits: str.isdigit() says yes
        ("webhook-timestamp", "99999999999999999999999"),
    ],
)
def test_verify_turns_malformed_headers_into_signature_errors(name: str, value: str) -> None:
    body = body_of()
    headers = {**library_headers(body), name: value}
    with pytest.raises(SignatureError) as caught:
        verify(body, headers, SECRET)
    assert not isinstance(caught.value, ValueError)


def test_verify_refuses_a_body_that_is_not_utf8() -> None:
    body = b"\xff\xfe not utf-8"
    headers = {
        **library_headers(b"x"),
        "webhook-signature": "v1," + base64.b64encode(b"s" * 32).decode(),
    }
    with pytest.raises(SignatureError, match="not UTF-8"):
        verify(body, headers, SECRET)


@pytest.mark.parametrize("age", [timedelta(minutes=6), timedelta(hours=1), -timedelta(minutes=6)])
def test_verify_refuses_a_timestamp_outside_the_tolerance(age: timedelta) -> None:
    body = body_of()
    headers = library_headers(body, at=datetime.now(UTC) - age)
    with pytest.raises(SignatureError, match="webhook-timestamp is"):
        verify(body, headers, SECRET)


def test_verify_tolerance_is_adjustable() -> None:
    body = body_of()
    headers = library_headers(body, at=datetime.now(UTC) - timedelta(minutes=10))
    assert verify(body, headers, SECRET, tolerance=timedelta(minutes=15)).delivery_id == DELIVERY


def test_verify_accepts_when_one_of_two_rotation_signatures_matches() -> None:
    body = body_of()
    old, new = library_headers(body, secret=OTHER), library_headers(body, secret=SECRET)
    both = {**new, "webhook-signature": f"{old['webhook-signature']} {new['webhook-signature']}"}
    assert verify(body, both, SECRET).delivery_id == DELIVERY
    assert verify(body, both, OTHER).delivery_id == DELIVERY


def test_verify_accepts_any_of_several_receiver_secrets() -> None:
    body = body_of()
    assert verify(body, library_headers(body, secret=OTHER), [SECRET, OTHER]).order.flow_key


@pytest.mark.parametrize("secret", ["whsec_", "whsec_***", "", []])
def test_verify_reports_an_unusable_secret(secret: Any) -> None:
    body = body_of()
    with pytest.raises(InvalidSecret):
        verify(body, library_headers(body), secret)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"order": {"spaceKey": "acme"}, "context": {}}', "/order/flowKey: Field required"),
    ],
)
def test_verify_reports_a_signed_body_that_is_not_an_order(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        verify(body, library_headers(body), SECRET)


def test_sign_headers_are_accepted_by_the_standardwebhooks_package() -> None:
    body = body_of()
    headers = sign_headers(body, DELIVERY, [OTHER, SECRET])
    assert Webhook(SECRET).verify(body, headers) == json.loads(body)
    assert Webhook(OTHER).verify(body, headers) == json.loads(body)
    assert headers["webhook-signature"].count("v1,") == 2


def test_parse_round_trips_the_reference_shape() -> None:
    """Nested items, assets and versions survive; unknown keys inside data are kept."""
    order = reference_order()
    request = parse(body_of({**order, "addedLater": "ignored"}, extraTopLevel=1))
    dumped = request.order.model_dump(mode="json")
    assert dumped["orderLines"][0]["items"][0]["items"][0]["data"] == {"unknownKey": 1}
    assert dumped["data"] == order["data"]
    assert "addedLater" not in dumped
    assert request.raw["order"]["addedLater"] == "ignored"
    assert json.loads(request.order.model_dump_json())["thirdPartyOrderId"] == "WEB-1001"
    # Dates come back as pydantic writes datetimes: with microseconds.
    assert dumped == json.loads(json.dumps(order).replace("17.580Z", "17.580000Z"))
    assert (request.delivery_id, request.attempt, request.timestamp) == (DELIVERY, None, None)


def test_order_helpers_walk_nested_items_and_pick_the_latest_asset_version() -> None:
    order = parse(body_of()).order
    assert [item.id for item in order.all_items()] == ["kit", "clasp"]
    assert [asset.download_url for asset in order.all_assets()] == [
        "https://f.example.com/v2",
        "https://files.example.com/clasp.stl",
    ]


def test_parse_reads_unverified_headers_when_given() -> None:
    request = parse(
        body_of(),
        {"Webhook-Id": "msg_x", "webhook-timestamp": "1700000000", "ordermill-attempt": "3"},
    )
    assert (request.delivery_id, request.attempt) == ("msg_x", 3)
    assert request.timestamp == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
