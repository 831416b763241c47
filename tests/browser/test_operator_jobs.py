"""The operator's daily jobs, at desktop (1440 × 900) and phone (375 × 812) sizes: find an order
by anything, see why it failed at a glance, keep focus across live refreshes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.acceptance.conftest import Api, ServeProcess
from tests.browser.conftest import no_sideways_scroll, sign_in
from tests.support.factories import flow_doc, order_doc
from tests.support.receiver import HttpsReceiver, Reply

pytestmark = pytest.mark.browser


def customer_order(third_party: str, reference: str, city: str) -> dict[str, object]:
    body = order_doc(third_party, start=False)
    body["data"] = {"customerReference": reference, "contact": {"email": f"{city}@example.com"}}
    body["addresses"][0]["data"] = {"city": city}  # type: ignore[index]
    return body


def test_one_search_box_finds_an_order_by_its_customer_reference_as_you_type(
    screen: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    api.post("/api/flows", flow_doc(https_receiver.url("/orders")))
    wanted = api.post("/api/orders", customer_order("WEB-3001", "ACME-PO-4471", "Gent")).json()
    api.post("/api/orders", customer_order("WEB-3002", "ACME-PO-9000", "Leuven"))
    sign_in(screen, ui_server.base_url, api)
    rows = screen.locator("tr.order-row")
    expect(rows).to_have_count(2)
    screen.evaluate("window.__sameDocument = true")

    screen.get_by_label("Search orders").press_sequentially("acme-po-4471", delay=20)

    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-order-id", wanted["id"])
    assert screen.evaluate("window.__sameDocument") is True  # answered in place, as you type
    assert "q=acme-po-4471" in screen.url  # a reload shows the same search
    expect(screen.get_by_label("Search orders")).to_be_focused()

    screen.get_by_label("Search orders").fill("leuven")  # a city
    expect(rows.first).to_contain_text("WEB-3002")
    screen.get_by_label("Search orders").fill(wanted["id"])  # the order id
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("WEB-3001")
    no_sideways_scroll(screen)


def test_a_failed_order_appears_live_in_the_failure_view_with_its_cause(
    screen: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/orders", [Reply(400, {"message": "Unknown material code"})])
    api.post("/api/flows", flow_doc(https_receiver.url("/orders")))
    sign_in(screen, ui_server.base_url, api, next_path="/?status=FAILURE")
    expect(screen.get_by_text("No orders match these filters")).to_be_visible()
    screen.evaluate("window.__sameDocument = true")

    order_id = api.post("/api/orders", order_doc("WEB-FAIL-1")).json()["id"]

    row = screen.locator(f"tr[data-order-id='{order_id}']")
    expect(row).to_be_visible(timeout=20_000)
    expect(row.locator(".cause")).to_have_text(
        "Why: task-1: the connector answered 400 — Unknown material code"
    )
    assert screen.evaluate("window.__sameDocument") is True
    expect(screen.locator("#chip-FAILURE")).to_contain_text("1")
    no_sideways_scroll(screen)


def test_keyboard_focus_and_an_open_panel_survive_live_refreshes(
    screen: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    api.post("/api/flows", flow_doc(https_receiver.url("/orders")))
    order_id = api.post("/api/orders", order_doc("WEB-FOCUS-1", start=False)).json()["id"]
    sign_in(screen, ui_server.base_url, api)
    link = screen.locator(f"#order-link-{order_id}")
    expect(link).to_be_visible()
    screen.locator("#more-filters > summary").click()
    link.focus()
    expect(link).to_be_focused()

    for _ in range(2):
        with screen.expect_response(lambda r: "/orders/table" in r.url, timeout=10_000):
            pass
        screen.wait_for_timeout(100)  # let htmx settle the swap

    assert screen.evaluate("document.activeElement.id") == f"order-link-{order_id}"
    expect(screen.locator("#more-filters")).to_have_attribute("open", "")
    screen.keyboard.press("Enter")
    screen.wait_for_url(f"**/orders/{order_id}")


def test_the_order_page_says_why_on_top_and_the_delivery_log_shows_what_was_sent(
    screen: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    https_receiver.script(
        "/book-erp",
        [Reply(400, {"message": "Unknown material code"}, headers={"X-Erp-Trace": "t-42"})],
    )
    api.post("/api/flows", flow_doc(https_receiver.url("/book-erp")))
    order_id = api.post("/api/orders", order_doc("WEB-WHY-1")).json()["id"]
    api.wait_for(order_id, "FAILURE")
    sign_in(screen, ui_server.base_url, api, next_path=f"/orders/{order_id}")

    why = screen.locator("#order-why")  # on top, without a click
    expect(why.locator("h2")).to_have_text(
        "task-1: the connector answered 400 — Unknown material code"
    )
    expect(why).to_contain_text(https_receiver.url("/book-erp"))

    why.get_by_role("button", name="Show the delivery log of task-1").click()
    attempt = screen.locator("#task-detail li.attempt-row[data-attempt='1']")
    expect(attempt.locator(".attempt-url")).to_have_text(https_receiver.url("/book-erp"))
    attempt.get_by_text("Request and response").click()
    exchange = attempt.locator("details.exchange")
    expect(exchange).to_contain_text('"webhook-signature": "v1,')  # shortened, not whole
    expect(exchange).to_contain_text('"thirdPartyOrderId":"WEB-WHY-1"')  # the body sent
    expect(exchange).to_contain_text("t-42")  # the response's headers
    curl = attempt.locator("pre.curl")
    expect(curl).to_contain_text(f"curl -X POST {https_receiver.url('/book-erp')}")
    expect(curl).to_contain_text("webhook-id: ")
    expect(curl).not_to_contain_text("webhook-signature")
    no_sideways_scroll(screen)


def test_the_deadline_filter_finds_orders_due_soon_or_overdue_and_times_read_relative(
    screen: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    api.post("/api/flows", flow_doc(https_receiver.url("/orders")))
    soon = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    line = {"orderId": "L-1", "title": "Lamp", "deadline": soon, "amountOfUnits": 1}
    due_soon = api.post("/api/orders", order_doc("WEB-SOON", start=False, orderLines=[line]))
    late = api.post("/api/orders", order_doc("WEB-LATE", start=False)).json()["id"]
    sign_in(screen, ui_server.base_url, api)
    rows = screen.locator("tr.order-row")
    expect(rows).to_have_count(2)

    screen.locator("#more-filters > summary").click()  # folded behind one button
    screen.get_by_label("Deadline", exact=True).select_option("overdue")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-order-id", late)
    screen.get_by_label("Deadline", exact=True).select_option("soon")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-order-id", due_soon.json()["id"])
    no_sideways_scroll(screen)

    screen.goto(f"{ui_server.base_url}/orders/{late}")
    api.post(f"/api/orders/{late}/start", {})
    first = screen.locator("#timeline li").first  # newest first
    expect(first).to_contain_text('"to": "SUCCESS"', timeout=15_000)
    stamp = first.locator("time")
    expect(stamp).to_have_text("just now")
    expect(stamp).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"))


def test_after_retry_the_open_task_panel_shows_the_new_state(
    screen: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/orders", [Reply(400, {"detail": "unknown SKU"}), Reply(201)])
    api.post("/api/flows", flow_doc(https_receiver.url("/orders")))
    order_id = api.post("/api/orders", order_doc("WEB-AGAIN-1")).json()["id"]
    api.wait_for(order_id, "FAILURE")
    sign_in(screen, ui_server.base_url, api, next_path=f"/orders/{order_id}")
    screen.locator(".task-list button.task-button").first.click()
    panel = screen.locator("#task-detail [data-task-detail='task-1']")
    expect(panel).to_have_attribute("data-status", "FAILED")

    screen.locator("#action-retry").focus()
    screen.keyboard.press("Enter")  # by keyboard

    expect(screen.locator("#order-heading")).to_contain_text("SUCCESS", timeout=20_000)
    expect(panel).to_have_attribute("data-status", "SUCCEEDED", timeout=10_000)
    expect(panel.locator("h2")).to_contain_text("SUCCEEDED")
    expect(screen.locator(".task-list button.task-button").first).to_have_attribute(
        "aria-pressed", "true"
    )
