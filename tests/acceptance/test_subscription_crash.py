"""A subscription under the real `ordermill serve`: killed (SIGKILL) between a change and its
event's delivery, the restarted server delivers every event, and none that did not happen."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import Api, ServeProcess
from tests.acceptance.test_cli import run
from tests.acceptance.test_flows_as_code import remote
from tests.support.factories import flow_doc, order_doc
from tests.support.receiver import HttpsReceiver, ReceivedRequest, Reply

SUBSCRIBED = ("order.created", "order.status", "task.failed")


@pytest.mark.slow  # a killed dispatcher's lease (16 s at least) must run out
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


@pytest.mark.slow  # seven CLI processes
def test_the_cli_creates_lists_tests_disables_and_deletes_a_subscription(
    api: Api, serve: ServeProcess, https_receiver: HttpsReceiver, tmp_path: Path
) -> None:
    env = remote(api, serve)
    uri = https_receiver.url("/cli")
    made = run(
        "subscriptions",
        "create",
        "--space",
        "acme",
        "--uri",
        uri,
        "--event",
        "order.status",
        cwd=tmp_path,
        env=env,
    )
    assert made.returncode == 0, made.stderr
    subscription = made.stdout.split()[0]
    assert subscription.startswith("sub_")
    listed = run("subscriptions", "list", "--space", "acme", cwd=tmp_path, env=env)
    assert subscription in listed.stdout
    assert "order.status" in listed.stdout
    tested = run("subscriptions", "test", "--space", "acme", subscription, cwd=tmp_path, env=env)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "delivered: the endpoint answered 201" in tested.stdout
    (request,) = https_receiver.wait_for(1, path="/cli")
    assert request.json()["event"]["type"] == "subscription.test"
    off = run(
        "subscriptions",
        "update",
        "--space",
        "acme",
        subscription,
        "--disable",
        cwd=tmp_path,
        env=env,
    )
    assert "OFF since" in off.stdout
    on = run("subscriptions", "enable", "--space", "acme", subscription, cwd=tmp_path, env=env)
    assert "  on" in on.stdout
    gone = run("subscriptions", "delete", "--space", "acme", subscription, cwd=tmp_path, env=env)
    assert gone.returncode == 0, gone.stderr
    after = run("subscriptions", "list", "--space", "acme", cwd=tmp_path, env=env)
    assert subscription not in after.stdout
