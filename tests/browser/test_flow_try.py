"""The flow editor's "Try with a sample order": the flow in the editor runs against the sample
order and scripted outcomes with nothing sent, and the preview graph shows where each task
would end."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from tests.acceptance.conftest import Api, ServeProcess
from tests.browser.conftest import sign_in
from tests.browser.test_docs_screenshots import snap
from tests.integration.test_dry_run import flow_with_email
from tests.support.receiver import HttpsReceiver

pytestmark = pytest.mark.browser


def test_a_sample_order_runs_the_edited_flow_and_colours_the_graph_by_its_end(
    page: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    flow = flow_with_email()  # book-erp → cure (a minute's wait) → mail
    flow["stages"][0]["taskDefinitions"][0]["payload"]["uri"] = https_receiver.url("/orders")
    assert api.post("/api/flows", flow).status_code == 201
    sign_in(page, ui_server.base_url, api, next_path="/flows/made-to-order")
    sample = json.loads(page.get_by_label("Sample order (JSON)").input_value())
    assert (sample["thirdPartyOrderId"], "spaceKey" in sample) == ("WEB-1001", False)

    outcomes = {"book-erp": [{"status": 503}, {"status": 201}]}
    page.get_by_label("Scripted outcomes per task key").fill(json.dumps(outcomes))
    page.get_by_role("button", name="Run the sample order").click()

    status = page.locator("#try-status")
    expect(status).to_contain_text("FAILURE")  # the mail's template needs data.firstName
    expect(status).to_contain_text("jitter seed")
    expect(page.locator("#try-result .problems")).to_contain_text("firstName")
    book = page.locator("#try-tasks tr[data-task-key='book-erp']")
    expect(book).to_contain_text("SUCCEEDED")
    expect(book.locator("li")).to_have_count(2)
    expect(book.locator("li").first).to_contain_text("retry")
    requests = page.locator("details.try-request")
    expect(requests).to_have_count(2)
    requests.first.locator("summary").click()
    expect(requests.first.locator("pre")).to_contain_text('"thirdPartyOrderId": "WEB-1001"')
    expect(requests.first.locator("pre")).to_contain_text("/api/feedback/dry-run-example")
    expect(page.locator("#try-timeline")).to_contain_text("task.queued")
    graph = page.locator("#preview-graph")
    expect(graph.locator("g.node[data-task-key='book-erp']")).to_contain_text("SUCCEEDED")
    expect(graph.locator("g.node[data-task-key='book-erp']")).to_contain_text("2 attempts")
    expect(graph.locator("g.node[data-task-key='cure']")).to_contain_text("SUCCEEDED")
    expect(graph.locator("g.node[data-task-key='mail']")).to_contain_text("FAILED")
    page.locator("#try-tasks").scroll_into_view_if_needed()
    snap(page, "flow-try", full_page=False)

    fixed = json.loads(json.dumps(flow["stages"]))
    fixed[0]["taskDefinitions"][2]["payload"]["body"] = "Hello {{ order.thirdPartyOrderId }}"
    page.locator("#stages").fill(json.dumps(fixed, indent=2))  # edited, not saved
    page.get_by_role("button", name="Run the sample order").click()

    expect(status).to_contain_text("SUCCESS")
    expect(graph.locator("g.node[data-task-key='mail']")).to_contain_text("SUCCEEDED")
    expect(page.locator("details.try-email")).to_contain_text("To jo@example.com: Order WEB-1001")
    assert https_receiver.requests == []  # nothing was sent
    assert len(api.get("/api/flows/made-to-order/versions")["items"]) == 1
    assert api.get("/api/orders")["items"] == []


def test_a_sample_order_that_is_not_an_order_shows_where_it_breaks(
    page: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    assert api.post("/api/flows", flow_with_email()).status_code == 201
    sign_in(page, ui_server.base_url, api, next_path="/flows/made-to-order")

    page.get_by_label("Sample order (JSON)").fill(
        '{"thirdPartyOrderId": "W-1", "orderLines": "none"}'
    )
    page.get_by_role("button", name="Run the sample order").click()

    problems = page.locator("#try-result .problems")
    expect(problems).to_contain_text("/order/orderLines")
    expect(page.locator("#try-status")).to_have_count(0)
