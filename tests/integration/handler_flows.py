"""Helpers for the built-in handler suites: one-stage flows, SMTP settings, polling a task."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx2

from ordermill.config import Settings
from tests.support.smtp import SmtpServer

SENDER = "Workshop <workshop@ordermill.test>"


def task(key: str, handler_key: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"key": key, "handlerKey": handler_key, "payload": payload, "next": [], **extra}


def chain(*definitions: dict[str, Any], key: str = "made-to-order") -> dict[str, Any]:
    """A one-stage flow running ``definitions`` one after the other."""
    linked = [
        {**definition, "next": [definitions[i + 1]["key"]] if i + 1 < len(definitions) else []}
        for i, definition in enumerate(definitions)
    ]
    return {
        "key": key,
        "name": "Built-in handlers",
        "stages": [
            {
                "key": "stage-1",
                "initialTaskDefinitionKeys": [definitions[0]["key"]],
                "taskDefinitions": linked,
            }
        ],
    }


def smtp_settings(
    make_settings: Callable[..., Settings], smtp: SmtpServer, **extra: Any
) -> Settings:
    """Settings that send mail through the test SMTP server, trusting its CA (STARTTLS)."""
    return make_settings(
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_security="starttls",
        smtp_ca_file=smtp.ca.ca_pem_path,
        smtp_from=SENDER,
        **extra,
    )


async def post_flow(
    client: httpx2.AsyncClient, headers: dict[str, str], flow: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post("/api/flows", json=flow, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def post_order(
    client: httpx2.AsyncClient, headers: dict[str, str], order: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post("/api/orders", json=order, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def wait_for_task(
    client: httpx2.AsyncClient,
    headers: dict[str, str],
    order_id: str,
    task_key: str,
    *statuses: str,
    timeout: float = 20.0,
) -> dict[str, Any]:
    """Poll the order until ``task_key`` reaches one of ``statuses``; returns the task."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen: dict[str, Any] = {}
    while loop.time() < deadline:
        order = (await client.get(f"/api/orders/{order_id}", headers=headers)).json()
        seen = next((t for t in order.get("tasks", []) if t["key"] == task_key), {})
        if seen.get("status") in statuses:
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_key} never reached {statuses}; last seen: {seen}")


async def events(
    client: httpx2.AsyncClient, headers: dict[str, str], order_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"/api/orders/{order_id}/events", headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def attempts(
    client: httpx2.AsyncClient, headers: dict[str, str], order_id: str, task_key: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/api/orders/{order_id}/tasks/{task_key}/attempts", headers=headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
