"""The worked story of docs/howto/fix-a-failed-order.md, through the real CLI and API:
a wrong connector URL fails the order; the flow is fixed (version 2); the order is restarted on
the latest version and succeeds. Pausing, resuming and skipping go through the CLI too."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.conftest import Api, ServeProcess
from tests.acceptance.test_cli import run
from tests.acceptance.test_flows_as_code import remote, write
from tests.support.factories import order_doc, rest_task, stage_doc, staged_flow
from tests.support.receiver import HttpsReceiver, Reply


def erp_flow(book_url: str, notify_url: str) -> dict[str, object]:
    tasks = [
        rest_task(book_url, "book-erp", ["notify-shop"], retry={"maxAttempts": 1}),
        rest_task(notify_url, "notify-shop", [], retry={"maxAttempts": 1}),
    ]
    flow = staged_flow("made-to-order", "Made to order", stage_doc("make", ["book-erp"], tasks))
    flow.pop("spaceKey")
    return flow


def push_flow_with_a_typo(tmp_path: Path, env: dict[str, str], receiver: HttpsReceiver) -> Path:
    """Push the flow whose ERP URL has a typo (``/erp/order``: 404); the right one answers 201.
    Answers the flow file, to fix and push again."""
    receiver.script("/erp/orders", Reply(status=201))
    receiver.script("/erp/order", Reply(status=404))
    receiver.script("/shop/notify", Reply(status=201))
    path = write(
        tmp_path / "made-to-order.json",
        erp_flow(receiver.url("/erp/order"), receiver.url("/shop/notify")),
    )
    assert run("flows", "push", str(path), cwd=tmp_path, env=env).returncode == 0
    return path


def test_wrong_url_then_fixed_flow_then_restart_on_latest_ends_in_success(
    tmp_path: Path, api: Api, serve: ServeProcess, https_receiver: HttpsReceiver
) -> None:
    env = remote(api, serve)
    path = push_flow_with_a_typo(tmp_path, env, https_receiver)
    created = api.post("/api/orders", order_doc())
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    failed = api.wait_for(order_id, "FAILURE", "SUCCESS")
    assert failed["status"] == "FAILURE"

    write(path, erp_flow(https_receiver.url("/erp/orders"), https_receiver.url("/shop/notify")))
    pushed = run("flows", "push", str(path), cwd=tmp_path, env=env)
    restarted = run(
        "orders",
        "restart",
        order_id,
        "--flow-version",
        "latest",
        "--reason",
        "URL fixed",
        cwd=tmp_path,
        env=env,
    )

    assert "made-to-order updated (version 2)" in pushed.stdout, pushed.stdout + pushed.stderr
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert f"{order_id}: IN_PROGRESS, flow version 2" in restarted.stdout
    done = api.wait_for(order_id, "SUCCESS", "FAILURE")
    assert done["status"] == "SUCCESS"
    assert done["flowVersion"] == 2
    assert [(r["fromVersion"], r["toVersion"]) for r in done["restarts"]] == [(1, 2)]
    statuses = {task["key"]: task["status"] for task in done["tasks"]}
    assert statuses == {
        "book-erp": "SUCCEEDED",
        "book-erp~1": "FAILED",
        "notify-shop": "SUCCEEDED",
    }
    again = run("orders", "restart", order_id, cwd=tmp_path, env=env)
    assert again.returncode == 1
    assert "a SUCCESS order cannot be restarted" in again.stderr


def test_pause_resume_and_skip_from_the_cli(
    tmp_path: Path, api: Api, serve: ServeProcess, https_receiver: HttpsReceiver
) -> None:
    env = remote(api, serve)
    https_receiver.script("/erp/orders", Reply(status=422))
    https_receiver.script("/shop/notify", Reply(status=201))
    path = write(
        tmp_path / "made-to-order.json",
        erp_flow(https_receiver.url("/erp/orders"), https_receiver.url("/shop/notify")),
    )
    assert run("flows", "push", str(path), cwd=tmp_path, env=env).returncode == 0
    created = api.post("/api/orders", {**order_doc(), "start": False})
    order_id = created.json()["id"]

    paused = run("orders", "pause", order_id, "--reason", "material out", cwd=tmp_path, env=env)
    explained = run("orders", "explain", order_id, cwd=tmp_path, env=env)
    started = api.post(f"/api/orders/{order_id}/start", {})
    resumed = run("orders", "resume", order_id, cwd=tmp_path, env=env)

    assert paused.returncode == 0, paused.stderr
    assert f"{order_id}: CREATED, paused (material out)" in paused.stdout
    assert explained.returncode == 0, explained.stderr
    assert explained.stdout.startswith("Paused for ")
    assert "(material out)" in explained.stdout
    assert started.status_code == 200
    assert started.json()["tasks"][0]["dueAt"] is None  # held while paused
    assert resumed.returncode == 0, resumed.stderr
    assert api.wait_for(order_id, "FAILURE", "SUCCESS")["status"] == "FAILURE"
    skipped = run(
        "orders",
        "skip",
        order_id,
        "book-erp",
        "--reason",
        "booked by phone",
        "--result",
        json.dumps({"erpId": "E-17"}),
        cwd=tmp_path,
        env=env,
    )
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    done = api.wait_for(order_id, "SUCCESS", "FAILURE")
    assert done["status"] == "SUCCESS"
    events = api.get(f"/api/orders/{order_id}/events")["items"]
    reasons = [(e["type"], (e["data"] or {}).get("reason")) for e in events if e["actor"]]
    assert ("order.paused", "material out") in reasons
    assert ("task.skipped", "booked by phone") in reasons


def test_flows_dry_run_shows_the_bodies_a_fixed_flow_would_send_and_sends_nothing(
    tmp_path: Path, api: Api, serve: ServeProcess, https_receiver: HttpsReceiver
) -> None:
    env = remote(api, serve)
    path = write(
        tmp_path / "made-to-order.json",
        erp_flow(https_receiver.url("/erp/orders"), https_receiver.url("/shop/notify")),
    )
    order = write(tmp_path / "order.json", order_doc("WEB-DRY"))
    outcomes = write(tmp_path / "outcomes.json", {"book-erp": [{"status": 503}]})

    result = run("flows", "dry-run", str(path), "--order", str(order), cwd=tmp_path, env=env)
    down = run(
        "flows",
        "dry-run",
        str(path),
        "--order",
        str(order),
        "--outcomes",
        str(outcomes),
        cwd=tmp_path,
        env=env,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Final status: SUCCESS" in result.stdout
    assert f"POST {https_receiver.url('/erp/orders')} (attempt 1)" in result.stdout
    assert f"POST {https_receiver.url('/shop/notify')} (attempt 1)" in result.stdout
    assert down.returncode == 1
    assert "Final status: FAILURE" in down.stdout  # one attempt only: maxAttempts is 1
    assert "the connector answered 503" in down.stdout
    assert https_receiver.requests == []  # nothing was sent
    assert api.get("/api/orders")["items"] == []
