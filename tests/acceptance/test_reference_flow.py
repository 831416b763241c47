"""The real `ordermill serve` runs the reference connector flow against a real https receiver."""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest

from tests.acceptance.conftest import Api, ServeProcess
from tests.support.factories import flow_doc, order_doc
from tests.support.receiver import HttpsReceiver, ReceivedRequest, Reply
from tests.support.reference import connector_body

FAST_RETRY = {
    "maxAttempts": 5,
    "initialIntervalMs": 50,
    "backoffCoefficient": 1.0,
    "maxIntervalMs": 100,
}


def _feedback_path(request: ReceivedRequest) -> str:
    return urlsplit(request.json()["order"]["updateUrl"]).path


def test_connector_receives_the_documented_body_and_the_order_succeeds(
    api: Api, https_receiver: HttpsReceiver
) -> None:
    assert api.post("/api/flows", flow_doc(https_receiver.url("/orders"))).status_code == 201
    sent = order_doc("WEB-1")
    created = api.post("/api/orders", sent).json()

    order = api.wait_for(created["id"], "SUCCESS", "FAILURE")

    assert order["status"] == "SUCCESS"
    (request,) = https_receiver.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert list(body) == ["order", "context"]
    assert list(body["order"]) == list(connector_body()["order"])
    expected = {k: v for k, v in sent.items() if k != "start"}
    assert {k: v for k, v in body["order"].items() if k != "updateUrl"} == expected
    assert body["order"]["updateUrl"].startswith("http://127.0.0.1:")
    assert body["context"]["orderId"] == created["id"]
    assert body["context"]["taskKey"] == "task-1"


def test_feedback_to_the_update_url_completes_a_waiting_task(
    api: Api, https_receiver: HttpsReceiver
) -> None:
    api.post(
        "/api/flows",
        flow_doc(https_receiver.url("/orders"), sends_feedback=True, timeoutDuration=60000),
    )
    order_id = api.post("/api/orders", order_doc("WEB-2")).json()["id"]
    (request,) = https_receiver.wait_for(1, timeout=20)
    order = api.wait_for(order_id, "IN_PROGRESS")
    assert order["tasks"][0]["status"] in ("RUNNING", "WAITING")

    response = api.http.post(
        request.json()["order"]["updateUrl"], json={"status": "success", "message": "booked"}
    )

    assert response.status_code == 200, response.text
    assert (
        api.wait_for(order_id, "SUCCESS")["tasks"][0]["result"]["feedback"]["message"] == "booked"
    )


def test_a_400_fails_the_order_after_one_attempt_and_keeps_the_body(
    api: Api, https_receiver: HttpsReceiver
) -> None:
    problem = {"type": "about:blank", "title": "Bad Request", "detail": "unknown SKU"}
    https_receiver.script(
        "/orders", [Reply(400, problem, {"content-type": "application/problem+json"})]
    )
    api.post("/api/flows", flow_doc(https_receiver.url("/orders"), retry=FAST_RETRY))
    order_id = api.post("/api/orders", order_doc("WEB-3")).json()["id"]

    order = api.wait_for(order_id, "FAILURE")

    assert order["tasks"][0]["attempts"] == 1
    attempts = api.get(f"/api/orders/{order_id}/tasks/task-1/attempts")["items"]
    assert [(a["number"], a["statusCode"], a["outcome"]) for a in attempts] == [(1, 400, "failed")]
    assert json.loads(attempts[0]["responseBody"]) == problem
    assert len(https_receiver.requests) == 1


