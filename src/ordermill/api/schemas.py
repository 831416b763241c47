"""The API's wire shapes (camelCase JSON): the connector's order shape in, views out."""

from __future__ import annotations

import ipaddress
import math
from datetime import UTC
from typing import Annotated, Any, Literal

from fastapi import Path as PathParam
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from ordermill.errors import InvalidInput, Problem
from ordermill.flows.order import order_value, parse_instant
from ordermill.handlers.registry import problems_of
from ordermill.storage.flowdefs import FlowRecord, FlowVersion
from ordermill.storage.orders import AttemptView, EventView, OrderView, TaskView
from ordermill.times import iso


def _non_negative(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValueError("must be a number")
    if value < 0 or value == float("inf"):
        raise ValueError("must be a finite number of at least 0")
    return value


# One validator instead of an int | float union: an integer stays an integer (connectors get
# back the numbers that were sent) and a bad value gives one problem, not one per union member.
NonNegative = Annotated[
    Any, AfterValidator(_non_negative), WithJsonSchema({"type": "number", "minimum": 0})
]
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
ORDER_ID_PATTERN = r"^ord_[0-9a-z]{26}$"
MAX_ROW_ID = 2**63 - 1  # the largest integer id a database row can have (BIGINT)
RowId = Annotated[int, PathParam(ge=0, le=MAX_ROW_ID)]
"""An integer path segment (a version number, an asset or key id): beyond BIGINT it is a 400."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _instant(value: str) -> str:
    try:
        instant = parse_instant(value)
    except ValueError as exc:
        raise ValueError("must be an ISO 8601 date-time such as 2026-10-01T00:00:00.000Z") from exc
    try:
        instant.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("must fall between years 0001 and 9999 in UTC") from exc
    return value


class AssetVersionIn(_Strict):
    url: str = Field(min_length=1, max_length=4096)
    date: str

    _date = field_validator("date")(_instant)


class AssetIn(_Strict):
    id: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=4096)
    isPublic: bool = True
    versions: list[AssetVersionIn] = Field(default_factory=list)


class ItemIn(_Strict):
    id: str = Field(min_length=1, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    items: list[ItemIn] = Field(default_factory=list)
    assets: list[AssetIn] = Field(default_factory=list)
    isAsset: bool = False


class OrderLineIn(_Strict):
    orderId: str = Field(min_length=1, max_length=200)
    title: str = Field(default="", max_length=1000)
    data: dict[str, Any] = Field(default_factory=dict)
    items: list[ItemIn] = Field(default_factory=list)
    deadline: str | None = None
    # int | float keeps 2 as 2 (not 2.0), so connectors receive the numbers that were sent.
    amountOfUnits: NonNegative = 0
    valuePerUnit: NonNegative = 0

    _deadline = field_validator("deadline")(lambda v: None if v is None else _instant(v))


class AddressIn(_Strict):
    addressType: str = Field(max_length=200)
    purpose: str = Field(max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)


class OrderIn(_Strict):
    """An order in the connector's order shape, without updateUrl; ``start`` defaults to true."""

    spaceKey: str = Field(pattern=KEY_PATTERN)
    flowKey: str = Field(pattern=KEY_PATTERN)
    thirdPartyOrderId: str = Field(min_length=1, max_length=200)
    addresses: list[AddressIn] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)
    orderLines: list[OrderLineIn] = Field(default_factory=list)
    start: bool = True


_ORDER = TypeAdapter(OrderIn)
_START = TypeAdapter(bool)


