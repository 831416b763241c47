"""wait: durable timers fired by the engine's timer loop, on both databases.

Tests assert states and the order of timeline events, never wall-clock durations.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2

from tests.integration.conftest import order_doc, wait_for_status
from tests.integration.handler_flows import (
    chain,
    events,
    post_flow,
    post_order,
    task,
    wait_for_task,
)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def with_deadline(third_party: str, deadline: datetime | None) -> dict[str, Any]:
    document = order_doc(third_party)
    document["orderLines"][0]["deadline"] = None if deadline is None else iso(deadline)
    return document


def timeline_of(items: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(e["type"], e["taskKey"]) for e in items if e["type"].startswith("task.")]


async def test_a_duration_wait_fires_and_then_the_flow_goes_on(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    await post_flow(
        client,
        acme,
        chain(
            task("pause", "wait", {"durationMs": 1500}), task("after", "wait", {"durationMs": 0})
        ),
    )

    order = await post_order(client, acme, order_doc())

    waiting = await wait_for_task(client, acme, order["id"], "pause", "WAITING", "SUCCEEDED")
    done = await wait_for_status(client, acme, order["id"], "SUCCESS", "FAILURE")
    assert done["status"] == "SUCCESS"
    assert waiting["result"] == {"until": waiting["dueAt"]}
    items = await events(client, acme, order["id"])
    assert timeline_of(items) == [
        ("task.queued", "pause"),
        ("task.running", "pause"),
        ("task.waiting", "pause"),
        ("task.succeeded", "pause"),
        ("task.queued", "after"),
        ("task.running", "after"),
        ("task.succeeded", "after"),
    ]
    fired = next(e for e in items if e["type"] == "task.succeeded" and e["taskKey"] == "pause")
    assert fired["data"] == {"by": "timer"}


async def test_a_wait_until_the_deadline_minus_an_offset(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    await post_flow(
        client, acme, chain(task("pause", "wait", {"until": "deadline", "offsetMs": -1000}))
    )
    # Far enough ahead that a busy machine still sees the task waiting first.
    deadline = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)

    order = await post_order(client, acme, with_deadline("WEB-D", deadline))

    waiting = await wait_for_task(client, acme, order["id"], "pause", "WAITING", "SUCCEEDED")
    assert waiting["status"] == "WAITING"
    assert waiting["dueAt"] == iso(deadline - timedelta(seconds=1))
    done = await wait_for_status(client, acme, order["id"], "SUCCESS", "FAILURE")
    assert done["status"] == "SUCCESS"


async def test_a_date_already_past_completes_at_once_and_says_so(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    await post_flow(client, acme, chain(task("pause", "wait", {"until": "2020-01-01T00:00:00Z"})))

    order = await post_order(client, acme, order_doc())

    done = await wait_for_status(client, acme, order["id"], "SUCCESS", "FAILURE")
    assert done["status"] == "SUCCESS"
    message = "2020-01-01T00:00:00.000Z had already passed when the task ran: nothing to wait for"
    assert done["tasks"][0]["result"] == {"until": "2020-01-01T00:00:00.000Z", "message": message}
    items = await events(client, acme, order["id"])
    assert "task.waiting" not in [e["type"] for e in items]
    succeeded = next(e for e in items if e["type"] == "task.succeeded")
    assert succeeded["data"] == {"attempt": 1, "message": message}


async def test_waiting_for_the_deadline_of_an_order_without_one_fails_clearly(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    await post_flow(client, acme, chain(task("pause", "wait", {"until": "deadline"})))

    order = await post_order(client, acme, with_deadline("WEB-N", None))

    done = await wait_for_status(client, acme, order["id"], "SUCCESS", "FAILURE")
    assert done["status"] == "FAILURE"
    assert done["tasks"][0]["error"] == {
        "class": "PermanentError",
        "message": 'until is "deadline", but no order line of this order has a deadline; '
        "give the order lines a deadline or wait for a fixed instant",
    }
