"""The service: what the API, the UI and the CLI all call. Wires settings, storage and handlers.

Concrete choices (which database, which handlers) are made here once, at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial
from typing import Any

from ordermill.blobs import BlobStore, build_blob_store
from ordermill.clock import Clock, SystemClock
from ordermill.config import Settings
from ordermill.dryrun import DryRun, dry_run
from ordermill.engine.subscriptions import Dispatcher, Envelope, send
from ordermill.engine.worker import Worker, WorkerOptions, worker_name
from ordermill.errors import (
    ConfigurationError,
    Conflict,
    InvalidFlow,
    InvalidInput,
    NotFound,
    Problem,
    Unauthorized,
)
from ordermill.flows.lifecycle import Operator
from ordermill.flows.model import FlowDefinition
from ordermill.flows.status import OrderStatus
from ordermill.flows.validation import parse_flow, validate_flow
from ordermill.handlers.base import Handler
from ordermill.handlers.connector import subscription_body
from ordermill.handlers.registry import HandlerRegistry, build_registry, smtp_mailer
from ordermill.links import LinkSigner
from ordermill.oidc import OpenIdConnect
from ordermill.people import People
from ordermill.signatures import verify_signature
from ordermill.storage import migrate
from ordermill.storage.audit import AuditStore
from ordermill.storage.database import Database
from ordermill.storage.feedback import Feedback
from ordermill.storage.flowdefs import FlowRecord
from ordermill.storage.ids import new_id
from ordermill.storage.notify import listen, worker_channel
from ordermill.storage.orders import OrderFilter, OrderView
from ordermill.storage.spaces import Space
from ordermill.storage.store import Store
from ordermill.storage.subscriptions import EVENT_TYPES, Subscription
from ordermill.storage.users import PasswordPolicy, UserStore
from ordermill.times import iso


class BulkAction(StrEnum):
    """What an operator does to many orders at once, chosen by a filter."""

    RETRY = "retry"  # the failed and timed-out tasks run again
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"  # cannot be undone
    RESTART = "restart"  # onto another version of the flow; cannot be undone


_OPEN = (OrderStatus.CREATED, OrderStatus.IN_PROGRESS, OrderStatus.UNHEALTHY)
# The orders an action fits, when its filter names no status.
BULK_STATUSES: Mapping[BulkAction, tuple[OrderStatus, ...]] = {
    BulkAction.RETRY: (OrderStatus.FAILURE, OrderStatus.UNHEALTHY),
    BulkAction.PAUSE: _OPEN,
    BulkAction.RESUME: _OPEN,
    BulkAction.CANCEL: _OPEN,
    BulkAction.RESTART: (OrderStatus.FAILURE, OrderStatus.UNHEALTHY, OrderStatus.CANCELLED),
}


@dataclass(frozen=True)
class BulkOutcome:
    action: BulkAction
    dry_run: bool
    matched: int  # orders the filter found (at most the limit)
    changed: tuple[str, ...]  # ids of those the action changed (with dry_run: would change)
    skipped: int  # matched orders the action does not fit (the core refused it)


@dataclass
class Service:
    settings: Settings
    db: Database
    store: Store
    registry: HandlerRegistry
    clock: Clock
    links: LinkSigner
    blobs: BlobStore  # where exports keep their bytes (ORDERMILL_BLOB_STORE)
    people: People  # users, roles, invitations, sign-in and the audit trail
    _known_spaces: set[str] = field(default_factory=set)

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        run_migrations: bool = True,
        pre_ping: bool = True,
        extra_handlers: Iterable[Handler] = (),
        clock: Clock | None = None,
    ) -> Service:
        db = Database(
            settings.database_url,
            sqlite_synchronous=settings.sqlite_synchronous,
            pre_ping=pre_ping,
        )
        try:
            if run_migrations:
                await migrate.upgrade(db)
            elif not await migrate.is_current(db):
                raise ConfigurationError(
                    "the database schema is not current; run `ordermill migrate` first"
                )
            clock = clock or SystemClock()
            secret = (
                settings.secret_key.get_secret_value()
                if settings.secret_key is not None
                else await Store(db, clock, "").spaces.instance_secret()
            )
            store = Store(db, clock, secret)
            registry = build_registry(settings, extra_handlers)
            blobs = build_blob_store(settings)
        except BaseException:
            await db.dispose()
            raise
        policy = PasswordPolicy(
            settings.password_time_cost, settings.password_memory_kib, settings.password_parallelism
        )
        return cls(
            settings,
            db,
            store,
            registry,
            clock,
            LinkSigner(secret, settings.base_url),
            blobs,
            People(
                settings,
                UserStore(db, clock, policy),
                AuditStore(db, clock),
                store.spaces,
                smtp_mailer(settings),
                clock,
            ),
        )

    @property
    def sign_on(self) -> OpenIdConnect:
        """Single sign-on with the operator's OpenID Connect provider (when configured)."""
        return OpenIdConnect(self.settings)

    def worker(self, *, concurrency: int | None = None) -> Worker:
        """An engine worker wired to this service's store, handlers and settings."""
        settings = self.settings
        name = worker_name()
        channel = worker_channel()  # its own wake-ups (storage/notify.py)
        dispatcher = Dispatcher(
            self.store.subscriptions,
            self.store.spaces,
            self.registry.get("consume-rest-api"),
            owner=name,
            clock=self.clock,
            poll_interval=settings.poll_interval_seconds,
            lease_seconds=settings.lease_seconds,
        )
        return Worker(
            self.store,
            self.registry,
            self.store.spaces,
            WorkerOptions(
                public_url=settings.base_url,
                concurrency=concurrency or settings.worker_concurrency,
                lease_seconds=settings.lease_seconds,
                poll_interval=settings.poll_interval_seconds,
                # SQLite's one process serves the API too, and each of its transactions costs
                # it more Python than a statement costs PostgreSQL: there, claims and outcome
                # batches 10 ms apart took a sixth less CPU per order for a few milliseconds
                # of latency under load; on PostgreSQL they took more (docs/performance.md).
                claim_gap=0.010 if self.db.is_sqlite else WorkerOptions.claim_gap,
                gather=0.010 if self.db.is_sqlite else WorkerOptions.gather,
            ),
            clock=self.clock,
            links=self.links,
            listener=None if self.db.is_sqlite else partial(listen, settings.database_url, channel),
            name=name,
            dispatcher=dispatcher,
        )

    async def close(self) -> None:
        await self.store.wakeups.close()
        await self.registry.close()
        await self.db.dispose()

    # -- flows ------------------------------------------------------------------------------

    def catalog_for(self, space: Space | None) -> HandlerRegistry:
        """Handlers that validate payloads with the operator's and the space's allowances."""
        hosts = list(self.settings.connector_allow_http)
        if space is not None:
            hosts += space.allow_http_hosts
        return self.registry.with_context(allow_http_hosts=tuple(hosts))

    async def validate_flow(
        self, space_key: str | None, document: object, *, saved_under: str | None = None
    ) -> list[Problem]:
        """Every problem of ``document``. ``saved_under`` is the key it is saved under (the key
        in the URL): the document may then leave its ``key`` out, and must not name another."""
        space = await self._space_or_none(space_key)
        problems = validate_flow(document, self.catalog_for(space), saved_under=saved_under)
        if space_key is not None and isinstance(document, dict):
            declared = document.get("spaceKey")
            if isinstance(declared, str) and declared != space_key:
                problems.append(
                    Problem(
                        "/spaceKey",
                        f"this API key belongs to space {space_key!r}, not {declared!r}",
                    )
                )
        return problems

    async def parse_flow(
        self, space_key: str, document: object, *, saved_under: str | None = None
    ) -> FlowDefinition:
        problems = await self.validate_flow(space_key, document, saved_under=saved_under)
        if problems:
            raise InvalidFlow(problems)
        catalog = self.catalog_for(await self.store.spaces.get_space(space_key))
        return parse_flow(document, catalog, saved_under=saved_under)

    async def dry_run(
        self,
        space_key: str,
        flow: FlowDefinition,
        order: dict[str, Any],
        outcomes: Mapping[str, Sequence[Mapping[str, Any]]],
        seed: int | None = None,
    ) -> DryRun:
        """``order`` (a parsed order body) through ``flow`` with no side effects
        (``ordermill.dryrun``), the connectors' example updateUrl under our public URL."""
        return await dry_run(
            flow,
            order,
            outcomes,
            self.registry,
            space_key=space_key,
            public_url=self.settings.base_url,
            seed=seed,
        )

    async def save_flow(
        self, space_key: str, document: object, *, saved_under: str | None = None
    ) -> tuple[FlowRecord, bool]:
        """Validate and store a flow; a changed flow becomes a new version."""
        definition = await self.parse_flow(space_key, document, saved_under=saved_under)
        return await self.store.flows.save(space_key, definition)

    # -- subscriptions ----------------------------------------------------------------------

    async def subscribe(
        self,
        space_key: str,
        uri: str,
        events: list[str],
        flow_keys: list[str] | None,
    ) -> Subscription:
        await self._check_subscription(space_key, {"uri": uri, "events": events})
        return await self.store.subscriptions.create(
            space_key, uri, events, flow_keys, self.clock.now()
        )

    async def change_subscription(
        self, space_key: str, subscription_id: str, changes: dict[str, Any]
    ) -> Subscription:
        """Change a subscription: ``uri``, ``events``, ``flowKeys`` or ``enabled: false``."""
        await self._check_subscription(space_key, changes)
        columns = {
            {"flowKeys": "flow_keys"}.get(name, name): value for name, value in changes.items()
        }
        if columns.get("enabled") is False:
            columns["disabled_at"] = self.clock.now()
        elif "enabled" in columns:
            raise InvalidInput([Problem("/enabled", "turn a subscription on with POST …/enable")])
        return await self.store.subscriptions.update(
            space_key, subscription_id, columns, self.clock.now()
        )

    async def test_subscription(self, space_key: str, subscription_id: str) -> dict[str, Any]:
        """Send one signed ``subscription.test`` event now, outside the outbox; say how it went."""
        subscription = await self.store.subscriptions.get(space_key, subscription_id)
        now = self.clock.now()
        delivery_id = new_id("evt_")
        order = {"thirdPartyOrderId": "test", "addresses": [], "data": {}, "orderLines": []}
        flow_key = (subscription.flow_keys or ("",))[0]
        body = subscription_body(
            order_id="",
            space_key=space_key,
            flow_key=flow_key,
            stored=order,
            event={"type": "subscription.test", "at": iso(now)},
            delivery_id=delivery_id,
            subscription_id=subscription.id,
        )
        sent = await send(
            self.registry.get("consume-rest-api"),
            await self.store.spaces.delivery_settings(space_key),
            Envelope(subscription.uri, body, delivery_id, 1, "", space_key),
            now,
        )
        return {
            "delivered": sent.ok,
            "deliveryId": delivery_id,
            "statusCode": sent.status_code,
            "error": sent.message,
            "responseBody": sent.response_body,
        }

    async def _check_subscription(self, space_key: str, fields: dict[str, Any]) -> None:
        problems: list[Problem] = []
        if "uri" in fields:
            space = await self.store.spaces.get_space(space_key)
            catalog = self.catalog_for(space)
            found = catalog.validate_payload("consume-rest-api", {"uri": fields["uri"]})
            problems += [Problem("/uri" + p.pointer.removeprefix("/uri"), p.message) for p in found]
        events = fields.get("events")
        if events is not None:
            if not events:
                problems.append(Problem("/events", "name at least one event"))
            for index, event in enumerate(events):
                if event not in EVENT_TYPES:
                    problems.append(
                        Problem(
                            f"/events/{index}",
                            f"unknown event {event!r}; one of {', '.join(EVENT_TYPES)}",
                        )
                    )
        if problems:
            raise InvalidInput(problems)

    async def _space_or_none(self, space_key: str | None) -> Space | None:
        if space_key is None:
            return None
        try:
            return await self.store.spaces.get_space(space_key)
        except NotFound:
            return None

    # -- feedback ---------------------------------------------------------------------------

    async def receive_feedback(
        self, token: str, raw: bytes, headers: Mapping[str, str], feedback: Feedback
    ) -> str:
        """Apply a connector's feedback, checking its signature when it has one (or must)."""
        space_key = await self.store.feedback_space(token)
        delivery = await self.store.spaces.delivery_settings(space_key)
        signed = "webhook-signature" in headers
        if signed or delivery.require_feedback_signature:
            if not signed:
                raise Unauthorized(
                    "this space requires signed feedback: add Standard Webhooks headers "
                    "(webhook-id, webhook-timestamp, webhook-signature) made with its secret"
                )
            verify_signature(raw, headers, delivery.signing_secrets)
        return await self.store.apply_feedback(token, feedback)

    # -- orders -----------------------------------------------------------------------------

    async def act_on_orders(
        self,
        space_key: str | None,
        action: BulkAction,
        filters: OrderFilter,
        *,
        actor: str,
        reason: str | None = None,
        limit: int = 100,
        dry_run: bool = False,
        flow_version: int | None = None,
        from_start: bool = False,
    ) -> BulkOutcome:
        """Apply ``action`` to the orders ``filters`` match, newest first, up to ``limit``; a
        filter without statuses takes the action's ``BULK_STATUSES``. Each order is one event
        of the lifecycle core under its own lock, so an order the action no longer fits is
        skipped, never half-changed. With ``dry_run`` the core is asked and nothing changes."""
        if not filters.status:
            filters = replace(filters, status=BULK_STATUSES[action])
        orders = await self.store.list_orders(space_key, filters, limit=limit, after=None)
        store, changed, skipped = self.store, [], 0
        for order in orders:
            try:
                match action:
                    case BulkAction.RETRY:
                        await store.retry_order(space_key, order.id, actor, dry_run=dry_run)
                    case BulkAction.RESTART:
                        await store.restart_order(
                            space_key,
                            order.id,
                            actor,
                            flow_version=flow_version,
                            from_start=from_start,
                            reason=reason,
                            dry_run=dry_run,
                        )
                    case _:
                        operator = Operator(action.value)
                        await store.steer(
                            space_key, order.id, operator, actor, reason, dry_run=dry_run
                        )
                changed.append(order.id)
            except Conflict:
                skipped += 1
        return BulkOutcome(action, dry_run, len(orders), tuple(changed), skipped)

    async def create_order(
        self, body: dict[str, Any], *, start: bool, actor: str
    ) -> tuple[OrderView, bool]:
        """Store an order (validated at the edge) and start its flow when asked."""
        if body["spaceKey"] not in self._known_spaces:
            # Spaces are never deleted, so one successful look-up per process is enough.
            await self.store.spaces.get_space(body["spaceKey"])
            self._known_spaces.add(body["spaceKey"])
        return await self.store.create_order(
            body["spaceKey"], body["flowKey"], body, start=start, actor=actor
        )
