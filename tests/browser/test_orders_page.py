"""The orders page follows orders live, and turns into cards on a phone-sized screen."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.acceptance.conftest import Api, ServeProcess
from tests.browser.conftest import open_page, sign_in
from tests.support.factories import flow_doc, order_doc
from tests.support.receiver import HttpsReceiver, ReceivedRequest, Reply

pytestmark = pytest.mark.browser


def test_a_new_order_shows_up_and_turns_success_without_a_reload(
    page: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    release = threading.Event()

    def hold(_: ReceivedRequest) -> None:
        release.wait(30)  # the connector answers only when the test says so

    https_receiver.script("/orders", [Reply(201, before=hold)])
    api.post("/api/flows", flow_doc(https_receiver.url("/orders"), timeoutDuration=60_000))
    order_id = api.post("/api/orders", order_doc("WEB-LIVE-1")).json()["id"]
    https_receiver.wait_for(1, timeout=20)
    try:
        sign_in(page, ui_server.base_url, api)
        row = page.locator(f"tr[data-order-id='{order_id}']")
        expect(row.get_by_role("link", name="WEB-LIVE-1")).to_be_visible()
        expect(row.locator("td[data-label='Status']")).to_have_text("IN_PROGRESS")
        expect(row.locator("td[data-label='Current task']")).to_contain_text("task-1")
        expect(row.locator("td[data-label='Value']")).to_have_text("€ 99.00")
        page.evaluate("window.__sameDocument = true")
    finally:
        release.set()

    expect(row.locator("td[data-label='Status']")).to_have_text("SUCCESS", timeout=20_000)
    assert page.evaluate("window.__sameDocument") is True  # refreshed in place, not reloaded
    expect(page.locator("#orders-table")).to_have_attribute("data-live", "no")
    expect(page.get_by_role("link", name="SUCCESS 1")).to_be_visible()


@pytest.fixture
def phone(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    yield from open_page(browser, request, {"width": 375, "height": 812})


def test_at_375_pixels_the_orders_are_cards(
    phone: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    api.post("/api/flows", flow_doc(https_receiver.url("/orders")))
    for number in (1, 2):
        order_id = api.post("/api/orders", order_doc(f"WEB-PHONE-{number}")).json()["id"]
        api.wait_for(order_id, "SUCCESS")

    sign_in(phone, ui_server.base_url, api)

    rows = phone.locator("tr.order-row")
    expect(rows).to_have_count(2)
    expect(phone.locator("table.orders-table thead")).to_be_hidden()
    first = rows.first
    assert first.evaluate("el => getComputedStyle(el).display") == "grid"
    label = first.locator("td[data-label='Status']").evaluate(
        "el => getComputedStyle(el, '::before').content"
    )
    assert label == '"Status"'
    box = first.bounding_box()
    assert box is not None
    assert box["width"] <= 375
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scroll
