"""manual-confirmation: the inbox, answers through the API and through e-mailed signed links,
and late answers after a timeout, on both databases."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest

from ordermill.config import Settings
from ordermill.handlers.confirmation import answer_path
from ordermill.service import Service
from tests.integration.conftest import bearer_prefix, order_doc, wait_for_status
from tests.integration.handler_flows import (
    chain,
    events,
    post_flow,
    post_order,
    smtp_settings,
    task,
    wait_for_task,
)
from tests.integration.matchers import INSTANT
from tests.support.smtp import SmtpServer

BOSS, DEPUTY = "boss@ordermill.test", "deputy@ordermill.test"
LINK = re.compile(r"(?P<kind>Confirm|Reject): (?P<url>http://testserver/\S+)")


@pytest.fixture
def settings(make_settings: Callable[..., Settings], smtp_server: SmtpServer) -> Settings:
    return smtp_settings(make_settings, smtp_server)


def approval(**payload: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "title": "Print {{ order.thirdPartyOrderId }}?",
        "description": "Size {{ orderLines[0].items[0].data.size }}",
        "assignees": [BOSS],
    }
    values.update(payload)
    return task("approve", "manual-confirmation", values)


async def open_confirmation(
    client: httpx2.AsyncClient, headers: dict[str, str], flow: dict[str, Any], third_party: str
) -> tuple[str, str]:
    """Post ``flow`` (once) and an order; returns (order id, confirmation id) once it waits."""
    if (await client.get(f"/api/flows/{flow['key']}", headers=headers)).status_code == 404:
        await post_flow(client, headers, flow)
    order = await post_order(client, headers, order_doc(third_party, flow_key=flow["key"]))
    waiting = await wait_for_task(client, headers, order["id"], "approve", "WAITING", "FAILED")
    assert waiting["status"] == "WAITING", waiting["error"]
    return order["id"], waiting["deliveryId"]


async def test_confirming_through_the_api_moves_the_flow_on(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    flow = chain(approval(), task("pause", "wait", {"durationMs": 0}))
    order_id, confirmation_id = await open_confirmation(client, acme, flow, "WEB-1")
    pending = {
        "id": confirmation_id,
        "spaceKey": "acme",
        "orderId": order_id,
        "thirdPartyOrderId": "WEB-1",
        "taskKey": "approve",
        "title": "Print WEB-1?",
        "description": "Size M",
        "assignees": [BOSS],
        "status": "pending",
        "createdAt": INSTANT,
        "dueAt": INSTANT,
        "answeredAt": None,
        "answeredBy": None,
        "comment": None,
    }
    inbox = await client.get("/api/confirmations", headers=acme)
    assert inbox.json() == {"items": [pending]}

    response = await client.post(
        f"/api/confirmations/{confirmation_id}/confirm", json={"comment": "go"}, headers=acme
    )

    assert response.status_code == 200, response.text
    actor = f"api-key:{bearer_prefix(acme)}… (test)"
    answered = {
        **pending,
        "status": "confirmed",
        "dueAt": None,
        "answeredAt": INSTANT,
        "answeredBy": actor,
        "comment": "go",
    }
    assert response.json() == answered
    done = await wait_for_status(client, acme, order_id, "SUCCESS", "FAILURE")
    assert done["status"] == "SUCCESS"
    assert done["tasks"][0]["result"]["answer"] == {
        "confirmed": True,
        "by": actor,
        "at": done["tasks"][0]["result"]["answer"]["at"],
        "comment": "go",
    }
    timeline = [(e["type"], e["taskKey"], e["actor"]) for e in await events(client, acme, order_id)]
    assert ("confirmation.confirmed", "approve", actor) in timeline
    assert timeline.index(("task.succeeded", "approve", actor)) < timeline.index(
        ("task.queued", "pause", None)
    )
    assert (await client.get("/api/confirmations", headers=acme)).json() == {"items": []}
    listed = await client.get("/api/confirmations?status=answered", headers=acme)
    assert listed.json() == {"items": [answered]}
    for verb in ("confirm", "reject"):
        again = await client.post(f"/api/confirmations/{confirmation_id}/{verb}", headers=acme)
        assert again.status_code == 409, again.text
        assert again.json()["detail"].startswith(
            f"this confirmation was already confirmed by {actor}"
        )


async def test_rejecting_fails_the_task_with_the_comment_as_reason(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    order_id, confirmation_id = await open_confirmation(client, acme, chain(approval()), "WEB-2")

    response = await client.post(
        f"/api/confirmations/{confirmation_id}/reject", json={"comment": "wrong size"}, headers=acme
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "rejected"
    done = await wait_for_status(client, acme, order_id, "FAILURE", "SUCCESS")
    assert done["status"] == "FAILURE"
    assert done["tasks"][0]["status"] == "FAILED"
    assert done["tasks"][0]["error"] == {"class": "ConfirmationRejected", "message": "wrong size"}
    kinds = [(e["type"], e["data"]) for e in await events(client, acme, order_id)]
    assert (
        "confirmation.rejected",
        {"confirmationId": confirmation_id, "comment": "wrong size"},
    ) in kinds
    assert ("task.failed", {"by": "confirmation", "error": "wrong size"}) in kinds


async def test_the_inbox_shows_only_pending_confirmations_of_the_callers_space(
    client: httpx2.AsyncClient, acme: dict[str, str], make_space: Callable[..., Any]
) -> None:
    globex = await make_space("globex")
    flow = chain(approval())
    _, mine = await open_confirmation(client, acme, flow, "WEB-3")
    _, answered = await open_confirmation(client, acme, flow, "WEB-4")
    await client.post(f"/api/confirmations/{answered}/confirm", headers=acme)
    other_doc = {**order_doc("G-1"), "spaceKey": "globex"}
    await post_flow(client, globex, {**flow, "spaceKey": "globex"})
    other = await post_order(client, globex, other_doc)
    theirs = (await wait_for_task(client, globex, other["id"], "approve", "WAITING"))["deliveryId"]

    acme_inbox = (await client.get("/api/confirmations", headers=acme)).json()["items"]
    globex_inbox = (await client.get("/api/confirmations", headers=globex)).json()["items"]

    assert [item["id"] for item in acme_inbox] == [mine]
    assert [item["id"] for item in globex_inbox] == [theirs]
    everything = (await client.get("/api/confirmations?status=all", headers=acme)).json()
    assert [(i["id"], i["status"]) for i in everything["items"]] == [
        (mine, "pending"),
        (answered, "confirmed"),
    ]
    foreign = await client.post(f"/api/confirmations/{mine}/confirm", headers=globex)
    assert foreign.status_code == 404, foreign.text
    assert (await client.get("/api/confirmations?status=nope", headers=acme)).status_code == 400


async def test_a_late_confirmation_after_a_timeout_still_counts(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    # Long enough that a busy machine still sees the confirmation waiting before it times out.
    flow = chain({**approval(), "timeoutDuration": 1500})
    order_id, confirmation_id = await open_confirmation(client, acme, flow, "WEB-5")

    late = await wait_for_status(client, acme, order_id, "UNHEALTHY")
    assert late["tasks"][0]["status"] == "TIMED_OUT"
    inbox = (await client.get("/api/confirmations", headers=acme)).json()["items"]
    assert [(i["id"], i["status"]) for i in inbox] == [(confirmation_id, "timed_out")]
    response = await client.post(f"/api/confirmations/{confirmation_id}/confirm", headers=acme)

    assert response.status_code == 200, response.text
    done = await wait_for_status(client, acme, order_id, "SUCCESS", "FAILURE")
    assert done["status"] == "SUCCESS"


async def emailed_links(smtp: SmtpServer, count: int) -> list[dict[str, str]]:
    """The Confirm and Reject links of each of the first ``count`` notification e-mails."""
    mails = await asyncio.to_thread(smtp.wait_for, count, 10.0)
    found = []
    for mail in mails:
        text = mail.message.get_body(("plain",)).get_content()
        links = {m["kind"].lower(): m["url"] for m in LINK.finditer(text)}
        found.append({"to": mail.rcpt_tos[0], **links})
    return found


async def test_the_emailed_links_answer_once(
    client: httpx2.AsyncClient, acme: dict[str, str], smtp_server: SmtpServer
) -> None:
    flow = chain(approval(assignees=[BOSS, DEPUTY], notify=True))
    order_id, confirmation_id = await open_confirmation(client, acme, flow, "WEB-6")
    boss, deputy = await emailed_links(smtp_server, 2)
    assert (boss["to"], deputy["to"]) == (BOSS, DEPUTY)
    assert smtp_server.messages[0].message["Subject"] == "Please confirm: Print WEB-6?"

    page = await client.get(boss["confirm"])
    assert page.status_code == 200
    assert "Print WEB-6?" in page.text
    assert '<form method="post">' in page.text
    answered = await client.post(boss["confirm"], data={"comment": "<ok>"})

    assert answered.status_code == 200, answered.text
    assert "Confirmed" in answered.text
    assert "&lt;ok&gt;" not in answered.text  # the comment is stored, not echoed
    done = await wait_for_status(client, acme, order_id, "SUCCESS", "FAILURE")
    assert done["tasks"][0]["result"]["answer"]["by"] == f"{BOSS} (e-mail link)"
    assert done["tasks"][0]["result"]["answer"]["comment"] == "<ok>"
    for used in (boss["confirm"], deputy["reject"]):
        again = await client.post(used)
        assert again.status_code == 409
        assert f"already confirmed by {BOSS} (e-mail link)" in again.text
    shown = await client.get(deputy["reject"])
    assert (shown.status_code, "Already answered" in shown.text) == (200, True)
    assert (await client.get("/api/confirmations", headers=acme)).json() == {"items": []}
    assert confirmation_id in boss["confirm"]


async def test_altered_and_expired_links_are_refused(
    client: httpx2.AsyncClient, acme: dict[str, str], smtp_server: SmtpServer, service: Service
) -> None:
    flow = chain(approval(notify=True))
    order_id, confirmation_id = await open_confirmation(client, acme, flow, "WEB-7")
    [links] = await emailed_links(smtp_server, 1)
    expired = service.links.sign(
        answer_path(confirmation_id, "confirm", 0), datetime.now(UTC) - timedelta(minutes=1)
    )
    refused = [
        links["confirm"].replace("/confirm/", "/reject/"),  # the action is signed too
        links["confirm"].replace("/0?", "/1?"),  # and who answers
        links["confirm"][:-3] + ("AAA" if not links["confirm"].endswith("AAA") else "BBB"),
        expired,
    ]

    for url in refused:
        for method in ("GET", "POST"):
            response = await client.request(method, url)
            assert response.status_code == 403, (method, url, response.text)
            assert "This link is not valid" in response.text

    order = await wait_for_task(client, acme, order_id, "approve", "WAITING")
    assert order["status"] == "WAITING"
