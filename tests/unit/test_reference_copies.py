"""The copies of the reference page's examples under tests/fixtures/reference/ match the page."""

from __future__ import annotations

import copy
import os

import pytest

from tests.support.factories import order_doc
from tests.support.reference import (
    BODY_FILE,
    FLOW_FILE,
    PAGE,
    TASK_FILE,
    connector_body,
    copied_blocks,
    copy_text,
    shape_problems,
)


def test_the_copies_are_the_pages_examples_character_for_character() -> None:
    if not PAGE.exists():
        reason = f"{PAGE} is missing: the reference page lives beside the clone in ../shared"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    blocks = copied_blocks(PAGE.read_text())
    assert sorted(blocks) == sorted([BODY_FILE, FLOW_FILE, TASK_FILE])
    assert {name: copy_text(name) for name in blocks} == blocks


def documented_body() -> dict[str, object]:
    """A body as ordermill sends it for `order_doc`, without ordermill's `context`."""
    order = copy.deepcopy(order_doc("WEB-1"))
    order["updateUrl"] = "https://orders.example.com/api/feedback/abc"
    return {"order": order}


def test_a_body_in_the_documented_format_has_the_pages_shape() -> None:
    assert shape_problems(connector_body(), documented_body()) == []


def test_the_shape_check_names_a_missing_member_a_wrong_type_and_a_time_format() -> None:
    body = documented_body()
    order = body["order"]
    assert isinstance(order, dict)
    del order["updateUrl"]
    line = order["orderLines"][0]
    line["amountOfUnits"] = "2"
    line["items"][0]["assets"][0]["versions"][0]["date"] = "2026-09-23T14:23:17.580+00:00"
    line["items"][0]["items"][0]["isAsset"] = "yes"

    assert shape_problems(connector_body(), body) == [
        "/order: members ['addresses', 'data', 'flowKey', 'orderLines', 'spaceKey', "
        "'thirdPartyOrderId'], the page has ['addresses', 'data', 'flowKey', 'orderLines', "
        "'spaceKey', 'thirdPartyOrderId', 'updateUrl']",
    ]
    order["updateUrl"] = "https://orders.example.com/api/feedback/abc"
    assert shape_problems(connector_body(), body) == [
        "/order/orderLines/0/items/0/items/0/isAsset: a boolean expected, got 'yes'",
        "/order/orderLines/0/items/0/assets/0/versions/0/date: a time like "
        "2020-09-23T14:23:17.580Z expected, got '2026-09-23T14:23:17.580+00:00'",
        "/order/orderLines/0/amountOfUnits: a number expected, got '2'",
    ]
