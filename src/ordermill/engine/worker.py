"""The worker: claims due tasks in batches, runs their handlers, and commits outcomes in groups.

Four loops share one event loop: claiming (woken by new work or a poll), completing (group
commit of outcomes: attempts that end together share a transaction), firing timers, and
renewing the leases of tasks in flight. No transaction is open while a handler runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from pydantic import ValidationError

from ordermill import metrics
from ordermill.clock import Clock, SystemClock
from ordermill.engine.outcomes import completion_of_error, completion_of_outcome
from ordermill.errors import (
    HandlerError,
    NotFound,
    PermanentError,
    RetryableError,
    StorageError,
)
from ordermill.flows.retry import DEFAULT_RETRY, retry_horizon_ms
from ordermill.flows.work import ClaimedTask, Completion, DeliverySettings
from ordermill.handlers.base import AttemptLog, TaskContext
from ordermill.handlers.registry import HandlerRegistry
from ordermill.links import LinkSigner

if TYPE_CHECKING:
    from ordermill.engine.subscriptions import Dispatcher

log = structlog.get_logger("ordermill.worker")


class WorkStore(Protocol):
    """What the worker needs from storage (implemented by ordermill.storage.store.Store)."""

    def on_new_work(self, listener: Any) -> None: ...
    async def claim(
        self, owner: str, limit: int, lease_seconds: float, *, expired: bool = True
    ) -> list[ClaimedTask]: ...
    async def complete(self, completions: list[Completion]) -> list[bool]: ...
    async def extend_leases(
        self, owner: str, task_ids: list[int], lease_seconds: float
    ) -> None: ...
    async def fire_due(self, limit: int = 200) -> int: ...
    async def reconcile(self, limit: int = 200) -> int: ...


class SpaceLookup(Protocol):
    """A space's connector allowances and signing secrets (ordermill.storage.spaces)."""

    async def delivery_settings(self, space_key: str) -> DeliverySettings: ...


