"""Steering an order from its page: pause and resume, skip a task with a reason, restart on
the latest version of the flow."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.acceptance.conftest import Api, ServeProcess
from tests.browser.conftest import sign_in
from tests.browser.test_docs_screenshots import snap
from tests.support.factories import order_doc, rest_task, stage_doc, staged_flow
from tests.support.receiver import HttpsReceiver, Reply

pytestmark = pytest.mark.browser


def two_steps(book: str, notify: str) -> dict[str, object]:
    tasks = [
        rest_task(book, "book-erp", ["notify-shop"], retry={"maxAttempts": 1}),
        rest_task(notify, "notify-shop", [], retry={"maxAttempts": 1}),
    ]
    return staged_flow("made-to-order", "Made to order", stage_doc("make", ["book-erp"], tasks))


def put_flow(api: Api, flow: dict[str, object]) -> None:
    response = api.http.put(f"/api/flows/{flow['key']}", json=flow, headers=api.headers)
    assert response.is_success, response.text


def test_pause_resume_and_skip_with_a_reason_from_the_order_page(
    page: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/book", Reply(422, {"detail": "unknown SKU"}))
    https_receiver.script("/notify", Reply(201))
    put_flow(api, two_steps(https_receiver.url("/book"), https_receiver.url("/notify")))
    order_id = api.post("/api/orders", order_doc("WEB-S1", start=False)).json()["id"]
    heading = page.locator("#order-heading")
    sign_in(page, ui_server.base_url, api, next_path=f"/orders/{order_id}")

    page.get_by_label("Why pause").fill("material out")
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.locator("#toasts")).to_contain_text("Order paused")
    expect(page.locator(".paused-note")).to_contain_text("material out")
    expect(page.locator(".order-explain")).to_contain_text("Paused for")
    assert api.get(f"/api/orders/{order_id}")["paused"] is True
    page.get_by_role("button", name="Resume", exact=True).click()
    expect(page.locator("#toasts")).to_contain_text("Order resumed.")
    expect(page.locator(".paused-note")).to_have_count(0)
    page.get_by_role("button", name="Start", exact=True).click()
    expect(heading).to_contain_text("FAILURE", timeout=20_000)

    page.locator(".task-button[data-status]", has_text="book-erp").click()
    page.get_by_label("why?").fill("booked by phone")
    page.get_by_role("button", name="Mark as succeeded").click()
    expect(page.locator("#toasts")).to_contain_text("book-erp marked as succeeded")
    expect(heading).to_contain_text("SUCCESS", timeout=20_000)
    expect(page.locator("#timeline")).to_contain_text("task.skipped")
    events = api.get(f"/api/orders/{order_id}/events")["items"]
    [skipped] = [e for e in events if e["type"] == "task.skipped"]
    assert skipped["data"] == {"reason": "booked by phone"}


def test_restart_on_the_latest_version_from_the_order_page(
    page: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/book", Reply(201))
    https_receiver.script("/wrong", Reply(404))
    https_receiver.script("/notify", Reply(201))
    put_flow(api, two_steps(https_receiver.url("/book"), https_receiver.url("/wrong")))
    order_id = api.post("/api/orders", order_doc("WEB-R1")).json()["id"]
    assert api.wait_for(order_id, "FAILURE", "SUCCESS")["status"] == "FAILURE"
    put_flow(api, two_steps(https_receiver.url("/book"), https_receiver.url("/notify")))
    heading = page.locator("#order-heading")
    sign_in(page, ui_server.base_url, api, next_path=f"/orders/{order_id}")
    expect(page.locator("#order-why")).to_contain_text("404")
    snap(page, "fix-failed-order", full_page=False)

    page.get_by_role("button", name="Restart on latest…").click()
    dialog = page.get_by_role("dialog", name="Restart order WEB-R1 on the latest version")
    dialog.get_by_label("Reason").fill("URL fixed")
    snap(page, "fix-restart-dialog", full_page=False)
    dialog.get_by_role("button", name="Restart", exact=True).click()
    expect(page.locator("#toasts")).to_contain_text("Order restarted")
    expect(heading).to_contain_text("SUCCESS", timeout=20_000)
    expect(page.locator("#order-live")).to_contain_text("made-to-order v2 (restarted from v1)")
    archived = page.locator(".task-list li.archived-task")
    expect(archived).to_have_count(1)
    expect(archived).to_contain_text("notify-shop~1")
    expect(archived).to_contain_text("from version 1")
    expect(archived.locator(".task-button")).to_have_attribute("data-status", "FAILED")
    page.locator("#graph-heading").scroll_into_view_if_needed()
    snap(page, "fix-restarted", full_page=False)
    order = api.get(f"/api/orders/{order_id}")
    assert order["flowVersion"] == 2
    assert order["restarts"][0]["reason"] == "URL fixed"
