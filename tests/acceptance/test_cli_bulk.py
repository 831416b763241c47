"""The bulk forms of ``ordermill orders retry|pause|resume|cancel|restart`` through the real CLI
and API: the dry count first, a question before acting (unless ``--yes``), then the action on
every order the filter matches."""

from __future__ import annotations

from pathlib import Path

from tests.acceptance.conftest import Api, ServeProcess
from tests.acceptance.test_cli import run
from tests.acceptance.test_fix_a_failed_order import erp_flow, push_flow_with_a_typo
from tests.acceptance.test_flows_as_code import remote, write
from tests.support.factories import order_doc
from tests.support.receiver import HttpsReceiver


def test_bulk_commands_count_first_ask_then_act_on_the_orders_the_filter_matches(
    tmp_path: Path, api: Api, serve: ServeProcess, https_receiver: HttpsReceiver
) -> None:
    env = remote(api, serve)
    path = push_flow_with_a_typo(tmp_path, env, https_receiver)
    failed = [api.post("/api/orders", order_doc(f"WEB-B{n}")).json()["id"] for n in range(2)]
    waiting = api.post("/api/orders", {**order_doc("WEB-W"), "start": False}).json()["id"]
    for order_id in failed:
        assert api.wait_for(order_id, "FAILURE", "SUCCESS")["status"] == "FAILURE"

    counted = run("orders", "pause", "--status", "created", "--dry-run", cwd=tmp_path, env=env)
    declined = run("orders", "pause", "--status", "CREATED", cwd=tmp_path, env=env, answer="n\n")

    assert counted.returncode == 0, counted.stdout + counted.stderr
    assert counted.stdout.splitlines() == [
        "1 of 1 matching orders would be paused (0 do not fit):",
        f"  {waiting}",
    ]
    assert declined.returncode == 1
    assert "Pause 1 order? [y/N]" in declined.stdout
    assert "Nothing changed." in declined.stderr
    assert api.get(f"/api/orders/{waiting}")["paused"] is False

    paused = run(
        "orders", "pause", "--status", "CREATED", "--reason", "stocktake",
        cwd=tmp_path, env=env, answer="y\n",
    )  # fmt: skip
    assert paused.returncode == 0, paused.stdout + paused.stderr
    assert paused.stdout.splitlines()[-1].endswith("? [y/N]: 1 order paused.")
    assert api.get(f"/api/orders/{waiting}")["pause"]["reason"] == "stocktake"

    write(path, erp_flow(https_receiver.url("/erp/orders"), https_receiver.url("/shop/notify")))
    assert run("flows", "push", str(path), cwd=tmp_path, env=env).returncode == 0
    restarted = run(
        "orders", "restart", "--flow", "made-to-order", "--reason", "URL fixed", "--yes",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert "2 of 2 matching orders would be restarted (0 do not fit):" in restarted.stdout
    assert restarted.stdout.splitlines()[-1] == "2 orders restarted."
    for order_id in failed:
        done = api.wait_for(order_id, "SUCCESS", "FAILURE")
        assert (done["status"], done["flowVersion"]) == ("SUCCESS", 2)
        assert done["restarts"][0]["reason"] == "URL fixed"

    nothing = run("orders", "retry", "--dry-run", cwd=tmp_path, env=env)
    both = run("orders", "cancel", waiting, "--status", "CREATED", cwd=tmp_path, env=env)
    cancelled = run(
        "orders", "cancel", "--status", "CREATED", "--reason", "closing", "-y",
        cwd=tmp_path, env=env,
    )  # fmt: skip

    assert nothing.stdout.splitlines() == [
        "0 of 0 matching orders would be retried (0 do not fit):"
    ]
    assert both.returncode == 2
    assert "not both" in both.stderr
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    view = api.get(f"/api/orders/{waiting}")
    assert (view["status"], view["cancelReason"]) == ("CANCELLED", "closing")
