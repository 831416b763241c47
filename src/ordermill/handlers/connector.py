"""``consume-rest-api``: POST the order to the user's own https endpoint (SPEC §5).

Requests go through the guarded ``OutboundClient``, which decides which addresses may be dialled
and never follows redirects.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from yarl import URL

from ordermill.assets_view import merged_order_assets
from ordermill.connector.signature import sign_headers
from ordermill.errors import AttemptTimeout, PermanentError, RetryableError
from ordermill.flows.model import RetryPolicy
from ordermill.flows.retry import FailureKind, classify_http_status, parse_retry_after
from ordermill.handlers.base import Outcome, Succeeded, TaskContext, Waiting
from ordermill.handlers.netguard import IPNetwork, OutboundClient, check_url, parse_networks
from ordermill.jsoncodec import dumps

RESPONSE_BODY_LIMIT = 64 * 1024
# The delivery log keeps the body sent (up to this size) and the connector's answer headers,
# without cookies.
LOGGED_BODY_LIMIT = 16 * 1024
LOGGED_HEADERS_LIMIT = 50
UNLOGGED_HEADERS = frozenset({"set-cookie", "authorization", "proxy-authenticate"})
ORDER_FIELDS = (
    "spaceKey",
    "flowKey",
    "thirdPartyOrderId",
    "updateUrl",
    "addresses",
    "data",
    "orderLines",
)


class ConsumeRestApiPayload(BaseModel):
    """Payload of a ``consume-rest-api`` task definition."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    uri: str = Field(description="The connector endpoint; https (http only for allowed hosts).")
    sends_feedback: bool = Field(
        default=False,
        alias="sendsFeedback",
        description="Wait for the connector to POST its outcome to the order's updateUrl.",
    )
    feedback_timeout_duration: int | None = Field(
        default=None,
        alias="feedbackTimeoutDuration",
        ge=1,
        le=2_592_000_000,
        description="Milliseconds to wait for feedback; defaults to the task's timeoutDuration.",
    )
    heartbeat_timeout_duration: int | None = Field(
        default=None,
        alias="heartbeatTimeoutDuration",
        ge=1,
        le=2_592_000_000,
        description="Each progress feedback extends the wait to at least now + this many ms.",
    )

    @field_validator("uri")
    @classmethod
    def _check_uri(cls, uri: str, info: ValidationInfo) -> str:
        try:
            parts = URL(uri)
        except (ValueError, UnicodeError):
            parts = URL()
        if parts.scheme not in ("https", "http") or not parts.host:
            raise ValueError("must be an absolute https URL such as https://erp.example.com/orders")
        if parts.user or parts.password:
            raise ValueError("must not carry credentials in the URL")
        allow_http = set((info.context or {}).get("allow_http_hosts", ()))
        if parts.scheme == "http" and parts.host not in allow_http:
            raise ValueError(
                f"must use https; plain http is allowed only for the hosts named in "
                f"ORDERMILL_CONNECTOR_ALLOW_HTTP or in the space's connectorAllowHttp "
                f"({parts.host} is not)"
            )
        return uri


def connector_body(ctx: TaskContext) -> bytes:
    """The request body: the documented order shape with its updateUrl, and our context.

    The bytes depend only on the order and the task, so every attempt sends the same bytes;
    the live attempt number travels in the ``ordermill-attempt`` header.
    """
    stored = ctx.order
    if ctx.assets and ctx.links is not None and ctx.links_valid_until is not None:
        # Files the order gained (exports, connector feedback) travel as asset versions.
        stored = merged_order_assets(stored, ctx.assets, ctx.links, ctx.links_valid_until)
    order = documented_order(ctx.space_key, ctx.flow_key, stored, ctx.update_url)
    context = {
        "orderId": ctx.order_id,
        "stageKey": ctx.stage_key,
        "taskKey": ctx.task_key,
        "deliveryId": ctx.delivery_id,
        **(ctx.context or {}),
    }
    return dumps({"order": order, "context": context})


def documented_order(
    space_key: str, flow_key: str, stored: dict[str, Any], update_url: str | None
) -> dict[str, Any]:
    """The order exactly as the connector contract documents it (SPEC §5.1)."""
    return {
        "spaceKey": space_key,
        "flowKey": flow_key,
        "thirdPartyOrderId": stored["thirdPartyOrderId"],
        "updateUrl": update_url,
        "addresses": stored.get("addresses", []),
        "data": stored.get("data", {}),
        "orderLines": stored.get("orderLines", []),
    }


def subscription_body(
    *,
    order_id: str,
    space_key: str,
    flow_key: str,
    stored: dict[str, Any],
    event: dict[str, Any],
    delivery_id: str,
    subscription_id: str,
) -> bytes:
    """A subscription's request body: the documented order (no updateUrl) and ``event``."""
    context = {"orderId": order_id, "subscriptionId": subscription_id, "deliveryId": delivery_id}
    order = documented_order(space_key, flow_key, stored, None)
    return dumps({"order": order, "event": event, "context": context})


