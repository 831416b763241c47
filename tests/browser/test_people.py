"""People in Chromium: an invitation by mail, a viewer who may only look, an operator who
confirms but may not edit flows, a role change that holds at once, a password reset."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.acceptance.conftest import Api, ServeProcess
from tests.browser.conftest import (
    DESKTOP,
    OWNER_EMAIL,
    invite,
    open_page,
    serve_env,
    serving,
    set_password_with,
)
from tests.browser.test_confirmations import confirm_then_deliver
from tests.support.factories import order_doc
from tests.support.receiver import HttpsReceiver
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.browser

LINK = re.compile(r"(http://\S+/signin/link/[A-Za-z0-9_-]+)")
EMAIL = "printer@acme.example"
FIRST, SECOND = "first password of the printer", "second password of the printer"


@pytest.fixture
def ui_server(
    tmp_path: Path, https_receiver: HttpsReceiver, smtp_server: SmtpServer
) -> Iterator[ServeProcess]:
    """`ordermill serve` that sends mail to the test's SMTP server."""
    env = {
        **serve_env(tmp_path, https_receiver),
        "ORDERMILL_SMTP_HOST": smtp_server.host,
        "ORDERMILL_SMTP_PORT": str(smtp_server.port),
        "ORDERMILL_SMTP_SECURITY": "starttls",
        "ORDERMILL_SMTP_CA_FILE": str(smtp_server.ca.ca_pem_path),
        "ORDERMILL_SMTP_FROM": "ordermill@acme.example",
    }
    yield from serving(tmp_path, env)


@pytest.fixture
def printer(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A second person's browser, beside the owner's ``page``."""
    yield from open_page(browser, request, DESKTOP)


def link_in(smtp_server: SmtpServer, count: int, to: str = EMAIL) -> str:
    mail = smtp_server.wait_for(count)[-1]
    found = LINK.search(mail.message.get_content())
    assert found is not None, mail.message.get_content()
    assert mail.rcpt_tos == [to]
    return found.group(1)


def csrf_of(page: Page) -> str:
    headers = page.locator("body").get_attribute("hx-headers")
    assert headers is not None
    token: str = json.loads(headers)["X-CSRF-Token"]
    return token


def test_invited_by_mail_a_viewer_looks_an_operator_confirms_and_a_reset_works(
    page: Page,
    printer: Page,
    ui_server: ServeProcess,
    api: Api,
    https_receiver: HttpsReceiver,
    smtp_server: SmtpServer,
) -> None:
    base = ui_server.base_url
    assert api.post("/api/flows", confirm_then_deliver(https_receiver.url("/o"))).is_success
    order_id = api.post("/api/orders", order_doc("WEB-P1", flow_key="confirm-first")).json()["id"]
    assert invite(api, OWNER_EMAIL, ["owner"]) is None  # mailed, not handed back
    set_password_with(page, link_in(smtp_server, 1, OWNER_EMAIL), "the owner's password")

    # Invited by mail as a viewer (on the People page); the link sets a password; a sign-in.
    page.goto(f"{base}/people")
    page.get_by_label("E-mail address").fill(EMAIL)
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Invite").click()
    expect(page.locator("#toasts")).to_contain_text(f"Invitation mailed to {EMAIL}.")
    printer.goto(link_in(smtp_server, 2))
    printer.get_by_label("New password").fill(FIRST)
    printer.get_by_role("button", name="Set password and sign in").click()
    printer.wait_for_url(f"{base}/")
    printer.get_by_role("button", name="Sign out").click()
    printer.get_by_label("E-mail address").fill(EMAIL)
    printer.get_by_label("Password").fill(FIRST)
    printer.get_by_role("button", name="Sign in").click()
    printer.wait_for_url(f"{base}/")

    # A viewer sees the order but no action, and a forged action is refused.
    printer.goto(f"{base}/orders/{order_id}")
    expect(printer.locator("#order-heading")).to_contain_text("WEB-P1")
    expect(printer.locator("section.confirm-box")).to_be_visible(timeout=20_000)
    expect(printer.get_by_role("button", name="Confirm")).to_have_count(0)
    expect(printer.get_by_role("button", name="Cancel order…")).to_have_count(0)
    expect(printer.get_by_role("link", name="Settings")).to_have_count(0)
    forged = printer.request.post(
        f"{base}/orders/{order_id}/cancel", headers={"X-CSRF-Token": csrf_of(printer)}
    )
    assert forged.status == 403
    assert "orders:order:act" in forged.text()
    assert api.get(f"/api/orders/{order_id}")["status"] == "IN_PROGRESS"

    # The owner makes them an operator: it holds at the next page, without signing in again.
    page.goto(f"{base}/people")
    row = page.locator("tr", has_text=EMAIL)
    row.get_by_label(f"Role of {EMAIL}").select_option("operator")
    row.get_by_role("button", name="Change").click()
    expect(page.locator("#toasts")).to_contain_text(f"{EMAIL} is now operator.")
    printer.goto(f"{base}/confirmations")
    card = printer.locator("section.confirm-box", has_text="Print WEB-P1?")
    card.get_by_role("button", name="Confirm").click()
    expect(printer.locator("#toasts")).to_contain_text("Confirmed: Print WEB-P1?")
    assert api.wait_for(order_id, "SUCCESS")["status"] == "SUCCESS"
    editor = printer.goto(f"{base}/flows/confirm-first")
    assert editor is not None
    assert editor.status == 403
    expect(printer.locator("main")).to_contain_text("flows:flow:edit")
    printer.goto(f"{base}/orders/{order_id}")
    expect(printer.locator("#timeline")).to_contain_text(f"by {EMAIL}")

    # A forgotten password: a reset link by mail, used once.
    printer.goto(f"{base}/account")
    printer.get_by_role("button", name="Sign out everywhere").click()
    printer.get_by_role("link", name="Forgot your password?").click()
    printer.get_by_label("E-mail address").fill(EMAIL)
    printer.get_by_role("button", name="Send me a link").click()
    expect(printer.locator("#reset-sent")).to_be_visible()
    reset = link_in(smtp_server, 3)
    printer.goto(reset)
    printer.get_by_label("New password").fill(SECOND)
    printer.get_by_role("button", name="Set password and sign in").click()
    printer.wait_for_url(f"{base}/")
    printer.goto(reset)
    expect(printer.locator("main")).to_contain_text("already used or has expired")

    page.goto(f"{base}/audit")
    expect(page.locator("#audit")).to_contain_text("user.roles")
    expect(page.locator("#audit")).to_contain_text(EMAIL)


def test_an_owner_turns_on_totp_and_then_signs_in_with_a_code(
    page: Page, ui_server: ServeProcess, api: Api, smtp_server: SmtpServer
) -> None:
    base = ui_server.base_url
    assert invite(api, OWNER_EMAIL, ["owner"]) is None
    set_password_with(page, link_in(smtp_server, 1, OWNER_EMAIL), "the owner's password")

    page.goto(f"{base}/account")
    page.get_by_role("link", name="Set up").click()
    totp = pyotp.TOTP(page.locator("#totp-secret").inner_text().strip())
    page.get_by_label("The code the app shows now").fill(totp.now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.goto(f"{base}/account")
    page.get_by_role("button", name="Sign out everywhere").click()

    page.get_by_label("E-mail address").fill(OWNER_EMAIL)
    page.get_by_label("Password").fill("the owner's password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your code")).to_be_visible()
    page.get_by_label("Code").fill(totp.now())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")
    expect(page.locator(".who")).to_contain_text(OWNER_EMAIL)