def parse_order(document: Any) -> tuple[dict[str, Any], bool]:
    """Validate a bare or ``{"order": …}``-wrapped order. Returns (stored body, start)."""
    prefix = ""
    start_beside: Any = None
    if isinstance(document, dict) and "order" in document and "thirdPartyOrderId" not in document:
        extra = set(document) - {"order", "start"}
        start_beside = document.get("start")
        if not extra:
            document, prefix = document["order"], "/order"
    problems = []
    if start_beside is not None:
        # Read like the bare body's ``start``: bool("false") would start the order.
        try:
            start_beside = _START.validate_python(start_beside)
        except ValidationError as exc:
            problems = problems_of(exc, "/start")
    try:
        order = _ORDER.validate_python(document)
    except ValidationError as exc:
        raise InvalidInput(problems_of(exc, prefix) + problems, "The order is invalid.") from exc
    if problems:
        raise InvalidInput(problems, "The order is invalid.")
    body = order.model_dump(mode="json", exclude={"start"})
    if not math.isfinite(order_value(body)):
        raise InvalidInput(
            [
                Problem(
                    prefix + "/orderLines",
                    "the order's value (units × value per unit) is too large",
                )
            ],
            "The order is invalid.",
        )
    start = order.start if start_beside is None else bool(start_beside)
    return body, start


def order_out(order: OrderView, *, with_tasks: bool = True) -> dict[str, Any]:
    body = order.body
    out: dict[str, Any] = {
        "id": order.id,
        "spaceKey": order.space_key,
        "flowKey": order.flow_key,
        "flowVersion": order.flow_version,
        "thirdPartyOrderId": order.third_party_order_id,
        "status": order.status.value,
        "paused": order.pause is not None,
        "pause": (
            None
            if order.pause is None
            else {
                "at": iso(order.pause.at),
                "by": order.pause.by,
                "reason": order.pause.reason,
            }
        ),
        "cancelReason": order.cancel_reason,
        "restarts": list(order.restarts),
        "revision": order.revision,
        "value": order.value,
        "deadline": iso(order.deadline),
        "createdAt": iso(order.created_at),
        "updatedAt": iso(order.updated_at),
        "endedAt": iso(order.ended_at),
        "addresses": body.get("addresses", []),
        "data": body.get("data", {}),
        "orderLines": body.get("orderLines", []),
    }
    if with_tasks:
        out["tasks"] = [task_out(task) for task in order.tasks]
    return out


def task_out(task: TaskView) -> dict[str, Any]:
    return {
        "key": task.key,
        "stageKey": task.stage_key,
        "handlerKey": task.handler_key,
        "status": task.status.value,
        "attempts": task.attempts,
        "dueAt": iso(task.due_at),
        "deliveryId": task.delivery_id,
        "result": task.result,
        "error": task.error,
        "createdAt": iso(task.created_at),
        "updatedAt": iso(task.updated_at),
        "endedAt": iso(task.ended_at),
    }


def event_out(event: EventView) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": iso(event.at),
        "type": event.type,
        "taskKey": event.task_key,
        "actor": event.actor,
        "data": event.data,
    }


def attempt_out(attempt: AttemptView) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "startedAt": iso(attempt.started_at),
        "endedAt": iso(attempt.ended_at),
        "outcome": attempt.outcome,
        "statusCode": attempt.status_code,
        "latencyMs": attempt.latency_ms,
        "request": attempt.request,
        "responseBody": attempt.response_body,
        "errorClass": attempt.error_class,
        "errorMessage": attempt.error_message,
    }


def flow_out(flow: FlowRecord) -> dict[str, Any]:
    return {
        **flow.current.definition.to_wire(),
        "spaceKey": flow.space_key,
        "version": flow.current_version,
        "contentHash": flow.current.content_hash,
        "createdAt": iso(flow.created_at),
        "updatedAt": iso(flow.updated_at),
        "orderCount": flow.order_count,
    }


def version_out(version: FlowVersion) -> dict[str, Any]:
    return {
        **version.definition.to_wire(),
        "spaceKey": version.space_key,
        "version": version.version,
        "contentHash": version.content_hash,
        "createdAt": iso(version.created_at),
    }


