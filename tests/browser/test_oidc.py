"""Single sign-on in Chromium: "Sign in with …" through the test provider to the orders page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.acceptance.conftest import Api, ServeProcess
from tests.browser.conftest import DESKTOP, invite, open_page, serve_env, serving
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
    yield from serving(tmp_path, env)


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """Chromium does not know the test CA; ordermill checks the provider's certificate itself."""
    yield from open_page(browser, request, DESKTOP, ignore_https_errors=True)


def test_sign_in_with_the_provider_lands_on_the_orders_page(
    page: Page, sso_server: ServeProcess, provider: TestProvider
) -> None:
    api = Api(sso_server.base_url)
    try:
        api.create_space()
        invite(api, "sso@acme.example", ["operator"])
    finally:
        api.close()
    provider.person("sso@acme.example")

    page.goto(f"{sso_server.base_url}/signin")
    page.get_by_role("link", name="Sign in with Test IdP").click()
    page.wait_for_url(f"{sso_server.base_url}/")

    expect(page.get_by_role("heading", name="Orders")).to_be_visible()
    expect(page.get_by_text("sso@acme.example")).to_be_visible()
    assert provider.tokens_issued == 1
