"""The reference connector page's examples, copied as printed, work on the real server.

Its "Example order flow" (a bare `{"stages": [...]}`) is saved with `PUT` and with `ordermill
flows push`, and its single task example (`task-execute-your-endpoint`, which waits for
feedback) runs too; each order reaches a real https receiver, whose request body has the
shape the page documents. The flow editor's part is in tests/browser/test_reference_editor.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.acceptance.conftest import Api, ServeProcess
from tests.acceptance.test_cli import run
from tests.acceptance.test_flows_as_code import remote
from tests.support.factories import order_doc
from tests.support.receiver import HttpsReceiver, ReceivedRequest, Reply
from tests.support.reference import connector_body, example_flow, example_task, shape_problems


def assert_documented_delivery(
    requests: list[ReceivedRequest], order_id: str, task_key: str
) -> None:
    """Each request is the page's connector call: a JSON POST whose `order` has its shape.

    The examples allow each attempt 1 s; on a busy machine one may time out and be repeated,
    with the same body.
    """
    assert requests
    assert len({request.body for request in requests}) == 1
    request = requests[0]
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert list(body) == ["order", "context"]  # `context` is ordermill's documented extension
    assert shape_problems(connector_body(), {"order": body["order"]}) == []
    assert (body["context"]["orderId"], body["context"]["taskKey"]) == (order_id, task_key)


def save_with_put(api: Api, flow: dict[str, Any], tmp_path: Path, serve: ServeProcess) -> None:
    response = api.http.put("/api/flows/seed-flow", json=flow, headers=api.headers)
    assert response.status_code == 201, response.text


def save_with_push(api: Api, flow: dict[str, Any], tmp_path: Path, serve: ServeProcess) -> None:
    path = tmp_path / "flows" / "seed-flow.json"
    path.parent.mkdir()
    path.write_text(json.dumps(flow, indent=2))
    result = run("flows", "push", str(path), cwd=tmp_path, env=remote(api, serve))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "seed-flow created (version 1)" in result.stdout


@pytest.mark.parametrize("save", [save_with_put, save_with_push], ids=["put", "push"])
def test_the_example_order_flow_as_printed_runs_an_order_to_the_connector(
    save: Any, tmp_path: Path, serve: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    flow = example_flow(https_receiver.url("/orders"))

    save(api, flow, tmp_path, serve)
    order_id = api.post("/api/orders", order_doc("WEB-R1", flow_key="seed-flow")).json()["id"]
    order = api.wait_for(order_id, "SUCCESS", "FAILURE", "UNHEALTHY")

    stored = api.get("/api/flows/seed-flow")
    assert (stored["key"], stored["name"], stored["stages"]) == (
        "seed-flow",
        "seed-flow",
        flow["stages"],
    )
    assert order["status"] == "SUCCESS", order
    assert_documented_delivery(https_receiver.requests, order_id, "task-1")


def test_the_single_task_example_waits_for_feedback_and_completes_with_it(
    serve: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    """`sendsFeedback: true` with a 1 s timeout: the receiver answers through updateUrl first."""
    task = example_task(https_receiver.url("/orders"))

    def feedback_first(request: ReceivedRequest) -> None:
        update_url = request.json()["order"]["updateUrl"]
        response = httpx2.post(update_url, json={"status": "success", "message": "made"})
        assert response.status_code == 200, response.text

    https_receiver.script("/orders", [Reply(201, before=feedback_first)])
    flow = {
        "stages": [
            {
                "key": "stage-1",
                "initialTaskDefinitionKeys": [task["key"]],
                "taskDefinitions": [task],
            }
        ]
    }
    response = api.http.put("/api/flows/own-endpoint", json=flow, headers=api.headers)
    assert response.status_code == 201, response.text
    order_id = api.post("/api/orders", order_doc("WEB-R2", flow_key="own-endpoint")).json()["id"]

    order = api.wait_for(order_id, "SUCCESS", "FAILURE", "UNHEALTHY")

    assert order["status"] == "SUCCESS", order
    assert order["tasks"][0]["key"] == "task-execute-your-endpoint"
    assert order["tasks"][0]["result"]["feedback"]["message"] == "made"
    assert_documented_delivery(https_receiver.requests, order_id, "task-execute-your-endpoint")
