"""/api/spaces/{key}/subscriptions: connector endpoints that hear about a space's orders."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from ordermill.api.auth import PrincipalDep, ServiceDep
from ordermill.api.limits import BoundedRoute

router = APIRouter(prefix="/api/spaces", tags=["subscriptions"], route_class=BoundedRoute)


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str = Field(max_length=2048, description="The connector endpoint (https).")
    events: list[str] = Field(
        max_length=16,
        description="order.created, order.status, task.failed and/or order.amended",
    )
    flowKeys: list[str] | None = Field(  # noqa: N815 - the wire name
        default=None, max_length=100, description="Only orders of these flows; all when absent."
    )


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str | None = Field(default=None, max_length=2048)
    events: list[str] | None = Field(default=None, max_length=16)
    flowKeys: list[str] | None = Field(default=None, max_length=100)  # noqa: N815
    enabled: bool | None = Field(default=None, description="false turns it off")


class EnableIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    redeliver: bool = Field(
        default=False,
        description="true: deliver again everything since its failures began, and the events "
        "held while it was off; false: drop the held events",
    )


@router.post("/{key}/subscriptions", status_code=201, summary="Subscribe an endpoint")
async def create_subscription(
    key: str, body: SubscriptionIn, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    space = principal.space(key)
    made = await service.subscribe(space, body.uri, body.events, body.flowKeys)
    return made.wire()


@router.get("/{key}/subscriptions", summary="List the space's subscriptions")
async def list_subscriptions(
    key: str, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    found = await service.store.subscriptions.of_space(principal.space(key))
    return {"items": [s.wire() for s in found]}


@router.get("/{key}/subscriptions/{subscription_id}", summary="Read a subscription")
async def get_subscription(
    key: str, subscription_id: str, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    found = await service.store.subscriptions.get(principal.space(key), subscription_id)
    return found.wire()


@router.patch("/{key}/subscriptions/{subscription_id}", summary="Change a subscription")
async def patch_subscription(
    key: str,
    subscription_id: str,
    body: SubscriptionPatch,
    principal: PrincipalDep,
    service: ServiceDep,
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    changed = await service.change_subscription(principal.space(key), subscription_id, changes)
    return changed.wire()


@router.delete("/{key}/subscriptions/{subscription_id}", status_code=204, summary="Unsubscribe")
async def delete_subscription(
    key: str, subscription_id: str, principal: PrincipalDep, service: ServiceDep
) -> Response:
    await service.store.subscriptions.delete(principal.space(key), subscription_id)
    return Response(status_code=204)


@router.post("/{key}/subscriptions/{subscription_id}/test", summary="Send a test event now")
async def test_subscription(
    key: str, subscription_id: str, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    return await service.test_subscription(principal.space(key), subscription_id)


@router.post(
    "/{key}/subscriptions/{subscription_id}/enable",
    summary="Turn a subscription on again, optionally redelivering everything since",
)
async def enable_subscription(
    key: str, subscription_id: str, body: EnableIn, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    enabled = await service.store.subscriptions.enable(
        principal.space(key), subscription_id, redeliver=body.redeliver, now=service.clock.now()
    )
    return enabled.wire()


@router.get(
    "/{key}/subscriptions/{subscription_id}/deliveries",
    summary="The subscription's delivery log, newest first",
)
async def list_deliveries(
    key: str, subscription_id: str, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    items = await service.store.subscriptions.deliveries(principal.space(key), subscription_id)
    return {"items": items}


@router.post(
    "/{key}/subscriptions/{subscription_id}/deliveries/{delivery}/redeliver",
    status_code=202,
    summary="Deliver one event again",
)
async def redeliver(
    key: str, subscription_id: str, delivery: int, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    await service.store.subscriptions.redeliver(
        principal.space(key), subscription_id, delivery, service.clock.now()
    )
    return {"queued": True}
