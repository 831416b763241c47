"""Templates cannot stall or bloat the instance: a runaway render fails its task with the bound
it hit, renders run off the event loop, and deep expressions are refused when the flow is saved
(issue 10 §5), on both databases."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx2
import pytest

from tests.integration.conftest import wait_for_status
from tests.support.factories import order_doc

SLOW = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"
HUGE = "{{ 'x' * 40000000 }}"


def confirmation_flow(description: str) -> dict[str, Any]:
    return {
        "key": "made-to-order",
        "name": "Confirm by hand",
        "stages": [
            {
                "key": "stage-1",
                "initialTaskDefinitionKeys": ["confirm"],
                "taskDefinitions": [
                    {
                        "key": "confirm",
                        "handlerKey": "manual-confirmation",
                        "payload": {"title": "Print it?", "description": description},
                        "retry": {"maxAttempts": 1},
                    }
                ],
            }
        ],
    }


async def run_order(
    client: httpx2.AsyncClient, acme: dict[str, str], description: str
) -> dict[str, Any]:
    response = await client.post("/api/flows", json=confirmation_flow(description), headers=acme)
    assert response.status_code == 201, response.text
    response = await client.post("/api/orders", json=order_doc(), headers=acme)
    assert response.status_code == 201, response.text
    order_id = response.json()["id"]
    return await wait_for_status(client, acme, order_id, "FAILURE", "SUCCESS")


async def test_a_huge_output_fails_the_task_and_stores_no_bulk(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    order = await run_order(client, acme, HUGE)

    assert order["status"] == "FAILURE"
    [task] = order["tasks"]
    assert task["status"] == "FAILED"
    stored = json.dumps(task)
    assert "the description template went past a limit: a repeated value" in stored
    assert len(stored) < 4000


@pytest.mark.slow
async def test_healthz_answers_quickly_while_a_slow_template_renders(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    response = await client.post("/api/flows", json=confirmation_flow(SLOW), headers=acme)
    assert response.status_code == 201, response.text
    response = await client.post("/api/orders", json=order_doc(), headers=acme)
    order_id = response.json()["id"]
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    status = "CREATED"
    while status not in ("FAILURE", "SUCCESS") and loop.time() < deadline:
        started = time.perf_counter()
        health = await client.get("/healthz")
        latencies.append(time.perf_counter() - started)
        assert health.status_code == 200
        await asyncio.sleep(0.02)
        status = (await client.get(f"/api/orders/{order_id}", headers=acme)).json()["status"]

    assert status == "FAILURE"
    order = (await client.get(f"/api/orders/{order_id}", headers=acme)).json()
    assert "rendering took longer than 1 s" in json.dumps(order["tasks"])
    assert len(latencies) >= 5  # the render took a second: /healthz was asked throughout it
    assert max(latencies) < 0.2, sorted(latencies)[-5:]


@pytest.mark.parametrize(
    "template",
    ["{{ " + "(" * 300 + "1" + ")" * 300 + " }}", "{{ 1" + " + 1" * 3000 + " }}"],
)
async def test_deep_expressions_are_refused_quickly_when_validated_and_saved(
    client: httpx2.AsyncClient, acme: dict[str, str], template: str
) -> None:
    document = confirmation_flow(template)
    started = time.monotonic()
    response = await client.post("/api/flows/validate", json=document, headers=acme)
    assert response.status_code == 200, response.text
    [problem] = response.json()["problems"]
    assert problem["pointer"] == "/stages/0/taskDefinitions/0/payload/description"
    response = await client.post("/api/flows", json=document, headers=acme)
    assert response.status_code == 400, response.text
    assert time.monotonic() - started < 1.0
