"""What `ordermill serve`'s engine logs at the default level (INFO): the orders that need an
operator, each line with the order and task it is about, and nothing for orders that succeed."""

from __future__ import annotations

import json
from typing import Any

from tests.acceptance.conftest import Api, ServeProcess
from tests.support.factories import flow_doc, order_doc
from tests.support.receiver import HttpsReceiver, Reply


def info_lines(serve: ServeProcess) -> list[dict[str, Any]]:
    """The JSON log lines at INFO and above (ORDERMILL_LOG_FORMAT=json, the default level)."""
    lines = []
    for text in serve.log().splitlines():
        if text.startswith("{"):
            line = json.loads(text)
            if line["level"] in ("info", "warning", "error", "critical"):
                lines.append(line)
    return lines


def test_failed_and_timed_out_tasks_and_their_orders_are_logged_with_their_ids(
    serve: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/refusing", [Reply(400, {"detail": "unknown SKU"})])
    api.post("/api/flows", flow_doc(https_receiver.url("/refusing"), key="refusing"))
    api.post(
        "/api/flows",
        flow_doc(
            https_receiver.url("/slow"), key="silent", sends_feedback=True, timeoutDuration=300
        ),
    )
    api.post("/api/flows", flow_doc(https_receiver.url("/ok"), key="fine"))
    failed = api.post("/api/orders", order_doc("WEB-L1", flow_key="refusing")).json()["id"]
    stalled = api.post("/api/orders", order_doc("WEB-L2", flow_key="silent")).json()["id"]
    fine = api.post("/api/orders", order_doc("WEB-L3", flow_key="fine")).json()["id"]
    api.wait_for(failed, "FAILURE")
    api.wait_for(stalled, "UNHEALTHY")
    api.wait_for(fine, "SUCCESS")
    serve.stop()  # flushes the log

    lines = info_lines(serve)
    about = [
        (line["event"], line.get("order_id"), line.get("task_key"), line.get("status"))
        for line in lines
        if line["logger"] == "ordermill.orders"
    ]
    assert sorted(about, key=str) == sorted(
        [
            ("task failed", failed, "task-1", None),
            ("order status", failed, None, "FAILURE"),
            ("task timed out", stalled, "task-1", None),
            ("order status", stalled, None, "UNHEALTHY"),
        ],
        key=str,
    )
    failure = next(line for line in lines if line["event"] == "task failed")
    assert failure["attempt"] == 1
    assert "400" in failure["error"]
    assert not [line for line in lines if fine in json.dumps(line)]
    assert "worker started" in [line["event"] for line in lines]
