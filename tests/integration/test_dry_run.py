"""POST /api/flows/dry-run: a flow against a sample order, scripted answers, no side effects."""

from __future__ import annotations

from typing import Any

import httpx2

from tests.support.factories import order_doc, rest_task, stage_doc, staged_flow


def flow_with_email() -> dict[str, Any]:
    tasks = [
        rest_task("https://erp.example.com/orders", "book-erp", ["cure"], retry={"maxAttempts": 3}),
        {"key": "cure", "handlerKey": "wait", "payload": {"durationMs": 60_000}, "next": ["mail"]},
        {
            "key": "mail",
            "handlerKey": "send-email",
            "payload": {
                "recipient": ["{{ order.data.customerEmail }}"],
                "subject": "Order {{ order.thirdPartyOrderId }}",
                "body": "Hello {{ order.data.firstName }}",
            },
            "next": [],
        },
    ]
    return staged_flow("made-to-order", "Made to order", stage_doc("make", ["book-erp"], tasks))


async def test_a_dry_run_answers_timeline_attempts_bodies_mails_and_problems_and_stores_nothing(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    outcomes = {"book-erp": [{"status": 500}, {"status": 201}]}

    answer = await client.post(
        "/api/flows/dry-run",
        json={"flow": flow_with_email(), "order": order_doc("WEB-D1"), "outcomes": outcomes},
        headers=acme,
    )

    assert answer.status_code == 200, answer.text
    run = answer.json()
    assert run["status"] == "FAILURE"  # the e-mail's template needs a value the order lacks
    assert run["tasks"]["mail"]["status"] == "FAILED"
    book = run["tasks"]["book-erp"]
    assert [a["outcome"] for a in book["attempts"]] == ["retry", "succeeded"]
    assert [r["attempt"] for r in run["requests"]] == [1, 2]
    [first, _] = run["requests"]
    assert first["url"] == "https://erp.example.com/orders"
    assert first["body"]["order"]["thirdPartyOrderId"] == "WEB-D1"
    assert first["body"]["context"]["taskKey"] == "book-erp"
    [mail] = run["emails"]
    assert (mail["to"], mail["subject"]) == (["jo@example.com"], "Order WEB-D1")
    assert run["problems"] == [
        {
            "taskKey": "mail",
            "message": "the body template uses an undefined value: 'dict object' has no "
            "attribute 'firstName'; fix the order or give the value a fallback, e.g. "
            "{{ order.data.note | default('') }}",
        }
    ]
    types = [(e["type"], e["taskKey"]) for e in run["timeline"]]
    assert types.index(("task.queued", "cure")) < types.index(("task.queued", "mail"))
    times = {e["taskKey"]: e["at"] for e in run["timeline"] if e["type"] == "task.queued"}
    assert times["mail"] > times["cure"]  # the cure took its minute on the simulated clock
    listed = await client.get("/api/orders", headers=acme)
    assert listed.json()["items"] == []
    flows = await client.get("/api/flows", headers=acme)
    assert flows.json()["items"] == []


async def test_a_dry_run_needs_a_flow(client: httpx2.AsyncClient, acme: dict[str, str]) -> None:
    answer = await client.post("/api/flows/dry-run", json={"order": order_doc()}, headers=acme)
    assert answer.status_code == 400
