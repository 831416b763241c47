"""The order page: the flow graph coloured by task status, the delivery log, and safe output."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.acceptance.conftest import Api, ServeProcess
from tests.browser.conftest import sign_in
from tests.support.factories import order_doc
from tests.support.receiver import HttpsReceiver, Reply

pytestmark = pytest.mark.browser

FAST_RETRY = {
    "maxAttempts": 5,
    "initialIntervalMs": 50,
    "backoffCoefficient": 1.0,
    "maxIntervalMs": 100,
}
FILL = {  # the classDef colours of ordermill.ui.graph, as the browser computes them
    "SUCCEEDED": "rgb(220, 252, 231)",
    "WAITING": "rgb(224, 231, 255)",
    "NOT_STARTED": "rgb(248, 250, 252)",
}


def three_task_flow(uri: str) -> dict[str, object]:
    """A connector task, then a long timer (WAITING); a second stage that cannot start yet."""
    return {
        "key": "graph-flow",
        "name": "Graph flow",
        "stages": [
            {
                "key": "intake",
                "initialTaskDefinitionKeys": ["notify-erp"],
                "taskDefinitions": [
                    {
                        "key": "notify-erp",
                        "handlerKey": "consume-rest-api",
                        "payload": {"uri": uri, "sendsFeedback": False},
                        "timeoutDuration": 5000,
                        "retry": FAST_RETRY,
                        "next": ["cool-down"],
                    },
                    {
                        "key": "cool-down",
                        "handlerKey": "wait",
                        "payload": {"durationMs": 600_000},
                        "next": [],
                    },
                ],
            },
            {
                "key": "ship",
                "initialTaskDefinitionKeys": ["ship-it"],
                "taskDefinitions": [
                    {
                        "key": "ship-it",
                        "handlerKey": "consume-rest-api",
                        "payload": {"uri": uri},
                        "next": [],
                    }
                ],
            },
        ],
    }


def node_fill(page: Page, task_key: str) -> str:
    node = page.locator(f"#order-graph g.node[data-task-key='{task_key}']")
    return str(node.locator("rect").first.evaluate("el => getComputedStyle(el).fill"))


def test_the_graph_shows_status_colours_and_the_delivery_log_of_a_500_then_201(
    page: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    https_receiver.script(
        "/orders", [Reply(500, "the ERP is restarting"), Reply(201, {"accepted": True})]
    )
    assert api.post("/api/flows", three_task_flow(https_receiver.url("/orders"))).status_code == 201
    order_id = api.post("/api/orders", order_doc("WEB-GRAPH", flow_key="graph-flow")).json()["id"]

    sign_in(page, ui_server.base_url, api, next_path=f"/orders/{order_id}")

    cool_down = page.locator("#order-graph g.node[data-task-key='cool-down']")
    expect(cool_down).to_contain_text("WAITING", timeout=20_000)
    expect(page.locator("#order-graph g.node[data-task-key='notify-erp']")).to_contain_text(
        "SUCCEEDED · 2 attempts"
    )
    expect(page.locator("#order-graph g.node[data-task-key='ship-it']")).to_contain_text(
        "not started"
    )
    assert node_fill(page, "notify-erp") == FILL["SUCCEEDED"]
    assert node_fill(page, "cool-down") == FILL["WAITING"]
    assert node_fill(page, "ship-it") == FILL["NOT_STARTED"]
    expect(page.locator("#order-heading")).to_contain_text("IN_PROGRESS")

    page.locator("#order-graph g.node[data-task-key='notify-erp']").click()

    rows = page.locator("#task-detail li.attempt-row")
    expect(rows).to_have_count(2)
    first, second = page.locator("#task-detail li.attempt-row[data-attempt='1']"), rows.nth(0)
    expect(second).to_have_attribute("data-attempt", "2")  # newest first
    expect(first.locator(".status-code")).to_have_text("HTTP 500")
    expect(first).to_contain_text("the ERP is restarting")
    expect(first).to_contain_text("ordermill tries again")  # the error in plain words
    expect(second.locator(".status-code")).to_have_text("HTTP 201")
    expect(second).to_contain_text('{"accepted": true}')
    expect(second.locator(".attempt-summary")).to_contain_text(re.compile(r"\d+ ms"))


def test_order_data_with_script_tags_is_shown_as_text(
    page: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    hostile = "<script>window.__pwned = 1</script><img src=x onerror='window.__pwned = 2'>"
    api.post("/api/flows", {**three_task_flow(https_receiver.url("/orders")), "key": "f"})
    body = order_doc("<b>WEB-XSS</b>", flow_key="f", data={"note": hostile})
    order_id = api.post("/api/orders", body).json()["id"]

    sign_in(page, ui_server.base_url, api)
    expect(page.get_by_role("link", name="<b>WEB-XSS</b>")).to_be_visible()
    page.goto(f"{ui_server.base_url}/orders/{order_id}")

    expect(page.locator("#order-data")).to_contain_text(hostile)
    expect(page.locator("#order-heading")).to_contain_text("<b>WEB-XSS</b>")
    assert page.locator("#order-data script, #order-data img, #order-heading b").count() == 0
    assert page.evaluate("window.__pwned") is None
