"""A subscription under the real `ordermill serve`: killed (SIGKILL) between a change and its
event's delivery, the restarted server delivers every event, and none that did not happen."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.acceptance.conftest import Api, ServeProcess
from tests.support.factories import flow_doc, order_doc
from tests.support.receiver import HttpsReceiver, ReceivedRequest, Reply

SUBSCRIBED = ("order.created", "order.status", "task.failed")

pytestmark = pytest.mark.slow  # a killed dispatcher's lease (16 s at least) must run out


def test_a_sigkill_between_a_change_and_its_delivery_loses_no_event(
    api: Api,
    serve: ServeProcess,
    https_receiver: HttpsReceiver,
    make_api: Callable[[str], Api],
) -> None:
    gate = threading.Event()
    held = threading.Event()
    accepted: list[dict[str, Any]] = []
    lock = threading.Lock()

    def hold_the_first(request: ReceivedRequest) -> Reply:
        if not held.is_set():
            held.set()
            gate.wait(20)  # the server dies while it waits for this answer
            return Reply(503)
        with lock:
            accepted.append({"id": request.headers["webhook-id"], **request.json()})
        return Reply(201)

    https_receiver.respond("/events", hold_the_first)
    assert api.post("/api/flows", flow_doc(https_receiver.url("/o"))).status_code == 201
    made = api.post(
        "/api/spaces/acme/subscriptions",
        {"uri": https_receiver.url("/events"), "events": list(SUBSCRIBED)},
    )
    assert made.status_code == 201, made.text
    orders = [api.post("/api/orders", order_doc(f"K-{i}")).json()["id"] for i in range(3)]
    assert held.wait(20), "no event was delivered before the crash"

    serve.kill()
    gate.set()
    serve.start()

    again = make_api(serve.base_url)
    again.headers = api.headers
    wanted: dict[str, list[tuple[Any, ...]]] = {}
    for order_id in orders:
        again.wait_for(order_id, "SUCCESS")
        events = again.get(f"/api/orders/{order_id}/events")
        items = events["items"] if isinstance(events, dict) else events
        wanted[order_id] = [
            (e["type"], (e.get("data") or {}).get("to") if e["type"] == "order.status" else None)
            for e in items
            if e["type"] in SUBSCRIBED
        ]
    total = sum(len(v) for v in wanted.values())
    deadline = time.monotonic() + 40  # the dead server's lease (5 s) must pass first
    while time.monotonic() < deadline:
        with lock:
            if len({a["id"] for a in accepted}) >= total:
                break
        time.sleep(0.1)
    with lock:
        once = {a["id"]: a for a in accepted}
    got: dict[str, list[tuple[Any, ...]]] = {order_id: [] for order_id in orders}
    for body in sorted(once.values(), key=lambda a: accepted.index(a)):
        got[body["context"]["orderId"]].append((body["event"]["type"], body["event"].get("to")))
    assert got == wanted