@dataclass(frozen=True)
class WorkerOptions:
    public_url: str
    concurrency: int = 64
    lease_seconds: float = 30.0
    poll_interval: float = 0.5
    batch_size: int = 64
    shutdown_grace: float = 10.0
    reconcile_interval: float = 5.0  # seconds between reconcile passes
    claim_gap: float = 0.003  # seconds at least between two claims under load; see _claim_loop
    gather: float = 0.005  # seconds an outcome waits at most for attempts running; see _gather


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Runs tasks for any number of orders; safe to run many of, in many processes."""

    def __init__(
        self,
        store: WorkStore,
        registry: HandlerRegistry,
        spaces: SpaceLookup,
        options: WorkerOptions,
        *,
        clock: Clock | None = None,
        name: str | None = None,
        links: LinkSigner | None = None,
        listener: Callable[[Callable[[], None]], Coroutine[Any, Any, None]] | None = None,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.spaces = spaces
        self.options = options
        self.clock = clock or SystemClock()
        self.name = name or worker_name()
        self.links = links
        self.listener = listener
        self.dispatcher = dispatcher  # delivers subscriptions' events beside the tasks
        self._wake = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._completions: asyncio.Queue[Completion] = asyncio.Queue()
        self._parked: dict[str, int] = {}
        self._last_claim = 0.0
        self._last_expired_check = 0.0
        self._payloads: dict[tuple[int, str, tuple[str, ...]], Any] = {}
        store.on_new_work(self.wake)

    def wake(self) -> None:
        """New work may be due: claim now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Run until ``stop()``; then finish tasks in flight for a grace period."""
        log.info("worker started", worker=self.name, concurrency=self.options.concurrency)
        loops = [
            self._loop(self._claim_loop()),
            self._loop(self._complete_loop()),
            self._loop(self._timer_loop()),
            self._loop(self._lease_loop()),
        ]
        if self.listener is not None:
            loops.append(self._loop(self.listener(self.wake)))
        if self.dispatcher is not None:
            loops.append(self._loop(self.dispatcher.run()))
        await self._stopping.wait()
        loops[0].cancel()
        loops[2].cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.options.shutdown_grace):
                while self._inflight:
                    await asyncio.wait(list(self._inflight.values()))
                await self._completions.join()
        for task in list(self._inflight.values()):
            task.cancel()
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, *self._inflight.values(), return_exceptions=True)
        log.info("worker stopped", worker=self.name, unfinished=len(self._inflight))

    def stop(self) -> None:
        self._stopping.set()

    def _loop(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return asyncio.create_task(coro)

    async def _claim_loop(self) -> None:
        backoff = 0.1
        while True:
            free = self._free_slots()
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            # Under load, claim at most every claim_gap: wake-ups that come in between are
            # folded into one bigger claim.
            since = time.monotonic() - self._last_claim
            if since < self.options.claim_gap:
                await asyncio.sleep(self.options.claim_gap - since)
            self._wake.clear()
            wanted = min(free, self.options.batch_size)
            now = time.monotonic()
            # Expired leases are rare; looking for them a few times per lease is enough.
            expired = now - self._last_expired_check > self.options.lease_seconds / 4
            self._last_claim = now
            try:
                with metrics.CLAIM_SECONDS.time():
                    claimed = await self.store.claim(
                        self.name, wanted, self.options.lease_seconds, expired=expired
                    )
                if expired:
                    self._last_expired_check = now
                backoff = 0.1
            except StorageError as exc:
                log.warning("claim failed; retrying", error=str(exc), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            metrics.CLAIMS.labels("tasks" if claimed else "empty").inc()
            for task in claimed:
                if task.reclaimed:
                    metrics.LEASE_EXPIRIES.inc()
                self._inflight[task.task_id] = asyncio.create_task(self._run_one(task))
            if len(claimed) < wanted:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.options.poll_interval):
                        await self._wake.wait()

    async def _run_one(self, task: ClaimedTask) -> None:
        structlog.contextvars.bind_contextvars(order_id=task.order_id, task_key=task.task_key)
        try:
            completion = await self._attempt(task)
        except Exception:  # a bug in a handler must not take the worker down
            log.exception("handler crashed", attempt=task.attempt)
            now = self.clock.now()
            completion = completion_of_error(
                task,
                RetryableError("the handler crashed; see the worker log"),
                self.registry.retry_policy(task.definition),
                now,
                now,
                0.0,
                AttemptLog(),
            )
        metrics.TASKS_FINISHED.labels(task.handler_key, completion.attempt.outcome).inc()
        if completion.attempt.latency_ms is not None:
            metrics.ATTEMPT_SECONDS.labels(task.handler_key).observe(
                completion.attempt.latency_ms / 1000
            )
        await self._completions.put(completion)

    async def _attempt(self, task: ClaimedTask) -> Completion:
        started = self.clock.now()
        t0 = time.perf_counter()
        metrics.TASKS_STARTED.labels(task.handler_key).inc()
        if not self.registry.has_handler(task.handler_key):
            error = PermanentError(f"no handler {task.handler_key!r} is installed on this worker")
            return completion_of_error(
                task,
                error,
                task.definition.retry or DEFAULT_RETRY,
                started,
                started,
                0.0,
                AttemptLog(),
            )
        handler = self.registry.get(task.handler_key)
        delivery = await self.spaces.delivery_settings(task.space_key)
        try:
            payload = self._payload(task, delivery.allow_http_hosts)
        except ValidationError as exc:
            error = PermanentError(f"the task's payload is no longer valid here: {exc}")
            policy = self.registry.retry_policy(task.definition)
            return completion_of_error(task, error, policy, started, started, 0.0, AttemptLog())
        ctx = TaskContext.of_claimed(
            task,
            payload=payload,
            update_url=f"{self.options.public_url}/api/feedback/{task.feedback_token}",
            timeout_seconds=self.registry.timeout_ms(task.definition) / 1000,
            now=started,
            allow_networks=delivery.allow_networks,
            allow_http_hosts=delivery.allow_http_hosts,
            signing_secrets=delivery.signing_secrets,
            links=self.links,
            links_valid_until=task.delivery_epoch + self._horizon(task),
            assets=task.assets,
            context=task.context,
            queued=self._queued,
        )
        try:
            outcome = await handler.run(ctx)
        except HandlerError as error:
            ended = self.clock.now()
            latency = (time.perf_counter() - t0) * 1000
            policy = self.registry.retry_policy(task.definition)
            return completion_of_error(task, error, policy, started, ended, latency, ctx.log)
        latency = (time.perf_counter() - t0) * 1000
        return completion_of_outcome(task, outcome, started, self.clock.now(), latency, ctx.log)

    @contextlib.asynccontextmanager
    async def _queued(self, key: str) -> AsyncIterator[None]:
        """A task waiting for its target's bulkhead does not count against our concurrency."""
        self._parked[key] = self._parked.get(key, 0) + 1
        metrics.BULKHEAD_QUEUED.labels(key).inc()
        self._slot_freed.set()
        try:
            yield
        finally:
            metrics.BULKHEAD_QUEUED.labels(key).dec()
            self._parked[key] -= 1
            if not self._parked[key]:
                del self._parked[key]

    def _horizon(self, task: ClaimedTask) -> timedelta:
        """How long links sent in this delivery must stay valid (retries, waits, a day spare)."""
        timeout_ms = self.registry.timeout_ms(task.definition)
        horizon = retry_horizon_ms(self.registry.retry_policy(task.definition), timeout_ms)
        return timedelta(milliseconds=horizon + timeout_ms) + timedelta(days=1)

    def _free_slots(self) -> int:
        running = len(self._inflight) - sum(self._parked.values())
        # Parked tasks are bounded too, so a stuck host cannot make us claim without end.
        return min(
            self.options.concurrency - running, 4 * self.options.concurrency - len(self._inflight)
        )

    def _payload(self, task: ClaimedTask, allow_http: tuple[str, ...]) -> Any:
        """The validated payload; cached per flow version, task and space allowances."""
        key = (id(task.flow), task.task_key, allow_http)
        payload = self._payloads.get(key)
        if payload is None:
            hosts = (*self.registry.validation_context.get("allow_http_hosts", ()), *allow_http)
            catalog = self.registry.with_context(allow_http_hosts=hosts)
            payload = catalog.parse_payload(task.handler_key, task.definition.payload)
            if len(self._payloads) > 10_000:
                self._payloads.clear()
            self._payloads[key] = payload
        return payload

    async def _complete_loop(self) -> None:
        while True:
            batch = await self._gather()
            backoff = 0.1
            while True:
                try:
                    applied = await self.store.complete(batch)
                    metrics.COMMIT_BATCH.observe(len(batch))
                    break
                except StorageError as exc:
                    # Our leases keep the tasks ours meanwhile; if they lapse, another worker
                    # runs the attempt again (at-least-once, deduplicated by delivery id).
                    log.warning(
                        "recording outcomes failed; retrying", error=str(exc), count=len(batch)
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
            for done, ok in zip(batch, applied, strict=True):
                if not ok:
                    log.info(
                        "outcome discarded: the lease passed to another worker",
                        order_id=done.task.order_id,
                        task_key=done.task.task_key,
                    )
                self._inflight.pop(done.task.task_id, None)
                self._completions.task_done()
            self._slot_freed.set()

    async def _gather(self, most: int = 500) -> list[Completion]:
        """The next batch of outcomes to record: the first one, and those that come within
        ``gather`` seconds of it while attempts of ours are still running (group commit; with
        nothing else running, the first one goes alone at once)."""
        batch = [await self._completions.get()]
        deadline = time.monotonic() + self.options.gather
        while len(batch) < most:
            while not self._completions.empty() and len(batch) < most:
                batch.append(self._completions.get_nowait())
            running = (
                len(self._inflight)
                - sum(self._parked.values())
                - len(batch)
                - self._completions.qsize()
            )
            left = deadline - time.monotonic()
            if running <= 0 or left <= 0 or len(batch) >= most:
                break
            try:
                async with asyncio.timeout(left):
                    batch.append(await self._completions.get())
            except TimeoutError:
                break
        return batch

    async def _timer_loop(self) -> None:
        last_reconcile = -float("inf")
        while True:
            try:
                while await self.store.fire_due() > 0:
                    pass
                if time.monotonic() - last_reconcile >= self.options.reconcile_interval:
                    last_reconcile = time.monotonic()
                    await self._reconcile()
            except StorageError as exc:
                log.warning("firing timers failed; retrying", error=str(exc))
            except NotFound:
                pass
            await asyncio.sleep(self.options.poll_interval)

    async def _reconcile(self) -> None:
        """At start-up and every few seconds: move on orders left with no live work."""
        moved = await self.store.reconcile()
        if moved:
            metrics.ORDERS_RECONCILED.inc(moved)
            log.error("orders in progress had no live work; reconciled", orders=moved)

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.lease_seconds / 3)
            try:
                await self.store.extend_leases(
                    self.name, list(self._inflight), self.options.lease_seconds
                )
            except StorageError as exc:
                log.warning("renewing leases failed", error=str(exc))
