"""The confirmations inbox: confirming a waiting manual confirmation moves the order on."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.acceptance.conftest import Api, ServeProcess
from tests.browser.conftest import sign_in
from tests.support.factories import order_doc
from tests.support.receiver import HttpsReceiver

pytestmark = pytest.mark.browser


def confirm_then_deliver(uri: str) -> dict[str, object]:
    return {
        "key": "confirm-first",
        "name": "Confirm, then deliver",
        "stages": [
            {
                "key": "check",
                "initialTaskDefinitionKeys": ["approve"],
                "taskDefinitions": [
                    {
                        "key": "approve",
                        "handlerKey": "manual-confirmation",
                        "payload": {
                            "title": "Print {{ order.thirdPartyOrderId }}?",
                            "description": "Check the model first.",
                        },
                        "timeoutDuration": 3_600_000,
                        "next": ["deliver"],
                    },
                    {
                        "key": "deliver",
                        "handlerKey": "consume-rest-api",
                        "payload": {"uri": uri},
                        "next": [],
                    },
                ],
            }
        ],
    }


def test_confirming_from_the_inbox_moves_the_order_on(
    page: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    flow = confirm_then_deliver(https_receiver.url("/orders"))
    assert api.post("/api/flows", flow).status_code == 201, "needs the manual-confirmation handler"
    order_id = api.post("/api/orders", order_doc("WEB-OK", flow_key="confirm-first")).json()["id"]

    sign_in(page, ui_server.base_url, api, next_path="/confirmations")
    card = page.locator("section.confirm-box", has_text="Print WEB-OK?")
    expect(card).to_be_visible(timeout=20_000)  # the task opens its confirmation asynchronously
    expect(card).to_contain_text("Check the model first.")
    card.get_by_label("Comment").fill("model checked, go ahead")
    card.get_by_role("button", name="Confirm").click()

    expect(page.locator("#toasts")).to_contain_text("Confirmed: Print WEB-OK? (WEB-OK).")
    answered = page.locator(f"section.card#{card_id(page, order_id)}")
    expect(answered).to_contain_text("CONFIRMED")
    expect(answered).to_contain_text("model checked, go ahead")

    page.goto(f"{ui_server.base_url}/orders/{order_id}")
    expect(page.locator("#order-heading")).to_contain_text("SUCCESS", timeout=20_000)
    expect(page.locator("#timeline")).to_contain_text("confirmation.confirmed")
    assert len(https_receiver.requests) == 1  # the task after the confirmation ran


def card_id(page: Page, order_id: str) -> str:
    """The id of the inbox card that answered for ``order_id``."""
    link = page.locator(f"section.card a[href='/orders/{order_id}']").first
    return str(link.evaluate("el => el.closest('section').id"))
