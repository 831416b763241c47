"""Every main page renders with realistic data; the screenshots double as docs/screenshots/.

Run with ORDERMILL_DOCS_SCREENSHOTS=1 to refresh the committed PNGs in docs/screenshots/;
otherwise they go to test-artifacts/screenshots/docs/ only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.acceptance.conftest import Api, ServeProcess
from tests.browser.conftest import ARTIFACTS, DESKTOP, PROJECT_ROOT, open_page, sign_in
from tests.support.factories import order_doc
from tests.support.receiver import HttpsReceiver, Reply

pytestmark = pytest.mark.browser

FAST_RETRY = {
    "maxAttempts": 5,
    "initialIntervalMs": 50,
    "backoffCoefficient": 1.0,
    "maxIntervalMs": 100,
}


def workshop_flow(uri: str) -> dict[str, object]:
    """Two stages: the ERP is told (with retries), a person approves; then production fans out."""

    def call(key: str, path: str, *next_: str) -> dict[str, object]:
        return {
            "key": key,
            "handlerKey": "consume-rest-api",
            "payload": {"uri": uri + path, "sendsFeedback": False},
            "timeoutDuration": 5000,
            "retry": FAST_RETRY,
            "next": list(next_),
        }

    return {
        "key": "made-to-order",
        "name": "Made to order (EU)",
        "stages": [
            {
                "key": "intake",
                "initialTaskDefinitionKeys": ["notify-erp"],
                "taskDefinitions": [
                    call("notify-erp", "/erp", "approve-print"),
                    {
                        "key": "approve-print",
                        "handlerKey": "manual-confirmation",
                        "payload": {
                            "title": "Print {{ order.thirdPartyOrderId }}?",
                            "description": "Check the model and the material before printing.",
                            "assignees": ["workshop@example.com"],
                        },
                        "timeoutDuration": 86_400_000,
                        "next": [],
                    },
                ],
            },
            {
                "key": "production",
                "initialTaskDefinitionKeys": ["slice", "notify-workshop"],
                "taskDefinitions": [
                    call("slice", "/slicer", "ship"),
                    call("notify-workshop", "/workshop", "ship"),
                    call("ship", "/shipping"),
                ],
            },
        ],
    }


@pytest.fixture
def docs_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    yield from open_page(browser, request, DESKTOP)


def snap(page: Page, name: str, *, full_page: bool = True) -> None:
    targets = [ARTIFACTS / "docs"]
    if os.environ.get("ORDERMILL_DOCS_SCREENSHOTS") == "1":
        targets.append(PROJECT_ROOT / "docs" / "screenshots")
    for directory in targets:
        directory.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=full_page)


def test_every_main_page_renders_with_realistic_data(
    docs_page: Page,
    browser: Browser,
    ui_server: ServeProcess,
    api: Api,
    https_receiver: HttpsReceiver,
) -> None:
    page = docs_page
    https_receiver.script("/erp", [Reply(500, "ERP restarting"), Reply(201, {"accepted": True})])
    https_receiver.script("/shipping", [Reply(400, {"title": "Bad Request", "detail": "no SKU"})])
    assert api.post("/api/flows", workshop_flow(https_receiver.base_url)).status_code == 201
    late_line = {
        "orderId": "WEB-1004-1",
        "title": "Lamp shade",
        "deadline": "2025-01-01T00:00:00.000Z",
        "amountOfUnits": 3,
        "valuePerUnit": 35,
    }
    ids = {1002: api.post("/api/orders", order_doc("WEB-1002")).json()["id"]}
    https_receiver.wait_for(2, path="/erp", timeout=20)  # WEB-1002 gets the 500, then the 201
    reference = {"customerReference": "ACME-PO-4471", "customerEmail": "an@example.com"}
    ids[1003] = api.post("/api/orders", order_doc("WEB-1003", data=reference)).json()["id"]
    ids[1004] = api.post("/api/orders", order_doc("WEB-1004", orderLines=[late_line])).json()["id"]
    ids[1001] = api.post("/api/orders", order_doc("WEB-1001", start=False)).json()["id"]
    base = ui_server.base_url

    sign_in(page, base, api, next_path="/confirmations")
    expect(page.locator("section.confirm-box")).to_have_count(3, timeout=20_000)
    snap(page, "confirmations")
    card = page.locator("section.confirm-box", has_text="WEB-1002")
    card.get_by_role("button", name="Confirm").click()
    expect(page.locator("#toasts")).to_contain_text("Confirmed")
    api.wait_for(ids[1002], "FAILURE")  # the shipping connector answers 400

    page.goto(f"{base}/")
    expect(page.locator("tr.order-row")).to_have_count(4)
    expect(page.locator(f"tr[data-order-id='{ids[1002]}'] .cause")).to_contain_text("no SKU")
    snap(page, "orders", full_page=False)
    page.get_by_label("Search orders").press_sequentially("acme-po", delay=20)
    expect(page.locator("tr.order-row")).to_have_count(1)
    snap(page, "orders-search", full_page=False)

    page.goto(f"{base}/?status=FAILURE")
    page.locator("#bulk-actions > summary").click()
    page.get_by_role("button", name="Retry all failed…").click()
    expect(page.locator("#bulk-count")).to_have_text("1 order would be retried.")
    snap(page, "bulk-retry", full_page=False)
    page.get_by_role("button", name="Keep them as they are").click()
    expect(page.locator("#bulk-panel .bulk-panel")).to_have_count(0)

    page.goto(f"{base}/orders/{ids[1002]}")
    expect(page.locator("#order-why")).to_contain_text("ship: the connector answered 400 — no SKU")
    page.locator("#order-graph g.node[data-task-key='notify-erp']").click()
    expect(page.locator("#task-detail li.attempt-row")).to_have_count(2)
    snap(page, "order")
    page.locator("#why-show-task").click()
    expect(page.locator("#task-detail [data-task-detail='ship']")).to_be_visible()
    page.locator("#task-detail details.exchange summary").first.click()
    page.locator("#task-detail").scroll_into_view_if_needed()
    snap(page, "delivery-log")

    page.goto(f"{base}/flows/made-to-order")
    text = page.locator("#stages").input_value().replace('"ship"\n', '"shipp"\n', 1)
    page.locator("#stages").fill(text)
    expect(page.locator("#problems li")).to_have_count(1)
    page.locator("#problems [data-jump-line]").click()
    page.evaluate("window.scrollTo(0, 0)")
    snap(page, "flow-editor")

    page.goto(f"{base}/settings")
    snap(page, "settings", full_page=False)

    phone = browser.new_context(viewport={"width": 375, "height": 812})
    try:
        small = phone.new_page()
        small.context.add_cookies(page.context.cookies())
        small.goto(f"{base}/")
        expect(small.locator("tr.order-row")).to_have_count(4)
        snap(small, "orders-375")
        small.goto(f"{base}/orders/{ids[1002]}")
        expect(small.locator("#order-why")).to_be_visible()
        snap(small, "order-375", full_page=False)
    finally:
        phone.close()
