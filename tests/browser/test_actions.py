"""Operator actions in the UI: start, retry, cancel (after a dialog), keys, secrets, sign out."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.acceptance.conftest import Api, ServeProcess
from tests.browser.conftest import OWNER_EMAIL, sign_in
from tests.support.factories import flow_doc, order_doc
from tests.support.receiver import HttpsReceiver, Reply

pytestmark = pytest.mark.browser


def test_start_retry_and_cancel_each_give_feedback_and_change_the_order(
    page: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/orders", [Reply(400, {"detail": "unknown SKU"}), Reply(201)])
    api.post("/api/flows", flow_doc(https_receiver.url("/orders")))
    failing = api.post("/api/orders", order_doc("WEB-A1", start=False)).json()["id"]
    doomed = api.post("/api/orders", order_doc("WEB-A2", start=False)).json()["id"]
    heading = page.locator("#order-heading")
    sign_in(page, ui_server.base_url, api, next_path=f"/orders/{failing}")

    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.locator("#toasts")).to_contain_text("Order started.")
    expect(heading).to_contain_text("FAILURE", timeout=20_000)
    page.get_by_role("button", name="Retry", exact=True).click()
    expect(page.locator("#toasts")).to_contain_text("Retrying the failed and timed-out tasks.")
    expect(heading).to_contain_text("SUCCESS", timeout=20_000)
    expect(page.locator("#timeline")).to_contain_text("order.retried")
    expect(page.locator("#timeline")).to_contain_text(f"by {OWNER_EMAIL}")

    page.goto(f"{ui_server.base_url}/orders/{doomed}")
    page.get_by_role("button", name="Cancel order…").click()
    dialog = page.get_by_role("dialog", name="Cancel order WEB-A2?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Keep the order").click()
    expect(dialog).to_be_hidden()
    expect(heading).to_contain_text("CREATED")
    page.get_by_role("button", name="Cancel order…").click()
    dialog.get_by_role("button", name="Cancel order", exact=True).click()
    expect(page.locator("#toasts")).to_contain_text("Order cancelled.")
    expect(heading).to_contain_text("CANCELLED")
    assert api.get(f"/api/orders/{doomed}")["status"] == "CANCELLED"

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{ui_server.base_url}/signin")
    expect(page.locator("#toasts")).to_contain_text("Signed out.")


def test_settings_show_new_secrets_once_and_sign_out_everywhere_ends_the_session(
    page: Page, ui_server: ServeProcess, api: Api
) -> None:
    sign_in(page, ui_server.base_url, api, next_path="/settings")

    page.get_by_label("New key name").fill("webshop")
    page.get_by_role("button", name="Create key").click()
    new_key = page.locator("#new-api-key")
    expect(new_key).to_have_text(re.compile(r"^om_\S{20,}$"))
    secret = new_key.inner_text()
    assert api.http.get("/api/flows", headers={"Authorization": f"Bearer {secret}"}).is_success
    expect(page.locator("#toasts")).to_contain_text("shown only once")

    page.get_by_role("button", name="Rotate secret…").click()
    page.get_by_role("dialog").get_by_role("button", name="Rotate").click()
    expect(page.locator("#new-signing-secret")).to_contain_text("whsec_")
    expect(page.locator("#signing-secret")).to_contain_text("Signing now with 2 secrets")

    page.reload()
    expect(page.locator("#new-api-key, #new-signing-secret")).to_have_count(0)  # shown once
    webshop = page.locator("tr", has_text="webshop")
    webshop.get_by_role("button", name="Revoke…").click()
    page.get_by_role("dialog", name="Revoke “webshop”?").get_by_role(
        "button", name="Revoke key"
    ).click()
    expect(webshop).to_contain_text("REVOKED")
    keys = {k["name"]: k for k in api.get("/api/spaces/acme/api-keys")["items"]}
    assert keys["webshop"]["revokedAt"] is not None

    page.goto(f"{ui_server.base_url}/account")
    expect(page.locator("#sessions")).to_contain_text("this session")
    page.get_by_role("button", name="Sign out everywhere").click()
    page.wait_for_url(f"{ui_server.base_url}/signin")
    page.goto(f"{ui_server.base_url}/settings")
    expect(page).to_have_url(re.compile(r"/signin\?next=%2Fsettings$"))