def test_500_500_201_succeeds_after_three_attempts_with_one_delivery_id(
    api: Api, https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/orders", [Reply(500), Reply(500), Reply(201)])
    api.post("/api/flows", flow_doc(https_receiver.url("/orders"), retry=FAST_RETRY))
    order_id = api.post("/api/orders", order_doc("WEB-4")).json()["id"]

    order = api.wait_for(order_id, "SUCCESS", "FAILURE")

    assert order["status"] == "SUCCESS"
    assert order["tasks"][0]["attempts"] == 3
    requests = https_receiver.requests
    assert len(requests) == 3
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    assert len({r.json()["context"]["deliveryId"] for r in requests}) == 1
    assert len({r.body for r in requests}) == 1  # every attempt sends the same bytes
    outcomes = [
        a["outcome"] for a in api.get(f"/api/orders/{order_id}/tasks/task-1/attempts")["items"]
    ]
    assert outcomes == ["retry", "retry", "succeeded"]


def test_missing_feedback_makes_the_order_unhealthy_and_late_feedback_completes_it(
    api: Api, https_receiver: HttpsReceiver
) -> None:
    api.post(
        "/api/flows",
        flow_doc(https_receiver.url("/orders"), sends_feedback=True, timeoutDuration=500),
    )
    order_id = api.post("/api/orders", order_doc("WEB-5")).json()["id"]

    order = api.wait_for(order_id, "UNHEALTHY")
    assert order["tasks"][0]["status"] == "TIMED_OUT"

    (request,) = https_receiver.requests
    response = api.http.post(request.json()["order"]["updateUrl"], json={"status": "success"})
    assert response.status_code == 200
    assert api.wait_for(order_id, "SUCCESS")["status"] == "SUCCESS"


def _join_flow(uri: str) -> dict[str, Any]:
    def task(key: str, next_: list[str]) -> dict[str, Any]:
        return {
            "key": key,
            "handlerKey": "consume-rest-api",
            "payload": {"uri": f"{uri}/{key}"},
            "timeoutDuration": 5000,
            "next": next_,
        }

    return {
        "key": "fan-out",
        "name": "Fan out and join",
        "stages": [
            {
                "key": "make",
                "initialTaskDefinitionKeys": ["a"],
                "taskDefinitions": [
                    task("a", ["b", "c"]),
                    task("b", ["d"]),
                    task("c", ["d"]),
                    task("d", []),
                ],
            },
            {"key": "ship", "initialTaskDefinitionKeys": ["e"], "taskDefinitions": [task("e", [])]},
        ],
    }


def test_fan_out_and_join_runs_the_join_once_after_both_branches(
    api: Api, https_receiver: HttpsReceiver
) -> None:
    https_receiver.script("/c", [Reply(201, delay=0.5)])  # one slow branch
    assert api.post("/api/flows", _join_flow(https_receiver.base_url)).status_code == 201
    order_id = api.post("/api/orders", order_doc("WEB-6", flow_key="fan-out")).json()["id"]

    order = api.wait_for(order_id, "SUCCESS", "FAILURE")

    assert order["status"] == "SUCCESS"
    paths = [r.path for r in https_receiver.requests]
    assert sorted(paths) == ["/a", "/b", "/c", "/d", "/e"]
    assert paths[0] == "/a"
    assert paths.index("/d") > max(paths.index("/b"), paths.index("/c"))
    assert paths[-1] == "/e"


def test_a_server_killed_while_waiting_accepts_the_feedback_after_restart(
    serve: ServeProcess, api: Api, https_receiver: HttpsReceiver
) -> None:
    api.post(
        "/api/flows",
        flow_doc(https_receiver.url("/orders"), sends_feedback=True, timeoutDuration=120000),
    )
    order_id = api.post("/api/orders", order_doc("WEB-7")).json()["id"]
    (request,) = https_receiver.wait_for(1, timeout=20)
    api.wait_for_task(order_id, "task-1", "WAITING")
    update_path = _feedback_path(request)

    serve.kill()
    serve.start()

    response = api.http.post(update_path, json={"status": "success"})
    assert response.status_code == 200, response.text
    assert api.wait_for(order_id, "SUCCESS")["status"] == "SUCCESS"


def test_loopback_connectors_are_refused_unless_allowed(
    serve_env: dict[str, str], tmp_path: Any, https_receiver: HttpsReceiver, make_api: Any
) -> None:
    env = {**serve_env, "ORDERMILL_CONNECTOR_ALLOW_NETWORKS": ""}
    process = ServeProcess(tmp_path, env).start()
    try:
        client = make_api(process.base_url)
        client.create_space()
        client.post("/api/flows", flow_doc(https_receiver.url("/orders")))
        order_id = client.post("/api/orders", order_doc("WEB-8")).json()["id"]

        order = client.wait_for(order_id, "FAILURE")

        error = order["tasks"][0]["error"]["message"]
        assert "127.0.0.1" in error
        assert "ORDERMILL_CONNECTOR_ALLOW_NETWORKS" in error
        assert order["tasks"][0]["attempts"] == 1
        assert https_receiver.requests == []
    finally:
        process.stop()


def test_bad_requests_get_problem_json_and_no_trace(api: Api) -> None:
    response = api.http.post(
        "/api/orders",
        content=b"{not json",
        headers={**api.headers, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in response.text
    response = api.http.get("/api/orders", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert response.json()["status"] == 401


@pytest.mark.parametrize("path", ["/api/docs", "/api/openapi.json"])
def test_api_docs_are_served_offline(serve: ServeProcess, path: str) -> None:
    response = httpx2.get(serve.base_url + path)
    assert response.status_code == 200
    if path == "/api/docs":
        assert "cdn" not in response.text.lower()
        asset = httpx2.get(serve.base_url + "/api/static/swagger/swagger-ui-bundle.js")
        assert asset.status_code == 200


def test_feedback_can_arrive_before_the_http_answer(
    api: Api, https_receiver: HttpsReceiver
) -> None:
    """The receiver posts success to updateUrl and only then answers 201: nothing is lost."""
    posted = threading.Event()

    def post_feedback_first(request: ReceivedRequest) -> None:
        response = httpx2.post(
            request.json()["order"]["updateUrl"], json={"status": "success"}, timeout=10
        )
        assert response.status_code == 200, response.text
        posted.set()

    https_receiver.script("/orders", [Reply(201, before=post_feedback_first)])
    api.post(
        "/api/flows",
        flow_doc(https_receiver.url("/orders"), sends_feedback=True, timeoutDuration=60000),
    )
    order_id = api.post("/api/orders", order_doc("WEB-9")).json()["id"]

    order = api.wait_for(order_id, "SUCCESS", "FAILURE", "UNHEALTHY")

    assert posted.is_set()
    assert order["status"] == "SUCCESS"
    events = [e["type"] for e in api.get(f"/api/orders/{order_id}/events")["items"]]
    assert "feedback.received" in events
