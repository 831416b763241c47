"""Every page, at desktop and phone sizes: axe-core finds no serious or critical violation, no page
is wider than the screen, no page asks any host but the server, and the confirmations inbox and
its count in the navigation follow new questions live."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.acceptance.conftest import Api, ServeProcess
from tests.browser.conftest import sign_in
from tests.browser.test_confirmations import confirm_then_deliver
from tests.support.factories import flow_doc, order_doc
from tests.support.receiver import HttpsReceiver, Reply

pytestmark = pytest.mark.browser
AXE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text()
SERIOUS = ("serious", "critical")


def axe_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations of the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE + "\n;0")  # evaluated by the test, never served by the page
    found = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [
        f"{v['impact']}: {v['id']} at {', '.join(v['nodes'][:3])}"
        for v in found
        if v["impact"] in SERIOUS
    ]


def check(page: Page, where: str) -> list[str]:
    problems = [f"{where}: {v}" for v in axe_violations(page)]
    width, scroll = page.evaluate("[window.innerWidth, document.documentElement.scrollWidth]")
    if scroll > width:
        problems.append(f"{where}: {scroll} px wide on a {width} px screen")
    return problems


@pytest.mark.slow
def test_every_page_passes_axe_fits_the_screen_and_asks_only_the_server(
    screen: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    base = ui_server.base_url
    own_host = urlsplit(base).netloc
    elsewhere: list[str] = []
    screen.on(
        "request",
        lambda r: (
            elsewhere.append(r.url)
            if urlsplit(r.url).scheme in ("http", "https", "ws", "wss")
            and urlsplit(r.url).netloc != own_host
            else None
        ),
    )
    https_receiver.script("/orders", [Reply(400, {"detail": "Unknown material code"})])
    api.post("/api/flows", flow_doc(https_receiver.url("/orders")))
    api.post("/api/flows", confirm_then_deliver(https_receiver.url("/deliver")))
    failed = api.post("/api/orders", order_doc("WEB-A11Y-1")).json()["id"]
    api.post("/api/orders", order_doc("WEB-A11Y-2", flow_key="confirm-first"))
    api.wait_for(failed, "FAILURE")

    screen.goto(f"{base}/signin")
    problems = check(screen, "sign-in")
    sign_in(screen, base, api)
    expect(screen.locator("tr.order-row")).to_have_count(2)
    problems += check(screen, "orders")
    screen.locator("#more-filters > summary").click()
    problems += check(screen, "orders with filters open")

    screen.goto(f"{base}/orders/{failed}")
    screen.locator("#why-show-task").click()
    screen.locator("#task-detail details.exchange").first.locator("summary").click()
    expect(screen.locator("#task-detail pre.curl")).to_be_visible()
    screen.wait_for_timeout(300)  # the graph is drawn
    problems += check(screen, "order with its delivery log open")

    for path in (
        "/confirmations",
        "/flows",
        "/flows/made-to-order",
        "/settings",
        "/orders/ord_missing",
    ):
        screen.goto(f"{base}{path}")
        screen.wait_for_load_state("load")
        problems += check(screen, path)

    assert problems == []
    assert elsewhere == []


def test_the_confirmations_inbox_and_its_count_follow_new_questions_live(
    screen: Page, ui_server: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    api.post("/api/flows", confirm_then_deliver(https_receiver.url("/deliver")))
    sign_in(screen, ui_server.base_url, api, next_path="/confirmations")
    expect(screen.get_by_text("Nothing is waiting for a confirmation")).to_be_visible()
    screen.evaluate("window.__sameDocument = true")

    api.post("/api/orders", order_doc("WEB-ASK-1", flow_key="confirm-first"))

    expect(screen.locator("section.confirm-box")).to_contain_text(
        "Print WEB-ASK-1?", timeout=10_000
    )
    expect(screen.locator("#nav-pending")).to_contain_text("1 waiting", timeout=10_000)
    comment = screen.get_by_label("Comment")
    comment.fill("checked the model")
    with screen.expect_response(lambda r: "/confirmations/live" in r.url, timeout=10_000):
        pass
    screen.wait_for_timeout(100)
    expect(comment).to_have_value("checked the model")  # a refresh keeps what you typed
    assert screen.evaluate("window.__sameDocument") is True
