"""/api/orders: intake, reading, timelines, delivery logs and operator actions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from ordermill.api.auth import PrincipalDep, ServiceDep, authenticate, get_service
from ordermill.api.idempotency import Answered, OnceDep
from ordermill.api.limits import BoundedRoute
from ordermill.api.routes.steering import bulk_filter
from ordermill.api.schemas import (
    ORDER_ID_PATTERN,
    BulkRetryIn,
    OrderIn,
    attempt_out,
    event_out,
    order_out,
    parse_order,
)
from ordermill.errors import InvalidInput, Problem
from ordermill.flows.amend import AMENDABLE, FIXED
from ordermill.flows.examples import reference_order
from ordermill.flows.status import OrderStatus
from ordermill.jsoncodec import dumps
from ordermill.service import BulkAction
from ordermill.storage.orders import OrderFilter

router = APIRouter(prefix="/api/orders", tags=["orders"], route_class=BoundedRoute)

ORDER_EXAMPLE = {**reference_order(), "start": True}


@router.post(
    "",
    status_code=201,
    summary="Create an order (idempotent per thirdPartyOrderId)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": OrderIn.model_json_schema(
                        ref_template="#/components/schemas/{model}"
                    ),
                    "example": ORDER_EXAMPLE,
                }
            },
        }
    },
)
async def create_order(request: Request) -> Response:
    """201 with the new order; 200 with the stored one when the same order is sent again;
    409 when the same thirdPartyOrderId comes with a different body."""
    # The hottest route takes no dependencies of its own: FastAPI resolves each one anew on
    # every request. The access check has authenticated the caller already.
    service = await get_service(request)
    principal = await authenticate(request, service)
    body, start = parse_order(await request.json())
    principal.space(body["spaceKey"])
    order, created = await service.create_order(body, start=start, actor=principal.actor)
    # The hottest route answers with plain JSON, skipping a second validation of our own output.
    return Response(
        dumps(order_out(order)), status_code=201 if created else 200, media_type="application/json"
    )


@router.get("", summary="List orders, newest first")
async def list_orders(
    principal: PrincipalDep,
    service: ServiceDep,
    status: Annotated[list[OrderStatus] | None, Query()] = None,
    space_key: Annotated[str | None, Query(alias="spaceKey")] = None,
    flow_key: Annotated[str | None, Query(alias="flowKey")] = None,
    third_party_order_id: Annotated[str | None, Query(alias="thirdPartyOrderId")] = None,
    created_from: Annotated[datetime | None, Query(alias="createdFrom")] = None,
    created_to: Annotated[datetime | None, Query(alias="createdTo")] = None,
    deadline_from: Annotated[datetime | None, Query(alias="deadlineFrom")] = None,
    deadline_to: Annotated[datetime | None, Query(alias="deadlineTo")] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None,
        Query(pattern=ORDER_ID_PATTERN, description="A page's nextCursor (an order id)."),
    ] = None,
) -> dict[str, Any]:
    """Cursor pagination: pass ``nextCursor`` back as ``cursor`` for the next page.

    ``q`` finds orders whose id, third-party id or any text of the body (a customer reference
    in ``data``, an e-mail address, a city) contains it, ignoring case."""
    for name, value in (
        ("createdFrom", created_from),
        ("createdTo", created_to),
        ("deadlineFrom", deadline_from),
        ("deadlineTo", deadline_to),
    ):
        if value is not None and value.tzinfo is None:
            raise InvalidInput([Problem("", f"query parameter {name}: give a time zone, e.g. Z")])
    filters = OrderFilter(
        status=tuple(status or ()),
        flow_key=flow_key,
        third_party_order_id=third_party_order_id,
        created_from=created_from,
        created_to=created_to,
        deadline_from=deadline_from,
        deadline_to=deadline_to,
        search=(q or "").strip() or None,
    )
    # A space key sees its own space (naming another is a 403); the admin sees all or one.
    scope = principal.space(space_key) if (space_key or not principal.is_admin) else None
    orders = await service.store.list_orders(scope, filters, limit=limit + 1, after=cursor)
    page = orders[:limit]
    return {
        "items": [order_out(order, with_tasks=False) for order in page],
        "nextCursor": page[-1].id if len(orders) > limit else None,
    }


@router.post(
    "/retry",
    summary="Retry many orders at once (after a connector outage)",
    response_model=dict[str, Any],
)
async def retry_many(
    principal: PrincipalDep, service: ServiceDep, body: BulkRetryIn, once: OnceDep
) -> Answered:
    """Retries every FAILURE/UNHEALTHY order matching the filter, up to ``limit`` orders.
    Answers with the ids retried and how many were skipped (not retryable any more); with
    ``dryRun`` nothing changes and ``retried`` lists the orders that would be."""
    return await once(lambda: _retry_many(principal, service, body))


async def _retry_many(
    principal: PrincipalDep, service: ServiceDep, body: BulkRetryIn
) -> dict[str, Any]:
    outcome = await service.act_on_orders(
        principal.space(body.spaceKey),
        BulkAction.RETRY,
        bulk_filter(body, tuple(OrderStatus(s) for s in body.status)),
        actor=principal.actor,
        limit=body.limit,
        dry_run=body.dryRun,
    )
    return {
        "retried": list(outcome.changed),
        "skipped": outcome.skipped,
        "matched": outcome.matched,
        "dryRun": body.dryRun,
    }


@router.get("/{order_id}", summary="Read an order with its tasks")
async def get_order(order_id: str, principal: PrincipalDep, service: ServiceDep) -> dict[str, Any]:
    return order_out(await service.store.get_order(principal.space_key, order_id))


@router.get("/{order_id}/events", summary="The order's timeline")
async def get_events(order_id: str, principal: PrincipalDep, service: ServiceDep) -> dict[str, Any]:
    events = await service.store.list_events(principal.space_key, order_id)
    return {"items": [event_out(event) for event in events]}


@router.get("/{order_id}/tasks/{task_key}/attempts", summary="A task's delivery log")
async def get_attempts(
    order_id: str, task_key: str, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    attempts = await service.store.list_attempts(principal.space_key, order_id, task_key)
    return {"items": [attempt_out(attempt) for attempt in attempts]}


_PATCH_META = ("reason", "revision")


@router.patch(
    "/{order_id}",
    summary="Amend an unfinished order (JSON Merge Patch of addresses, data, orderLines)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/merge-patch+json": {
                    "schema": {"type": "object"},
                    "example": {
                        "addresses": [
                            {
                                "addressType": "postal",
                                "purpose": "shipping",
                                "data": {"city": "Antwerpen"},
                            }
                        ],
                        "data": {"giftNote": "Happy birthday"},
                        "reason": "customer called",
                        "revision": 1,
                    },
                }
            },
        }
    },
)
async def amend_order(
    order_id: str, principal: PrincipalDep, service: ServiceDep, request: Request
) -> Response:
    """200 with the order at its new revision (or unchanged, for a repeated patch); 400 for a
    patch of anything but addresses, data and orderLines or an invalid result; 409 when the
    order has ended or is at another revision than ``revision`` / ``If-Match``."""
    document = await request.json()  # the bounded parser (BoundedRoute)
    if not isinstance(document, dict):
        raise InvalidInput([Problem("", "a merge patch is a JSON object")])
    problems = []
    for name in document:
        if name in FIXED:
            problems.append(Problem(f"/{name}", f"{name} cannot be amended"))
        elif name not in (*AMENDABLE, *_PATCH_META):
            problems.append(
                Problem(f"/{name}", "only addresses, data and orderLines can be amended")
            )
    reason = document.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 1000):
        problems.append(Problem("/reason", "must be text of at most 1000 characters"))
    based_on = _revision(document.get("revision"), request.headers.get("if-match"), problems)
    if problems:
        raise InvalidInput(problems, "The patch is invalid.")
    patch = {name: value for name, value in document.items() if name in AMENDABLE}
    order, _ = await service.store.amend_order(
        principal.space_key,
        order_id,
        patch,
        based_on=based_on,
        reason=reason,
        actor=principal.actor,
        validate=lambda body: parse_order(body)[0],
    )
    return Response(
        dumps(order_out(order)),
        media_type="application/json",
        headers={"ETag": f'"{order.revision}"'},
    )


def _revision(given: Any, if_match: str | None, problems: list[Problem]) -> int | None:
    """The revision a patch is based on, from the body's ``revision`` or ``If-Match``."""
    if if_match is not None:
        text = if_match.strip().removeprefix("W/").strip('"')
        if not text.isdigit():
            problems.append(Problem("", 'If-Match must be a revision number, such as "2"'))
            return None
        given = given if given is not None else int(text)
    if given is None:
        return None
    if isinstance(given, bool) or not isinstance(given, int) or given < 1:
        problems.append(Problem("/revision", "must be a revision number (1 or more)"))
        return None
    return given


