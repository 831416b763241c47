"""Single sign-on in Chromium: "Sign in with …" through the test provider to the orders page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.acceptance.conftest import Api, ServeProcess
from tests.browser.conftest import ARTIFACTS, DESKTOP, PageProblems, invite, serve_env
from tests.support.oidc import TestProvider
from tests.support.receiver import HttpsReceiver

pytestmark = pytest.mark.browser


@pytest.fixture
def provider(https_receiver: HttpsReceiver) -> TestProvider:
    return TestProvider(https_receiver)


@pytest.fixture
def sso_server(tmp_path: Path, provider: TestProvider) -> Iterator[ServeProcess]:
    env = {
        **serve_env(tmp_path, provider.receiver),
        "ORDERMILL_OIDC_DISCOVERY_URL": provider.discovery_url,
        "ORDERMILL_OIDC_CLIENT_ID": provider.client_id,
        "ORDERMILL_OIDC_CLIENT_SECRET": provider.client_secret,
        "ORDERMILL_OIDC_LABEL": "Test IdP",
        "ORDERMILL_OIDC_CA_FILE": str(provider.receiver.ca_pem_path),
    }
    process = ServeProcess(tmp_path, env).start()
    try:
        yield process
    finally:
        process.stop()


def test_sign_in_with_the_provider_lands_on_the_orders_page(
    browser: Browser, sso_server: ServeProcess, provider: TestProvider
) -> None:
    api = Api(sso_server.base_url)
    try:
        api.create_space()
        invite(api, "sso@acme.example", ["operator"])
    finally:
        api.close()
    provider.person("sso@acme.example")
    # Chromium does not know the test CA; the provider's certificate is checked by ordermill.
    context = browser.new_context(viewport=DESKTOP, ignore_https_errors=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems = PageProblems()
    page.on("console", problems.on_console)
    page.on("pageerror", problems.on_page_error)
    try:
        page.goto(f"{sso_server.base_url}/signin")
        page.get_by_role("link", name="Sign in with Test IdP").click()
        page.wait_for_url(f"{sso_server.base_url}/")
        expect(page.get_by_role("heading", name="Orders")).to_be_visible()
        expect(page.get_by_text("sso@acme.example")).to_be_visible()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "test_sign_in_with_the_provider.png"))
    finally:
        context.close()
    assert provider.tokens_issued == 1
    assert problems.errors == []
