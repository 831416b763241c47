"""The flow editor: problems appear with their pointer as you type; Save refuses until fixed."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from tests.acceptance.conftest import Api, ServeProcess
from tests.browser.conftest import sign_in
from tests.support.factories import flow_doc
from tests.support.receiver import HttpsReceiver

pytestmark = pytest.mark.browser


def test_an_invalid_edit_is_refused_and_the_fixed_one_becomes_version_2(
    page: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    flow = flow_doc(https_receiver.url("/orders"))
    assert api.post("/api/flows", flow).status_code == 201
    sign_in(page, ui_server.base_url, api, next_path="/flows/made-to-order")
    expect(page.locator("#versions li")).to_have_count(1)
    broken = json.loads(json.dumps(flow["stages"]))
    broken[0]["taskDefinitions"][0]["next"] = ["task-2"]
    text = json.dumps(broken, indent=2)
    bad_line = next(n for n, line in enumerate(text.splitlines(), 1) if '"task-2"' in line)

    page.locator("#stages").fill(text)

    problem = page.locator("#problems li[data-pointer='/stages/0/taskDefinitions/0/next/0']")
    expect(problem).to_contain_text("this stage has no task definition")
    expect(problem).to_have_attribute("data-line", str(bad_line))
    expect(page.locator("#gutter span.bad")).to_have_text(str(bad_line))
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.locator("#toasts")).to_contain_text("Not saved: 1 problem")
    expect(page.locator("#versions li")).to_have_count(1)
    assert len(api.get("/api/flows/made-to-order/versions")["items"]) == 1

    fixed = json.loads(text)
    fixed[0]["taskDefinitions"][0]["next"] = []
    fixed[0]["taskDefinitions"][0]["timeoutDuration"] = 2500
    page.locator("#stages").fill(json.dumps(fixed, indent=2))
    expect(page.locator("#problems")).to_contain_text("Valid")
    page.get_by_role("button", name="Save as a new version").click()

    expect(page.locator("#toasts")).to_contain_text("Saved as version 2.")
    expect(page.locator("#versions li")).to_have_count(2)
    expect(page.locator("#versions li[aria-current='true']")).to_contain_text("Version 2")
    saved = api.get("/api/flows/made-to-order")
    assert saved["version"] == 2
    assert saved["stages"][0]["taskDefinitions"][0]["timeoutDuration"] == 2500
