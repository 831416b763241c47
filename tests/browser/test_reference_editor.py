"""The reference page's example flow, pasted as printed into the flow editor, runs an order."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.acceptance.conftest import Api, ServeProcess
from tests.acceptance.test_reference_examples import assert_documented_delivery
from tests.browser.conftest import sign_in
from tests.support.factories import order_doc
from tests.support.receiver import HttpsReceiver
from tests.support.reference import FLOW_FILE, FLOW_URI, copy_text, example_flow

pytestmark = pytest.mark.browser


def test_a_flow_made_in_the_ui_without_a_name_takes_the_pasted_example_and_runs_it(
    page: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    uri = https_receiver.url("/orders")
    pasted = copy_text(FLOW_FILE).replace(FLOW_URI, uri)
    sign_in(page, ui_server.base_url, api, next_path="/flows")

    page.get_by_label("Key").fill("seed-flow")
    page.get_by_role("button", name="Create flow").click()
    page.wait_for_url(f"{ui_server.base_url}/flows/seed-flow")
    expect(page.locator("h1")).to_have_text("seed-flow")
    expect(page.locator("#flow-name")).to_have_value("")
    expect(page.locator("#flow-name")).to_have_attribute("placeholder", "seed-flow")
    page.locator("#stages").fill(pasted)
    expect(page.locator("#problems")).to_contain_text("Valid")
    page.get_by_role("button", name="Save as a new version").click()

    expect(page.locator("#toasts")).to_contain_text("Saved as version 2.")
    expect(page.locator("h1")).to_have_text("seed-flow")
    stored = api.get("/api/flows/seed-flow")
    assert (stored["name"], stored["version"]) == ("seed-flow", 2)
    assert stored["stages"] == example_flow(uri)["stages"]
    order_id = api.post("/api/orders", order_doc("WEB-U1", flow_key="seed-flow")).json()["id"]
    assert api.wait_for(order_id, "SUCCESS", "FAILURE", "UNHEALTHY")["status"] == "SUCCESS"
    assert_documented_delivery(https_receiver.requests, order_id, "task-1")


def test_a_pasted_document_naming_another_key_is_refused_on_its_line(
    page: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    pasted = copy_text(FLOW_FILE).replace(FLOW_URI, https_receiver.url("/orders"))
    other = pasted.replace('{\n"stages"', '{\n"key": "other-flow",\n"stages"', 1)
    assert (
        api.http.put(
            "/api/flows/seed-flow",
            json=example_flow(https_receiver.url("/orders")),
            headers=api.headers,
        ).status_code
        == 201
    )
    sign_in(page, ui_server.base_url, api, next_path="/flows/seed-flow")

    page.locator("#stages").fill(other)

    problem = page.locator("#problems li[data-pointer='/key']")
    expect(problem).to_contain_text("must be 'seed-flow', the key it is saved under")
    expect(problem).to_have_attribute("data-line", "2")
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.locator("#toasts")).to_contain_text("Not saved: 1 problem")
    assert [f["key"] for f in api.get("/api/flows")["items"]] == ["seed-flow"]