@router.post("/{order_id}/start", summary="Start a CREATED order")
async def start_order(
    order_id: str, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    return order_out(
        await service.store.start_order(principal.space_key, order_id, principal.actor)
    )


@router.post(
    "/{order_id}/retry",
    summary="Retry the failed and timed-out tasks of an order",
    response_model=dict[str, Any],
)
async def retry_order(
    order_id: str, principal: PrincipalDep, service: ServiceDep, once: OnceDep
) -> Answered:
    async def act() -> dict[str, Any]:
        return order_out(
            await service.store.retry_order(principal.space_key, order_id, principal.actor)
        )

    return await once(act)


@router.post(
    "/{order_id}/tasks/{task_key}/retry",
    summary="Retry one failed or timed-out task of an order",
    response_model=dict[str, Any],
)
async def retry_task(
    order_id: str, task_key: str, principal: PrincipalDep, service: ServiceDep, once: OnceDep
) -> Answered:
    """Only this task gets a fresh retry budget; other failed tasks stay as they are."""

    async def act() -> dict[str, Any]:
        return order_out(
            await service.store.retry_order(
                principal.space_key, order_id, principal.actor, task_key=task_key
            )
        )

    return await once(act)


@router.post(
    "/{order_id}/tasks/{task_key}/redeliver",
    summary="Send an ended task again under the same delivery id",
)
async def redeliver(
    order_id: str, task_key: str, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    """For a connector task: the receiver gets the same ``webhook-id`` again (fix a connector,
    then redeliver). The task gets a fresh retry budget; the order runs until it ends again."""
    order = await service.store.redeliver_task(
        principal.space_key, order_id, task_key, principal.actor
    )
    return order_out(order)
