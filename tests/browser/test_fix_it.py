"""Fixing an order where it broke, at desktop (1440 × 900) and phone (375 × 812) sizes: redeliver
a connector task, retry one task, act on every order the list's filters match (a dry count, then
a confirmation), reject a confirmation with a reason, and pan and zoom the flow graph."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.acceptance.conftest import Api, ServeProcess
from tests.browser.conftest import DESKTOP, no_sideways_scroll, open_page, sign_in
from tests.browser.test_accessibility import axe_violations
from tests.browser.test_confirmations import confirm_then_deliver
from tests.browser.test_steering import put_flow
from tests.support.factories import flow_doc, order_doc, rest_task, stage_doc, staged_flow
from tests.support.receiver import HttpsReceiver, Reply

pytestmark = pytest.mark.browser


def side_by_side(erp: str, shop: str) -> dict[str, object]:
    """Two connector tasks that start together, each tried once."""
    tasks = [
        rest_task(erp, "book-erp", [], retry={"maxAttempts": 1}),
        rest_task(shop, "notify-shop", [], retry={"maxAttempts": 1}),
    ]
    return staged_flow(
        "made-to-order", "Side by side", stage_doc("make", ["book-erp", "notify-shop"], tasks)
    )


def test_redeliver_sends_the_same_webhook_id_again_and_the_panel_follows(
    screen: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/orders", [Reply(400, {"detail": "unknown SKU"}), Reply(201)])
    api.post("/api/flows", flow_doc(https_receiver.url("/orders"), retry={"maxAttempts": 1}))
    order_id = api.post("/api/orders", order_doc("WEB-FIX-1")).json()["id"]
    api.wait_for(order_id, "FAILURE")
    sign_in(screen, ui_server.base_url, api, next_path=f"/orders/{order_id}")
    screen.locator("#why-show-task").click()
    panel = screen.locator("#task-detail [data-task-detail='task-1']")
    expect(panel).to_have_attribute("data-status", "FAILED")

    screen.get_by_role("button", name="Redeliver").click()

    expect(screen.locator("#toasts")).to_contain_text("sent again under the same delivery id")
    expect(screen.locator("#order-heading")).to_contain_text("SUCCESS", timeout=20_000)
    expect(panel).to_have_attribute("data-status", "SUCCEEDED", timeout=10_000)
    expect(panel.locator("li.attempt-row")).to_have_count(2)
    first, second = https_receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]

    screen.get_by_role("button", name="Redeliver").click()  # a succeeded task, sent once more
    https_receiver.wait_for(3, 20)
    expect(screen.locator("#order-heading")).to_contain_text("SUCCESS", timeout=20_000)
    assert {r.headers["webhook-id"] for r in https_receiver.requests} == {
        first.headers["webhook-id"]
    }
    no_sideways_scroll(screen)


def test_retry_one_task_leaves_the_other_failed_one_and_then_the_order_succeeds(
    screen: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/erp", [Reply(400, {"detail": "ERP down"}), Reply(201)])
    https_receiver.script("/shop", [Reply(400, {"detail": "shop closed"}), Reply(201)])
    put_flow(api, side_by_side(https_receiver.url("/erp"), https_receiver.url("/shop")))
    order_id = api.post("/api/orders", order_doc("WEB-FIX-2")).json()["id"]
    api.wait_for(order_id, "FAILURE")
    https_receiver.wait_for(1, 20, path="/shop")
    sign_in(screen, ui_server.base_url, api, next_path=f"/orders/{order_id}")
    screen.locator(".task-list .task-button[data-task-key='book-erp']").click()
    panel = screen.locator("#task-detail [data-task-detail='book-erp']")
    expect(panel).to_have_attribute("data-status", "FAILED")

    screen.get_by_role("button", name="Retry this task").focus()
    screen.keyboard.press("Enter")  # by keyboard

    expect(screen.locator("#toasts")).to_contain_text("Retrying task book-erp alone")
    expect(panel).to_have_attribute("data-status", "SUCCEEDED", timeout=20_000)
    shop = screen.locator(".task-list .task-button[data-task-key='notify-shop']")
    expect(shop).to_have_attribute("data-status", "FAILED")
    expect(screen.locator("#order-heading")).to_contain_text("FAILURE")
    assert len([r for r in https_receiver.requests if r.path == "/shop"]) == 1

    shop.click()
    screen.get_by_role("button", name="Retry this task").click()
    expect(screen.locator("#order-heading")).to_contain_text("SUCCESS", timeout=20_000)
    expect(screen.locator("#task-detail [data-task-detail='notify-shop']")).to_have_attribute(
        "data-status", "SUCCEEDED", timeout=10_000
    )
    no_sideways_scroll(screen)


def test_without_scripts_a_task_retry_comes_back_to_the_order_with_the_task_open(
    browser: Browser,
    request: pytest.FixtureRequest,
    ui_server: ServeProcess,
    api: Api,
    https_receiver: HttpsReceiver,
) -> None:
    """A press before the page's scripts run (or with them off) is a plain form post: it acts
    once and answers 303 to the order page, whose `?task=` opens the task and shows the toast."""
    https_receiver.script("/erp", [Reply(400, {"detail": "ERP down"}), Reply(201)])
    https_receiver.script("/shop", Reply(201))
    put_flow(api, side_by_side(https_receiver.url("/erp"), https_receiver.url("/shop")))
    order_id = api.post("/api/orders", order_doc("WEB-FIX-3")).json()["id"]
    api.wait_for(order_id, "FAILURE")
    for page in open_page(browser, request, DESKTOP, java_script_enabled=False):
        sign_in(page, ui_server.base_url, api, next_path=f"/orders/{order_id}?task=book-erp")
        panel = page.locator("#task-detail [data-task-detail='book-erp']")
        expect(panel).to_have_attribute("data-status", "FAILED")

        page.get_by_role("button", name="Retry this task").click()

        page.wait_for_url(re.compile(rf"/orders/{order_id}\?task=book-erp$"))
        expect(page.locator("#toasts")).to_contain_text("Retrying task book-erp alone")
        api.wait_for(order_id, "SUCCESS")
        page.reload()  # the toast was shown once; the task has moved on
        expect(panel).to_have_attribute("data-status", "SUCCEEDED")
        expect(page.locator("#toasts")).not_to_contain_text("Retrying")
        page.get_by_role("button", name="Retry this task").wait_for(state="detached")
        assert len([r for r in https_receiver.requests if r.path == "/erp"]) == 2


def test_bulk_retry_after_an_outage_counts_first_then_retries_on_confirmation(
    screen: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/orders", Reply(503, "down for maintenance"))
    api.post("/api/flows", flow_doc(https_receiver.url("/orders"), retry={"maxAttempts": 1}))
    failed = [api.post("/api/orders", order_doc(f"WEB-OUT-{n}")).json()["id"] for n in range(3)]
    for order_id in failed:
        api.wait_for(order_id, "FAILURE")
    waiting = api.post("/api/orders", order_doc("WEB-LATER", start=False)).json()["id"]
    https_receiver.script("/orders", Reply(201))  # the connector is back
    sign_in(screen, ui_server.base_url, api, next_path="/?status=FAILURE")
    expect(screen.locator("tr.order-row")).to_have_count(3)

    screen.locator("#bulk-actions > summary").click()
    screen.get_by_role("button", name="Retry all failed…").click()

    panel = screen.locator("#bulk-panel .bulk-panel")
    expect(panel.locator("#bulk-count")).to_have_text("3 orders would be retried.")
    expect(panel).to_contain_text("status FAILURE")
    expect(screen.locator("#bulk-title")).to_be_focused()
    assert {api.get(f"/api/orders/{o}")["status"] for o in failed} == {"FAILURE"}  # dry
    assert axe_violations(screen) == []
    no_sideways_scroll(screen)

    screen.get_by_role("button", name="Retry 3 orders").click()

    expect(screen.locator("#toasts")).to_contain_text("Retried 3 orders.")
    expect(screen.locator("#bulk-title")).to_have_text("Retried 3 orders")
    for order_id in failed:
        assert api.wait_for(order_id, "SUCCESS", "FAILURE")["status"] == "SUCCESS"
    expect(screen.locator("tr.order-row")).to_have_count(0, timeout=10_000)
    assert api.get(f"/api/orders/{waiting}")["status"] == "CREATED"


def test_bulk_cancel_asks_for_a_reason_before_it_cancels(
    screen: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    api.post("/api/flows", flow_doc(https_receiver.url("/orders")))
    gent = [
        api.post("/api/orders", order_doc(f"WEB-G{n}", start=False)).json()["id"] for n in (1, 2)
    ]
    other = order_doc("WEB-L1", start=False)
    other["addresses"][0]["data"] = {"city": "Leuven"}  # type: ignore[index]
    leuven = api.post("/api/orders", other).json()["id"]
    sign_in(screen, ui_server.base_url, api)
    screen.get_by_label("Search orders").fill("WEB-G")
    expect(screen.locator("tr.order-row")).to_have_count(2)

    screen.locator("#bulk-actions > summary").click()
    screen.get_by_role("button", name="Cancel orders…").click()
    expect(screen.locator("#bulk-count")).to_have_text("2 orders would be cancelled.")
    expect(screen.locator("#bulk-panel")).to_contain_text("search “WEB-G”")
    confirm = screen.get_by_role("button", name="Cancel 2 orders")
    confirm.click()  # without a reason: the form refuses
    reason = screen.get_by_label("Reason")
    assert reason.evaluate("el => el.matches(':invalid')") is True
    assert api.get(f"/api/orders/{gent[0]}")["status"] == "CREATED"

    reason.fill("customer withdrew the batch")
    confirm.click()

    expect(screen.locator("#toasts")).to_contain_text("Cancelled 2 orders.")
    for order_id in gent:
        order = api.get(f"/api/orders/{order_id}")
        assert (order["status"], order["cancelReason"]) == (
            "CANCELLED",
            "customer withdrew the batch",
        )
    assert api.get(f"/api/orders/{leuven}")["status"] == "CREATED"
    no_sideways_scroll(screen)


def test_reject_asks_for_a_reason_and_a_confirmation(
    screen: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    api.post("/api/flows", confirm_then_deliver(https_receiver.url("/deliver")))
    order_id = api.post("/api/orders", order_doc("WEB-NO", flow_key="confirm-first")).json()["id"]
    sign_in(screen, ui_server.base_url, api, next_path="/confirmations")
    card = screen.locator("section.confirm-box", has_text="Print WEB-NO?")
    expect(card).to_be_visible(timeout=20_000)

    card.get_by_role("button", name="Reject…").focus()
    screen.keyboard.press("Enter")
    dialog = screen.get_by_role("dialog", name="Reject “Print WEB-NO?”?")
    expect(dialog).to_be_visible()
    assert axe_violations(screen) == []
    dialog.get_by_role("button", name="Keep it waiting").click()  # changed my mind
    expect(dialog).to_be_hidden()
    assert api.get(f"/api/orders/{order_id}")["status"] == "IN_PROGRESS"

    card.get_by_role("button", name="Reject…").click()
    dialog.get_by_role("button", name="Reject", exact=True).click()  # no reason yet: refused
    expect(dialog).to_be_visible()
    dialog.get_by_label("Reason").fill("the model has holes")
    dialog.get_by_role("button", name="Reject", exact=True).click()

    expect(screen.locator("#toasts")).to_contain_text("Rejected: Print WEB-NO? (WEB-NO).")
    assert api.wait_for(order_id, "FAILURE")["status"] == "FAILURE"
    events = api.get(f"/api/orders/{order_id}/events")["items"]
    [rejected] = [e for e in events if e["type"] == "confirmation.rejected"]
    assert "the model has holes" in str(rejected["data"])
    assert https_receiver.requests == []
    no_sideways_scroll(screen)


def view_box(page: Page) -> list[float]:
    box = page.locator("#order-graph svg").get_attribute("viewBox") or ""
    return [float(n) for n in re.split(r"[\s,]+", box.strip())]


def test_the_graph_zooms_and_pans_with_buttons_keys_and_dragging(
    screen: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    put_flow(api, side_by_side(https_receiver.url("/erp"), https_receiver.url("/shop")))
    order_id = api.post("/api/orders", order_doc("WEB-ZOOM", start=False)).json()["id"]
    sign_in(screen, ui_server.base_url, api, next_path=f"/orders/{order_id}")
    expect(screen.locator("#order-graph svg")).to_be_visible()
    whole = view_box(screen)

    screen.locator("#order-graph-zoom-in").focus()
    screen.keyboard.press("Enter")
    screen.keyboard.press("Enter")
    zoomed = view_box(screen)
    assert zoomed[2] == pytest.approx(whole[2] / 1.4**2, rel=0.01)

    graph = screen.locator("#order-graph")
    graph.focus()
    screen.keyboard.press("ArrowRight")
    assert view_box(screen)[0] > zoomed[0]
    box = graph.bounding_box()
    assert box is not None
    middle = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    before = view_box(screen)
    screen.mouse.move(*middle)
    screen.mouse.down()
    screen.mouse.move(middle[0] + 40, middle[1], steps=4)
    screen.mouse.up()
    assert view_box(screen)[0] < before[0]  # dragged right: the view moves left

    screen.evaluate(  # the live refresh's own request, now rather than in ten seconds
        "id => htmx.ajax('GET', `/orders/${id}/live`, {target: '#order-live', swap: 'outerHTML'})",
        order_id,
    )
    expect(screen.locator("#order-graph svg")).to_be_visible()  # redrawn
    assert view_box(screen)[2] == pytest.approx(zoomed[2], rel=0.01)  # the zoom survived
    no_sideways_scroll(screen)

    screen.get_by_role("button", name="Zoom out").click()
    screen.get_by_role("button", name="Fit").click()
    assert view_box(screen) == whole
    no_sideways_scroll(screen)
