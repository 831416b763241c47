"""The built-in handlers under the real `ordermill serve`: a wait that outlives a crash, and a flow
that mixes a connector call, an e-mail, a manual confirmation, a timer and an export."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.acceptance.conftest import Api, ServeProcess
from tests.support.factories import order_doc
from tests.support.receiver import HttpsReceiver, LocalCA
from tests.support.smtp import SmtpServer


@pytest.fixture
def serve_env(
    serve_env: dict[str, str], smtp_server: SmtpServer, trust_ca: LocalCA
) -> dict[str, str]:
    """The acceptance environment, plus the test SMTP server (STARTTLS, trusting the test CA)."""
    return {
        **serve_env,
        "ORDERMILL_SMTP_HOST": smtp_server.host,
        "ORDERMILL_SMTP_PORT": str(smtp_server.port),
        "ORDERMILL_SMTP_SECURITY": "starttls",
        "ORDERMILL_SMTP_CA_FILE": str(trust_ca.ca_pem_path),
        "ORDERMILL_SMTP_FROM": "Workshop <workshop@ordermill.test>",
    }


def definition(key: str, handler_key: str, payload: dict[str, Any], *after: str) -> dict[str, Any]:
    return {"key": key, "handlerKey": handler_key, "payload": payload, "next": list(after)}


def stage(key: str, *definitions: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": key,
        "initialTaskDefinitionKeys": [definitions[0]["key"]],
        "taskDefinitions": list(definitions),
    }


def flow(*stages: dict[str, Any]) -> dict[str, Any]:
    return {"key": "made-to-order", "name": "Built-in handlers", "stages": list(stages)}


def task_of(order: dict[str, Any], key: str) -> dict[str, Any]:
    return next(task for task in order["tasks"] if task["key"] == key)


def wait_for_task(api: Api, order_id: str, key: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    order: dict[str, Any] = {}
    while time.monotonic() < deadline:
        order = api.get(f"/api/orders/{order_id}")
        if any(t["key"] == key and t["status"] == status for t in order["tasks"]):
            return order
        time.sleep(0.05)
    raise AssertionError(f"task {key} never reached {status}; last seen {order}")


def test_a_wait_fires_after_the_server_was_killed_and_restarted(
    api: Api, serve: ServeProcess, make_api: Callable[[str], Api]
) -> None:
    timer = definition("pause", "wait", {"durationMs": 2500})
    assert api.post("/api/flows", flow(stage("stage-1", timer))).status_code == 201
    created = api.post("/api/orders", order_doc("WEB-R")).json()
    waiting = wait_for_task(api, created["id"], "pause", "WAITING")
    due_at = task_of(waiting, "pause")["dueAt"]

    serve.kill()
    serve.start()

    again = make_api(serve.base_url)
    again.headers = api.headers
    order = again.wait_for(created["id"], "SUCCESS", "FAILURE")
    assert order["status"] == "SUCCESS"
    assert task_of(order, "pause")["result"] == {"until": due_at}
    fired = again.get(f"/api/orders/{created['id']}/events")["items"]
    assert [(e["type"], e["data"]) for e in fired if e["taskKey"] == "pause"][-1] == (
        "task.succeeded",
        {"by": "timer"},
    )


def test_a_flow_mixing_every_kind_of_handler_runs_to_success(
    api: Api, https_receiver: HttpsReceiver, smtp_server: SmtpServer
) -> None:
    document = flow(
        stage(
            "intake",
            definition("call", "consume-rest-api", {"uri": https_receiver.url("/orders")}, "mail"),
            definition(
                "mail",
                "send-email",
                {
                    "recipient": ["{{ order.data.customerEmail }}"],
                    "subject": "We received {{ order.thirdPartyOrderId }}",
                    "body": "Thank you! It ships to {{ addresses[0].data.city }}.",
                },
            ),
        ),
        stage(
            "production",
            definition(
                "approve",
                "manual-confirmation",
                {"title": "Print {{ order.thirdPartyOrderId }}?"},
                "pause",
            ),
            definition("pause", "wait", {"durationMs": 200}),
        ),
        stage(
            "shipping",
            definition("package", "export", {"formats": ["pdf"]}, "ship"),
            definition("ship", "consume-rest-api", {"uri": https_receiver.url("/ship")}),
        ),
    )
    assert api.post("/api/flows", document).status_code == 201, document
    created = api.post("/api/orders", order_doc("WEB-M")).json()

    wait_for_task(api, created["id"], "approve", "WAITING")
    [pending] = api.get("/api/confirmations")["items"]
    answered = api.post(f"/api/confirmations/{pending['id']}/confirm", {"comment": "go"})

    assert answered.status_code == 200, answered.text
    order = api.wait_for(created["id"], "SUCCESS", "FAILURE")
    assert order["status"] == "SUCCESS"
    assert [task["status"] for task in order["tasks"]] == ["SUCCEEDED"] * 6
    assert [r.path for r in https_receiver.requests] == ["/orders", "/ship"]
    # The connector after the export gets the production sheet as an asset it can download.
    shipped = https_receiver.requests[1].json()["order"]
    urls = [
        version["url"]
        for line in shipped["orderLines"]
        for item in line["items"]
        for asset in item["assets"]
        for version in asset["versions"]
        if "/api/assets/" in version["url"]
    ]
    assert urls
    download = api.http.get(urls[0])
    assert download.status_code == 200
    assert download.content.startswith(b"%PDF")
    [mail] = smtp_server.messages
    assert mail.message["Subject"] == "We received WEB-M"
    assert mail.message.get_content() == "Thank you! It ships to Gent.\n"
    timeline = [
        (e["type"], e["taskKey"]) for e in api.get(f"/api/orders/{created['id']}/events")["items"]
    ]
    assert timeline.index(("confirmation.confirmed", "approve")) < timeline.index(
        ("task.waiting", "pause")
    )
