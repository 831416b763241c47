"""Browser fixtures: the real `ordermill serve`, a real https connector, and Debian's Chromium.

Chromium is /usr/bin/chromium (never a downloaded build). Without it the browser tests skip —
except in CI (`CI=true`), where a missing browser fails the run. Every test leaves a screenshot
in test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.acceptance.conftest import ADMIN_KEY, Api, ServeProcess
from tests.support.receiver import HttpsReceiver

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 375, "height": 812}

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module (sync Playwright must not outlive the module's tests)."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def ui_server(tmp_path: Path, https_receiver: HttpsReceiver) -> Iterator[ServeProcess]:
    """`ordermill serve` on a fresh SQLite database, allowed to call the https receiver."""
    yield from serving(tmp_path, serve_env(tmp_path, https_receiver))


def serving(tmp_path: Path, env: dict[str, str]) -> Iterator[ServeProcess]:
    """`ordermill serve` with ``env`` for as long as the fixture that yields from this lasts."""
    process = ServeProcess(tmp_path, env).start()
    try:
        yield process
    finally:
        process.stop()


def serve_env(tmp_path: Path, https_receiver: HttpsReceiver) -> dict[str, str]:
    return {
        "ORDERMILL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/ordermill.db",
        "ORDERMILL_DATA_DIR": str(tmp_path / "data"),
        "ORDERMILL_ADMIN_KEY": ADMIN_KEY,
        "ORDERMILL_CONNECTOR_CA_FILE": str(https_receiver.ca_pem_path),
        "ORDERMILL_CONNECTOR_ALLOW_NETWORKS": "127.0.0.1/32",
        "ORDERMILL_POLL_INTERVAL_SECONDS": "0.1",
        "ORDERMILL_LOG_FORMAT": "json",
    }


@pytest.fixture
def api(ui_server: ServeProcess) -> Iterator[Api]:
    """An API client of the space `acme`, made with the admin key."""
    client = Api(ui_server.base_url)
    client.create_space()
    try:
        yield client
    finally:
        client.close()


def api_key_of(api: Api) -> str:
    return api.headers["Authorization"].removeprefix("Bearer ")


class PageProblems:
    """JavaScript errors and Content-Security-Policy violations seen by a page."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def on_console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.errors.append(f"CSP: {message.text}")

    def on_page_error(self, error: Any) -> None:
        self.errors.append(f"JavaScript error: {error}")


def _artifact_name(node_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", node_id.split("::")[-1])[:120]


def open_page(
    browser: Browser, request: pytest.FixtureRequest, viewport: dict[str, int], **options: Any
) -> Iterator[Page]:
    context = browser.new_context(viewport=viewport, **options)
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems = PageProblems()
    page.on("console", problems.on_console)
    page.on("pageerror", problems.on_page_error)
    try:
        yield page
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(
            path=str(ARTIFACTS / f"{_artifact_name(request.node.nodeid)}.png"), full_page=True
        )
    finally:
        context.close()
    assert problems.errors == [], "the page reported errors"


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A desktop-sized page (1440 × 900); its screenshot is saved when the test ends."""
    yield from open_page(browser, request, DESKTOP)


@pytest.fixture(params=[DESKTOP, PHONE], ids=["desktop", "phone"])
def screen(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page at desktop (1440 × 900) and at phone (375 × 812) size: the test runs at both."""
    yield from open_page(browser, request, request.param)


def no_sideways_scroll(page: Page) -> None:
    """The page is no wider than the screen."""
    width = page.evaluate("window.innerWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width


OWNER_EMAIL = "owner@acme.example"
OWNER_PASSWORD = "correct horse battery staple"


def invite(api: Api, email: str, roles: list[str]) -> str | None:
    """Invite a person to the space through the API; their one-time link when none was mailed."""
    response = api.post("/api/users", {"email": email, "roles": roles})
    assert response.status_code == 201, response.text
    link: str | None = response.json()["link"]
    return link


def set_password_with(page: Page, link: str, password: str) -> None:
    """Open a one-time link, set the password and land on the first page, signed in."""
    page.goto(link)
    page.get_by_label("New password").fill(password)
    page.get_by_role("button", name="Set password and sign in").click()
    page.wait_for_url(re.compile(r"^[^?]*/(\?.*)?$"))


def sign_in_with_password(page: Page, base_url: str, email: str, password: str) -> None:
    page.goto(f"{base_url}/signin")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")


def sign_in(page: Page, base_url: str, api: Api, *, next_path: str = "/") -> None:
    """Sign in as the space's owner (invited through the API the first time, who then sets a
    password with the one-time link) and open ``next_path``."""
    if not getattr(api, "owner_invited", False):
        link = invite(api, OWNER_EMAIL, ["owner"])
        assert link is not None
        api.owner_invited = True  # type: ignore[attr-defined]
        set_password_with(page, link, OWNER_PASSWORD)
    else:
        sign_in_with_password(page, base_url, OWNER_EMAIL, OWNER_PASSWORD)
    if next_path != "/":
        page.goto(f"{base_url}{next_path}")