def sign(body: bytes, delivery_id: str, now: datetime, secrets: Sequence[str]) -> dict[str, str]:
    """Standard Webhooks v1 headers: one signature per live secret (two during a rotation)."""
    if not secrets:
        return {}
    headers = sign_headers(body, delivery_id, secrets, now=now)
    return {name: value for name, value in headers.items() if name != "webhook-id"}


def redacted(headers: dict[str, str]) -> dict[str, str]:
    """Headers as the delivery log keeps them: signatures shortened, nothing secret kept."""
    shown = dict(headers)
    if "webhook-signature" in shown:
        shown["webhook-signature"] = " ".join(
            part[:10] + "…" for part in shown["webhook-signature"].split(" ")
        )
    return shown


class ConsumeRestApi:
    """Calls the connector endpoint; waits for feedback when ``sendsFeedback`` is true."""

    key: ClassVar[str] = "consume-rest-api"
    payload_model: ClassVar[type[BaseModel]] = ConsumeRestApiPayload
    default_timeout_ms: ClassVar[int] = 30_000
    default_retry: ClassVar[RetryPolicy] = RetryPolicy(max_attempts=5)

    def __init__(
        self,
        *,
        allow_networks: tuple[str, ...] = (),
        ca_file: Path | None = None,
        max_per_host: int = 16,
        user_agent: str = "ordermill",
        client: OutboundClient | None = None,
    ) -> None:
        self.allow_networks = parse_networks(allow_networks)
        self.max_per_host = max_per_host
        self.client = client or OutboundClient(ca_file=ca_file, user_agent=user_agent)
        self._bulkheads: dict[str, asyncio.Semaphore] = {}

    def _bulkhead(self, host: str) -> asyncio.Semaphore:
        semaphore = self._bulkheads.get(host)
        if semaphore is None:
            semaphore = self._bulkheads[host] = asyncio.Semaphore(self.max_per_host)
        return semaphore

    async def run(self, ctx: TaskContext) -> Outcome:
        payload: ConsumeRestApiPayload = ctx.payload
        allowed = self.allow_networks + parse_networks(ctx.allow_networks)
        target = check_url(payload.uri, allowed)
        host = target.host or ""
        body = connector_body(ctx) if ctx.body is None else ctx.body
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self.client.user_agent,
            "webhook-id": ctx.delivery_id,
            "ordermill-attempt": str(ctx.attempt),
            **sign(body, ctx.delivery_id, ctx.now, ctx.signing_secrets),
        }
        ctx.log.request = {
            "method": "POST",
            "url": payload.uri,
            "headers": redacted(headers),
            "body": body[:LOGGED_BODY_LIMIT].decode("utf-8", errors="replace"),
        }
        bulkhead = self._bulkhead(host)
        if bulkhead.locked():
            # While it queues for its host, the task gives its worker slot back: one slow host
            # must not starve the others of workers.
            async with ctx.queued(host):
                await bulkhead.acquire()
        else:
            await bulkhead.acquire()
        try:
            status, text, retry_after, answered = await self._post(
                ctx, target, body, headers, allowed
            )
        finally:
            bulkhead.release()
        ctx.log.request["responseHeaders"] = answered
        ctx.log.status_code = status
        ctx.log.response_body = text
        kind = classify_http_status(status)
        if kind is None:
            result: dict[str, Any] = {"statusCode": status}
            if not payload.sends_feedback:
                return Succeeded(result)
            wait_ms = payload.feedback_timeout_duration or int(ctx.timeout_seconds * 1000)
            return Waiting(
                until=ctx.now + timedelta(milliseconds=wait_ms),
                result=result,
                heartbeat_ms=payload.heartbeat_timeout_duration,
            )
        message = f"the connector answered {status}"
        if 300 <= status < 400:
            message += " (a redirect; redirects are not followed)"
        if kind is FailureKind.RETRYABLE:
            raise RetryableError(
                message, status_code=status, response_body=text, retry_after=retry_after
            )
        raise PermanentError(message, status_code=status, response_body=text)

    async def _post(
        self,
        ctx: TaskContext,
        target: URL,
        body: bytes,
        headers: dict[str, str],
        allowed: tuple[IPNetwork, ...],
    ) -> tuple[int, str, float | None, dict[str, str]]:
        started = time.monotonic()
        try:
            async with (
                asyncio.timeout(ctx.timeout_seconds),
                self.client.request(
                    "POST", target, allowed=allowed, headers=headers, data=body
                ) as response,
            ):
                raw = await response.content.read(RESPONSE_BODY_LIMIT)
                retry_after_ms = parse_retry_after(response.headers.get("Retry-After"), ctx.now)
                text = raw.decode("utf-8", errors="replace")
                kept = [
                    (name, value)
                    for name, value in response.headers.items()
                    if name.lower() not in UNLOGGED_HEADERS
                ]
                answered = dict(kept[:LOGGED_HEADERS_LIMIT])
                return (
                    response.status,
                    text,
                    None if retry_after_ms is None else retry_after_ms / 1000,
                    answered,
                )
        except TimeoutError as exc:
            elapsed = time.monotonic() - started
            raise AttemptTimeout(
                f"no answer within {ctx.timeout_seconds:g} s (gave up after {elapsed:.1f} s)"
            ) from exc

    async def close(self) -> None:
        await self.client.close()