class FeedbackAssetIn(_Strict):
    """A file the connector made for an item: a new version of the item's asset ``id``."""

    itemId: str = Field(min_length=1, max_length=200)
    id: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=4096, pattern="^https?://")
    isPublic: bool = False
    fileName: str | None = Field(default=None, max_length=300)
    contentType: str | None = Field(default=None, max_length=200)


class FeedbackIn(_Strict):
    """What a connector POSTs to a task's updateUrl."""

    status: Literal["success", "failure", "progress"]
    message: str | None = Field(default=None, max_length=10_000)
    data: dict[str, Any] | None = None
    problem: dict[str, Any] | None = Field(
        default=None, description="An RFC 9457 problem object explaining a failure."
    )
    assets: list[FeedbackAssetIn] = Field(default_factory=list, max_length=1000)


_FEEDBACK = TypeAdapter(FeedbackIn)


def parse_feedback(document: Any) -> FeedbackIn:
    """Validate feedback parsed by the bounded parser (jsoncodec.parse_untrusted)."""
    try:
        return _FEEDBACK.validate_python(document)
    except ValidationError as exc:
        raise InvalidInput(problems_of(exc), "The feedback is invalid.") from exc


def _networks(value: list[str]) -> list[str]:
    for network in value:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError as exc:
            raise ValueError(f"{network!r} is not a CIDR network such as 10.0.0.0/8") from exc
    return value


def _hosts(value: list[str]) -> list[str]:
    for host in value:
        if not host or any(char in host for char in "/ \t@?#"):
            raise ValueError(f"{host!r} is not a host name such as erp.internal")
    return value


class AllowancesIn(_Strict):
    """What a space's connectors may reach beyond the operator's allowances (admin only)."""

    connectorAllowNetworks: list[str] = Field(default_factory=list, max_length=100)
    connectorAllowHttp: list[str] = Field(default_factory=list, max_length=100)

    _check_networks = field_validator("connectorAllowNetworks")(_networks)
    _check_hosts = field_validator("connectorAllowHttp")(_hosts)


class SpaceIn(AllowancesIn):
    key: str = Field(pattern=KEY_PATTERN)
    name: str | None = Field(default=None, max_length=200)


RoleName = Annotated[str, Field(min_length=1, max_length=64)]


class ApiKeyIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    # The key's roles (built-in or the space's own); a key holds what its roles grant.
    roles: list[RoleName] = Field(default_factory=lambda: ["owner"], min_length=1, max_length=20)


class UserIn(_Strict):
    email: str = Field(min_length=3, max_length=320)
    displayName: str | None = Field(default=None, max_length=200)
    roles: list[RoleName] = Field(min_length=1, max_length=20)
    spaceKey: str | None = Field(default=None, max_length=128)


class RolesIn(_Strict):
    roles: list[RoleName] = Field(min_length=1, max_length=20)


class RoleIn(_Strict):
    permissions: list[str] = Field(max_length=100)


RetryableStatus = Literal["FAILURE", "UNHEALTHY"]


def _retryable_statuses() -> list[RetryableStatus]:
    return ["FAILURE", "UNHEALTHY"]


class BulkRetryIn(_Strict):
    """Which orders to retry: by status (default FAILURE and UNHEALTHY), flow and creation time."""

    spaceKey: str | None = Field(default=None, pattern=KEY_PATTERN)
    status: list[RetryableStatus] = Field(default_factory=_retryable_statuses, min_length=1)
    flowKey: str | None = None
    createdFrom: AwareDatetime | None = None
    createdTo: AwareDatetime | None = None
    deadlineFrom: AwareDatetime | None = None
    deadlineTo: AwareDatetime | None = None
    q: str | None = Field(default=None, max_length=200)  # the list's search
    limit: int = Field(default=100, ge=1, le=1000)
    dryRun: bool = False  # change nothing; answer which orders would be retried


class RequireSignatureIn(_Strict):
    requireFeedbackSignature: bool
