"""The dispatcher: delivers the outbox's events to subscribed connector endpoints (SPEC §5.4).

It runs beside each worker's task loops. Each round it claims the due outbox rows that head
their subscription's line for one order, posts them through the ``consume-rest-api`` handler
(so signing, the network guard, the per-host bulkhead and the answer's classification are the
connectors' own) and records the outcome: delivered, retried after the backoff of
``DELIVERY_RETRY``, or given up on, which counts towards disabling the subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from ordermill.clock import Clock, SystemClock
from ordermill.engine.outcomes import failure_kind
from ordermill.errors import HandlerError, StorageError
from ordermill.flows.retry import decide_retry
from ordermill.flows.work import DeliverySettings
from ordermill.handlers.base import Handler, Succeeded, TaskContext
from ordermill.handlers.connector import ConsumeRestApiPayload, subscription_body
from ordermill.storage.subscriptions import (
    DELIVERY_RETRY,
    Delivered,
    OutboxItem,
    SubscriptionStore,
)

if TYPE_CHECKING:
    from ordermill.engine.worker import SpaceLookup

log = structlog.get_logger("ordermill.subscriptions")

ATTEMPT_TIMEOUT_S = 15.0


class Dispatcher:
    """Delivers outbox rows; any number of dispatchers in any number of processes may run."""

    def __init__(
        self,
        store: SubscriptionStore,
        spaces: SpaceLookup,
        handler: Handler,
        *,
        owner: str,
        clock: Clock | None = None,
        concurrency: int = 8,
        poll_interval: float = 0.5,
        lease_seconds: float = 60.0,
    ) -> None:
        self.store = store
        self.spaces = spaces
        self.handler = handler
        self.owner = owner
        self.clock = clock or SystemClock()
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        # A row claimed by a dispatcher that died is delivered again once this has passed.
        self.lease_seconds = max(lease_seconds, ATTEMPT_TIMEOUT_S + 1)

    async def run(self) -> None:
        """Deliver until cancelled."""
        while True:
            delivered = 0
            try:
                delivered = await self.round()
            except StorageError as exc:
                log.warning("claiming subscription events failed; retrying", error=str(exc))
            if not delivered:
                await asyncio.sleep(self.poll_interval)

    async def round(self) -> int:
        """Claim and deliver one batch; the number of rows handled."""
        items = await self.store.claim(
            self.owner, self.concurrency, self.lease_seconds, self.clock.now()
        )
        await asyncio.gather(*(self._deliver(item) for item in items))
        return len(items)

    async def _deliver(self, item: OutboxItem) -> None:
        settings = await self.spaces.delivery_settings(item.space_key)
        body = item.body or subscription_body(
            order_id=item.order_id,
            space_key=item.space_key,
            flow_key=item.flow_key,
            stored=item.order,
            event=item.event,
            delivery_id=item.delivery_id,
            subscription_id=item.subscription_id,
        )
        sent = await send(
            self.handler,
            settings,
            Envelope(item.uri, body, item.delivery_id, item.attempt, item.order_id, item.space_key),
            self.clock.now(),
        )
        retry_at = None
        if sent.error is not None:
            decision = decide_retry(
                DELIVERY_RETRY,
                item.budget_attempt,
                failure_kind(sent.error),
                retry_after_ms=None
                if sent.error.retry_after is None
                else int(sent.error.retry_after * 1000),
                jitter=random.random(),
            )
            if decision.retry:
                retry_at = self.clock.now() + timedelta(milliseconds=decision.delay_ms)
        done = Delivered(
            ok=sent.ok,
            body=body,
            retry_at=retry_at,
            status_code=sent.status_code,
            error=sent.message,
            request=sent.request,
            response_body=sent.response_body,
        )
        with contextlib.suppress(StorageError):
            recorded = await self.store.finish(item, self.owner, done, self.clock.now())
            if not recorded:
                log.info("a subscription event's lease passed on", delivery=item.delivery_id)


@dataclass(frozen=True)
class Envelope:
    """One request to a subscriber: where, the exact bytes, and for whom."""

    uri: str
    body: bytes
    delivery_id: str
    attempt: int
    order_id: str
    space_key: str


@dataclass(frozen=True)
class Sent:
    """How one request went, for the delivery log."""

    ok: bool
    error: HandlerError | None
    status_code: int | None
    request: dict[str, Any] | None
    response_body: str | None

    @property
    def message(self) -> str | None:
        if self.error is None:
            return None
        return f"{type(self.error).__name__}: {self.error.message}"


async def send(
    handler: Handler, settings: DeliverySettings, envelope: Envelope, now: datetime
) -> Sent:
    """Post ``envelope`` once through the connector handler: signed with the space's secrets,
    through the network guard and the host's bulkhead."""
    ctx = TaskContext(
        order_id=envelope.order_id,
        space_key=envelope.space_key,
        flow_key="",
        flow_version=0,
        stage_key="",
        task_key="",
        attempt=envelope.attempt,
        delivery_id=envelope.delivery_id,
        delivery_epoch=now,
        update_url=None,
        order={},
        payload=ConsumeRestApiPayload.model_construct(
            uri=envelope.uri,
            sends_feedback=False,
            feedback_timeout_duration=None,
            heartbeat_timeout_duration=None,
        ),
        timeout_seconds=ATTEMPT_TIMEOUT_S,
        now=now,
        allow_networks=settings.allow_networks,
        allow_http_hosts=settings.allow_http_hosts,
        signing_secrets=settings.signing_secrets,
        body=envelope.body,
    )
    error: HandlerError | None = None
    ok = False
    try:
        ok = isinstance(await handler.run(ctx), Succeeded)
    except HandlerError as exc:
        error = exc
    status = ctx.log.status_code or (error.status_code if error is not None else None)
    return Sent(ok, error, status, ctx.log.request, ctx.log.response_body)
