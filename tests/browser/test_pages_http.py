"""The UI over plain HTTP, in-process, on SQLite and PostgreSQL: no browser needed.

Sessions, CSRF, security headers, error pages and the refusals of bulk actions and rejections
without a reason are checked here; what needs a real browser (htmx, mermaid, layout) is in the
other modules of this directory.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI

from ordermill.api.app import create_app
from ordermill.config import Settings
from ordermill.service import Service
from tests.integration.test_people import WAIT_FLOW
from tests.support.factories import order_doc

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/ordermill.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


FAST_HASHING = {"password_time_cost": 1, "password_memory_kib": 1024, "password_parallelism": 1}
EMAIL = "ops@acme.example"
PASSWORD = "a long enough passphrase"


@pytest.fixture
async def app(database_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        public_url="http://testserver",
        **FAST_HASHING,
    )
    application = create_app(settings, run_worker=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    """A cookie-keeping client that follows no redirects, like a browser's network tab."""
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def person(app: FastAPI) -> str:
    """An owner of space `acme` with a password; returns the e-mail address."""
    service: Service = app.state.service
    await service.store.spaces.create_space("acme")
    user = await service.people.users.create_user(EMAIL, "Ops")
    await service.people.users.set_membership(user.id, "acme", ["owner"])
    await service.people.users.set_password(user.id, PASSWORD)
    return EMAIL


async def sign_in(
    browser: httpx2.AsyncClient, email: str, password: str = PASSWORD, next_: str = "/"
) -> httpx2.Response:
    form = await browser.get("/signin")
    token = CSRF_FIELD.search(form.text)
    assert token is not None
    return await browser.post(
        "/signin",
        data={"csrf": token.group(1), "email": email, "password": password, "next": next_},
    )


async def csrf_of(browser: httpx2.AsyncClient, path: str = "/settings") -> str:
    page = await browser.get(path)
    token = CSRF_FIELD.search(page.text)
    assert token is not None
    return token.group(1)


async def test_pages_need_a_session_and_sign_in_returns_to_the_page_asked_for(
    browser: httpx2.AsyncClient, person: str
) -> None:
    response = await browser.get("/flows")
    assert (response.status_code, response.headers["location"]) == (303, "/signin?next=%2Fflows")

    signed_in = await sign_in(browser, person, next_="/flows")

    assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/flows")
    cookie = signed_in.headers["set-cookie"]
    assert "ordermill_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "passphrase" not in cookie
    assert EMAIL not in cookie
    assert (await browser.get("/flows")).status_code == 200


async def test_a_wrong_password_an_api_key_or_an_outside_next_is_refused(
    app: FastAPI, browser: httpx2.AsyncClient, person: str
) -> None:
    wrong = await sign_in(browser, person, "not the password")
    assert wrong.status_code == 401
    assert "do not match" in wrong.text
    service: Service = app.state.service
    key, _ = await service.store.spaces.create_api_key("acme", "shop")
    form = await browser.get("/signin")
    token = CSRF_FIELD.search(form.text)
    assert token is not None
    with_key = await browser.post("/signin", data={"csrf": token.group(1), "api_key": key})
    assert with_key.status_code == 401
    assert "ordermill_session" not in with_key.headers.get("set-cookie", "")

    outside = await sign_in(browser, person, next_="//evil.example.com/")
    assert outside.headers["location"] == "/"


async def test_a_post_without_the_csrf_token_changes_nothing(
    app: FastAPI, browser: httpx2.AsyncClient, person: str
) -> None:
    await sign_in(browser, person)

    refused = await browser.post("/settings/api-keys", data={"name": "sneaky"})
    forged = await browser.post(
        "/settings/api-keys", data={"name": "sneaky"}, headers={"X-CSRF-Token": "forged"}
    )
    accepted = await browser.post(
        "/settings/api-keys", data={"name": "mine", "csrf": await csrf_of(browser)}
    )

    assert (refused.status_code, forged.status_code, accepted.status_code) == (403, 403, 303)
    assert "Reload the page" in refused.text
    service: Service = app.state.service
    names = [key.name for key in await service.store.spaces.list_api_keys("acme")]
    assert names == ["mine"]


async def test_removing_a_person_from_the_space_ends_their_session_at_once(
    app: FastAPI, browser: httpx2.AsyncClient, person: str
) -> None:
    await sign_in(browser, person)
    service: Service = app.state.service
    user = await service.people.users.find_user(person)
    assert user is not None
    assert (await browser.get("/")).status_code == 200

    await service.people.users.remove_membership(user.id, "acme")

    assert (await browser.get("/")).status_code == 303


async def test_ui_pages_carry_a_strict_content_security_policy(
    browser: httpx2.AsyncClient, person: str
) -> None:
    await sign_in(browser, person)

    for path in ("/", "/flows", "/confirmations", "/settings", "/signin", "/ui/static/app.js"):
        response = await browser.get(path)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self';" in policy, path
        assert response.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" not in (await browser.get("/healthz")).headers
    assert "<script>" not in (await browser.get("/")).text  # every script is a static file


