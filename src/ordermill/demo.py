"""The demo space: a ready-made flow against an example connector that this server hosts.

``ordermill serve --demo`` creates it on first start so a new user can watch an order run
end to end without writing a connector first.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from fastapi import APIRouter, Request, Response

from ordermill.api.limits import BoundedRoute
from ordermill.errors import NotFound
from ordermill.service import Service

log = structlog.get_logger("ordermill.demo")

DEMO_USER = "demo@ordermill.example"
DEMO_SPACE = "demo"
DEMO_FLOW = "made-to-order"


def demo_flow(base_url: str) -> dict[str, Any]:
    """Two stages: the ERP confirms asynchronously, then production fans out and joins."""
    connector = f"{base_url}/demo/connector"

    def call(
        key: str, path: str, *, feedback: bool = False, next_: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        return {
            "key": key,
            "handlerKey": "consume-rest-api",
            "payload": {"uri": f"{connector}{path}", "sendsFeedback": feedback},
            "timeoutDuration": 10_000,
            "next": list(next_),
        }

    return {
        "key": DEMO_FLOW,
        "name": "Made to order (demo)",
        "stages": [
            {
                "key": "intake",
                "initialTaskDefinitionKeys": ["notify-erp"],
                "taskDefinitions": [call("notify-erp", "/with-feedback", feedback=True)],
            },
            {
                "key": "production",
                "initialTaskDefinitionKeys": ["export-files", "notify-workshop"],
                "taskDefinitions": [
                    call("export-files", "", next_=("ship",)),
                    call("notify-workshop", "", next_=("ship",)),
                    call("ship", ""),
                ],
            },
        ],
    }


def example_order(number: int = 1001) -> dict[str, Any]:
    return {
        "spaceKey": DEMO_SPACE,
        "flowKey": DEMO_FLOW,
        "thirdPartyOrderId": f"WEB-{number}",
        "addresses": [{"addressType": "postal", "purpose": "shipping", "data": {"city": "Gent"}}],
        "data": {"customerEmail": "jo@example.com"},
        "orderLines": [
            {
                "orderId": f"WEB-{number}-1",
                "title": "Custom bracelet",
                "data": {},
                "items": [{"id": "item-1", "data": {"size": "M"}, "tags": ["3dprint"]}],
                "deadline": "2026-12-24T00:00:00.000Z",
                "amountOfUnits": 2,
                "valuePerUnit": 49.5,
            }
        ],
    }


async def ensure_demo(service: Service) -> str | None:
    """Create the demo space, flow and an API key if absent. Returns the key (kept in the data
    directory so later starts can show it again), or None when the demo cannot be shown."""
    key_file = Path(service.settings.data_dir) / "demo-api-key"
    base = service.settings.base_url
    host = base.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    try:
        await service.store.spaces.get_space(DEMO_SPACE)
    except NotFound:
        await service.store.spaces.create_space(
            DEMO_SPACE,
            "Demo",
            {"connectorAllowNetworks": ["127.0.0.0/8", "::1/128"], "connectorAllowHttp": [host]},
        )
        secret, _ = await service.store.spaces.create_api_key(DEMO_SPACE, "demo")
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secret + "\n")
        key_file.chmod(0o600)
    await service.save_flow(DEMO_SPACE, demo_flow(base))
    return key_file.read_text().strip() if key_file.exists() else None


async def ensure_demo_user(service: Service) -> tuple[str, str]:
    """The demo space's owner, and a fresh one-time link (valid one hour) to sign in with."""
    from ordermill.people import Actor
    from ordermill.permissions import ALL_PERMISSIONS
    from ordermill.storage.users import TokenPurpose

    existing = await service.people.users.find_user(DEMO_USER)
    if existing is not None and existing.has_password:
        return DEMO_USER, await service.people.reset_link(DEMO_USER)
    invited = await service.people.invite(
        DEMO_SPACE,
        DEMO_USER,
        ["owner"],
        Actor("demo", None, ALL_PERMISSIONS),
        display_name="Demo owner",
        purpose=TokenPurpose.SIGNIN,
    )
    assert invited.link is not None
    return DEMO_USER, invited.link


router = APIRouter(prefix="/demo", include_in_schema=False, route_class=BoundedRoute)


@router.post("/connector")
async def connector(request: Request) -> Response:
    """Accepts any order at once, as a connector that needs no feedback would."""
    body = await request.json()
    log.info(
        "demo connector received an order",
        order=body["order"]["thirdPartyOrderId"],
        task=body["context"]["taskKey"],
    )
    return Response(status_code=201)


@router.post("/connector/with-feedback")
async def connector_with_feedback(request: Request) -> Response:
    """Accepts the order, then reports success to its updateUrl a second later."""
    body = await request.json()
    update_url = body["order"]["updateUrl"]
    tasks: set[asyncio.Task[None]] = request.app.state.demo_tasks
    task = asyncio.create_task(_send_feedback(update_url, body["order"]["thirdPartyOrderId"]))
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return Response(status_code=201)


async def _send_feedback(update_url: str, order_id: str) -> None:
    await asyncio.sleep(1.0)
    payload = {"status": "success", "message": f"ERP booked {order_id}"}
    try:
        async with (
            aiohttp.ClientSession(trust_env=False) as session,
            session.post(
                update_url, data=json.dumps(payload), headers={"Content-Type": "application/json"}
            ) as response,
        ):
            log.info("demo connector sent feedback", status=response.status)
    except aiohttp.ClientError as exc:
        log.warning("demo connector could not send feedback", error=str(exc))
