"""The settings page's subscriptions: subscribe, test, see a disabled one, re-enable it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from ordermill.service import Service
from ordermill.storage import tables as t
from tests.browser.test_pages_http import csrf_of
from tests.integration.conftest import sign_in_owner, wait_for_requests
from tests.support.receiver import HttpsReceiver


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_subscribe_test_and_re_enable_from_the_settings_page(
    service: Service,
    acme: dict[str, str],
    browser: httpx2.AsyncClient,
    https_receiver: HttpsReceiver,
) -> None:
    await sign_in_owner(service, browser)
    uri = https_receiver.url("/ui")
    made = await browser.post(
        "/settings/subscriptions",
        data={"uri": uri, "events": ["order.status"], "csrf": await csrf_of(browser)},
    )
    assert made.status_code == 303
    (subscription,) = await service.store.subscriptions.of_space("acme")
    assert subscription.events == ("order.status",)
    page = (await browser.get("/settings")).text
    assert uri in page
    assert "Re-enable" not in page

    tested = await browser.post(
        f"/settings/subscriptions/{subscription.id}/test", data={"csrf": await csrf_of(browser)}
    )
    assert tested.status_code == 303
    (request,) = await wait_for_requests(https_receiver, 1, path="/ui")
    assert request.json()["event"]["type"] == "subscription.test"

    async with service.db.transaction() as conn:
        await conn.execute(
            update(t.subscriptions)
            .where(t.subscriptions.c.id == subscription.id)
            .values(enabled=False, disabled_at=service.clock.now(), failures=10)
        )
    page = (await browser.get("/settings")).text
    assert "Re-enable and redeliver everything since" in page
    assert "disabled" in page
    again = await browser.post(
        f"/settings/subscriptions/{subscription.id}/enable",
        data={"redeliver": "true", "csrf": await csrf_of(browser)},
    )
    assert again.status_code == 303
    on = await service.store.subscriptions.get("acme", subscription.id)
    assert on.enabled
    assert on.failures == 0