async def test_an_unexpected_error_shows_a_page_with_a_correlation_id(
    app: FastAPI, browser: httpx2.AsyncClient, person: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sign_in(browser, person)
    service: Service = app.state.service

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(service.store, "list_orders", broken)
    page = await browser.get("/")
    fragment = await browser.get("/orders/table", headers={"HX-Request": "true"})

    assert page.status_code == 500
    assert "Something went wrong on our side" in page.text
    assert re.search(r"correlation id [0-9a-f]{16}", page.text)
    assert "boom" not in page.text
    assert "RuntimeError" not in page.text
    assert fragment.status_code == 500
    assert fragment.headers["hx-retarget"] == "#toasts"
    assert "correlation id" in fragment.text


async def test_orders_page_filters_counts_and_escapes_on_this_database(
    app: FastAPI, browser: httpx2.AsyncClient, person: str
) -> None:
    service: Service = app.state.service
    await service.save_flow("acme", WAIT_FLOW)
    for number in range(3):
        body = order_doc(f"WEB-{number}<i>", flow_key="f1")
        await service.create_order(body, start=number > 0, actor="test")
    await sign_in(browser, person)

    page = await browser.get("/", params={"q": "WEB-1"})
    created = await browser.get("/", params={"status": "CREATED"})

    assert "WEB-1&lt;i&gt;" in page.text
    assert "WEB-1<i>" not in page.text
    assert "WEB-2&lt;i&gt;" not in page.text
    assert re.search(r"IN_PROGRESS <span class=\"count\">1</span>", page.text)
    assert created.text.count('class="order-row"') == 1
    assert re.search(r"All <span class=\"count\">3</span>", created.text)


HTMX = {"HX-Request": "true"}


async def test_a_bulk_cancel_counts_first_and_cancels_only_with_a_reason(
    app: FastAPI, browser: httpx2.AsyncClient, person: str
) -> None:
    service: Service = app.state.service
    await service.save_flow("acme", WAIT_FLOW)
    ids = []
    for tpid in ("GENT-1", "GENT-2", "LEUVEN-1"):
        order, _ = await service.create_order(
            order_doc(tpid, flow_key="f1"), start=False, actor="t"
        )
        ids.append(order.id)
    await sign_in(browser, person)
    form = {"csrf": await csrf_of(browser, "/"), "q": "gent-"}

    counted = await browser.post("/bulk/cancel/preview", data=form, headers=HTMX)
    no_reason = await browser.post("/bulk/cancel", data=form, headers=HTMX)
    statuses = [(await service.store.get_order("acme", i)).status.value for i in ids]

    assert counted.status_code == 200
    assert 'data-count="2"' in counted.text
    assert "2 orders would be cancelled" in counted.text
    assert no_reason.status_code == 400
    assert statuses == ["CREATED", "CREATED", "CREATED"]

    done = await browser.post(
        "/bulk/cancel", data={**form, "reason": "batch withdrawn"}, headers=HTMX
    )

    assert done.status_code == 200
    assert "Cancelled 2 orders." in done.text
    after = [await service.store.get_order("acme", i) for i in ids]
    assert [(o.status.value, o.cancel_reason) for o in after] == [
        ("CANCELLED", "batch withdrawn"),
        ("CANCELLED", "batch withdrawn"),
        ("CREATED", None),
    ]
    unknown = await browser.post("/bulk/explode/preview", data=form, headers=HTMX)
    assert unknown.status_code == 404
    nothing = await browser.post("/bulk/retry/preview", data=form, headers=HTMX)
    assert "0 orders would be retried" in nothing.text
    assert 'id="bulk-confirm"' not in nothing.text  # nothing to confirm
    restart = await browser.post("/bulk/restart", data=form, headers=HTMX)
    assert restart.status_code == 400  # cannot be undone: needs a reason
    assert (
        "2 orders would be restarted"
        in (await browser.post("/bulk/restart/preview", data=form, headers=HTMX)).text
    )  # cancelled orders can be restarted


async def test_a_reject_without_a_reason_is_refused(
    browser: httpx2.AsyncClient, person: str
) -> None:
    await sign_in(browser, person)
    form = {"csrf": await csrf_of(browser, "/"), "decision": "reject", "comment": "  "}

    answer = await browser.post("/confirmations/cnf_missing/answer", data=form, headers=HTMX)

    assert answer.status_code == 400
    assert "say why you reject" in answer.text


async def test_an_order_action_from_a_plain_form_redirects_to_the_order_with_its_toast(
    app: FastAPI, browser: httpx2.AsyncClient, person: str
) -> None:
    service: Service = app.state.service
    await service.save_flow("acme", WAIT_FLOW)
    order, _ = await service.create_order(
        order_doc("GENT-9", flow_key="f1"), start=False, actor="t"
    )
    await sign_in(browser, person)
    form = {"csrf": await csrf_of(browser, f"/orders/{order.id}")}

    started = await browser.post(f"/orders/{order.id}/start", data=form)

    assert (started.status_code, started.headers["location"]) == (303, f"/orders/{order.id}")
    assert (await service.store.get_order("acme", order.id)).status.value == "IN_PROGRESS"
    page = await browser.get(started.headers["location"])
    assert "Order started." in page.text
    assert "Order started." not in (await browser.get(f"/orders/{order.id}")).text  # once
    opened = await browser.get(f"/orders/{order.id}?task=t")
    assert 'data-task-detail="t"' in opened.text
    assert (await browser.get(f"/orders/{order.id}?task=nope")).status_code == 404
