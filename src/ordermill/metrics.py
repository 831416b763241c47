"""Prometheus metrics of this process; database-wide gauges are refreshed at scrape time."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

TASKS_STARTED = Counter(
    "ordermill_tasks_started",
    "Attempts started by this process, by handler.",
    ["handler"],
    registry=REGISTRY,
)
TASKS_FINISHED = Counter(
    "ordermill_tasks_finished",
    "Attempts finished by this process, by handler and outcome "
    "(succeeded, waiting, retry, failed, timed_out).",
    ["handler", "outcome"],
    registry=REGISTRY,
)
ATTEMPT_SECONDS = Histogram(
    "ordermill_attempt_seconds",
    "How long one attempt took, by handler.",
    ["handler"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
CLAIM_SECONDS = Histogram(
    "ordermill_claim_seconds",
    "How long one claim transaction took.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
    registry=REGISTRY,
)
CLAIMS = Counter(
    "ordermill_claims_total",
    "Claims made, by whether they found work (tasks) or came back empty (empty).",
    ["result"],
    registry=REGISTRY,
)
COMMIT_BATCH = Histogram(
    "ordermill_completion_batch_size",
    "Outcomes recorded per transaction (group commit).",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500),
    registry=REGISTRY,
)
LEASE_EXPIRIES = Counter(
    "ordermill_lease_expiries",
    "Tasks reclaimed by this process after another worker's lease expired.",
    registry=REGISTRY,
)
ORDERS_RECONCILED = Counter(
    "ordermill_orders_reconciled",
    "Orders the reconcile pass of this process found IN_PROGRESS with no live work and moved "
    "on; anything but zero is a bug.",
    registry=REGISTRY,
)
BULKHEAD_QUEUED = Gauge(
    "ordermill_bulkhead_queued",
    "Tasks in this process waiting for a free slot of their target host.",
    ["host"],
    registry=REGISTRY,
)
ORDERS = Gauge(
    "ordermill_orders", "Orders in the database, by status.", ["status"], registry=REGISTRY
)
QUEUE_DEPTH = Gauge(
    "ordermill_queue_depth", "Tasks runnable now (PENDING and due).", registry=REGISTRY
)
OLDEST_RUNNABLE = Gauge(
    "ordermill_oldest_runnable_age_seconds",
    "Age of the oldest runnable task (0 when none).",
    registry=REGISTRY,
)


def set_database_gauges(
    orders_by_status: dict[str, int], runnable: int, oldest_due: datetime | None, now: datetime
) -> None:
    for status, count in orders_by_status.items():
        ORDERS.labels(status=status).set(count)
    QUEUE_DEPTH.set(runnable)
    OLDEST_RUNNABLE.set(max(0.0, (now - oldest_due).total_seconds()) if oldest_due else 0.0)


def render() -> bytes:
    return generate_latest(REGISTRY)
