"""The lifecycle guarantee (SPEC §3.6) checked from the outside: read a database after a run and
list every violation, each with the order it concerns.

This is an oracle of its own: it reads the tables of `ordermill.storage.tables` with SQLAlchemy
Core and the stored flow JSON, and shares no code with the planner it checks. Order in time is
the timeline's event ids, not clocks: an event written by a transaction that saw another's
commit gets a larger id, whichever process wrote it. Events of one transaction share their `at`,
so those count as simultaneous.

Rules (`Violation.rule`):

- `not-final`: the order is neither SUCCESS, FAILURE nor CANCELLED, nor UNHEALTHY at rest (a
  timed-out task and no live work: it waits on a late answer or an operator). With
  `outside_waits=True`, an order whose only live tasks are WAITING counts as waiting outside.
- `status-mismatch`: the stored order status is not what its tasks say (FAILURE > UNHEALTHY >
  IN_PROGRESS; SUCCESS only when every task of every stage succeeded).
- `double-success`: a task succeeded more often than it was delivered (once, plus once per
  operator redelivery), counted in the timeline and in the attempts.
- `success-unrecorded`: a SUCCEEDED task with no `task.succeeded` event.
- `unknown-task`, `queued-twice`, `not-queued`: task rows that do not match the flow or their
  `task.queued` events.
- `join-early`: a task queued before its join was satisfied (`all`: every predecessor had
  succeeded; `any`: one had).
- `stage-order`: a task of a later stage queued before every task of the earlier stages had
  succeeded.
- `after-cancel`: a task queued or run after its order was cancelled.
- `reconciled`: an `order.reconciled` event; the reconcile pass repaired an order, which only a
  bug makes necessary.
- `delivery-ids`: at the receiver, one delivery id arrived under several `webhook-id`s, or under
  one that is not itself; or a delivery id that no task has.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy
from sqlalchemy.engine import Connection, Engine, make_url

from ordermill.storage import tables as t

FINAL = frozenset({"SUCCESS", "FAILURE", "CANCELLED"})
LIVE_TASKS = frozenset({"PENDING", "RUNNING", "WAITING"})
RECONCILED = "order.reconciled"


@dataclass(frozen=True)
class Violation:
    rule: str
    order_id: str | None
    detail: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.order_id or '-'}: {self.detail}"


@dataclass(frozen=True)
class Event:
    id: int
    at: datetime
    type: str
    task_key: str | None
    data: Any

    def __str__(self) -> str:
        return f"{self.id} {self.type}" + (f" {self.task_key}" if self.task_key else "")

    def before(self, other: Event) -> bool:
        """Committed before `other` was written, or in the same transaction."""
        return self.id < other.id or self.at == other.at


@dataclass(frozen=True)
class TaskDef:
    key: str
    stage: int
    join: str
    predecessors: tuple[str, ...]
    initial: bool


@dataclass
class OrderRun:
    """One order as the database holds it: status, flow, tasks and timeline."""

    id: str
    status: str
    flow: dict[str, TaskDef]
    stages: list[list[str]]
    tasks: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    succeeded_attempts: dict[str, int] = field(default_factory=dict)

    def events_of(self, type_: str, task_key: str | None = None) -> list[Event]:
        return [
            e
            for e in self.events
            if e.type == type_ and (task_key is None or e.task_key == task_key)
        ]


def sync_engine(url: str) -> Engine:
    """A blocking engine for a URL the service uses (`sqlite+aiosqlite` becomes `sqlite`)."""
    parsed = make_url(url)
    if parsed.drivername == "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite")
    return sqlalchemy.create_engine(parsed, poolclass=sqlalchemy.NullPool)


def check_database(
    url: str,
    *,
    deliveries: Iterable[tuple[str | None, str | None]] = (),
    outside_waits: bool = False,
) -> list[Violation]:
    """Every violation in the database at `url`; `deliveries` are the receiver's
    (context.deliveryId, webhook-id) pairs, one per request."""
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            runs, delivery_owner = load_runs(conn)
    finally:
        engine.dispose()
    violations: list[Violation] = []
    for run in runs.values():
        violations += check_order(run, outside_waits=outside_waits)
    violations += check_deliveries(deliveries, delivery_owner)
    return violations


def report(violations: list[Violation], limit: int = 60) -> str:
    """A failure message: counts per rule, then the first `limit` violations."""
    per_rule: dict[str, list[str]] = defaultdict(list)
    for violation in violations:
        per_rule[violation.rule].append(violation.order_id or "-")
    lines = [f"{len(violations)} invariant violation(s):"]
    lines += [f"  {rule}: {len(ids)} ({', '.join(ids[:10])})" for rule, ids in per_rule.items()]
    lines += [f"  {violation}" for violation in violations[:limit]]
    return "\n".join(lines)


def load_runs(conn: Connection) -> tuple[dict[str, OrderRun], dict[str, str]]:
    """Every order with its flow, tasks and events; and each delivery id's order."""
    flows: dict[tuple[int, int], tuple[dict[str, TaskDef], list[list[str]]]] = {}
    for row in conn.execute(sqlalchemy.select(t.flow_versions)).mappings():
        flows[(row["flow_id"], row["version"])] = parse_flow(row["definition"])
    runs: dict[str, OrderRun] = {}
    for row in conn.execute(sqlalchemy.select(t.orders)).mappings():
        definitions, stages = flows[(row["flow_id"], row["flow_version"])]
        runs[row["id"]] = OrderRun(row["id"], row["status"], definitions, stages)
    delivery_owner: dict[str, str] = {}
    task_ids: dict[int, tuple[str, str]] = {}
    for row in conn.execute(sqlalchemy.select(t.tasks)).mappings():
        runs[row["order_id"]].tasks[row["task_key"]] = row
        delivery_owner[row["delivery_id"]] = row["order_id"]
        task_ids[row["id"]] = (row["order_id"], row["task_key"])
    succeeded = sqlalchemy.select(t.attempts.c.task_id).where(t.attempts.c.outcome == "succeeded")
    for (task_id,) in conn.execute(succeeded):
        order_id, task_key = task_ids[task_id]
        counts = runs[order_id].succeeded_attempts
        counts[task_key] = counts.get(task_key, 0) + 1
    query = sqlalchemy.select(t.events).order_by(t.events.c.id)
    for row in conn.execute(query).mappings():
        runs[row["order_id"]].events.append(
            Event(row["id"], row["at"], row["type"], row["task_key"], row["data"])
        )
    return runs, delivery_owner


def parse_flow(wire: Mapping[str, Any]) -> tuple[dict[str, TaskDef], list[list[str]]]:
    """Each task definition with its stage, join rule and predecessors; keys per stage."""
    definitions: dict[str, TaskDef] = {}
    stages: list[list[str]] = []
    for index, stage in enumerate(wire["stages"]):
        keys = [task["key"] for task in stage["taskDefinitions"]]
        predecessors: dict[str, list[str]] = {key: [] for key in keys}
        for task in stage["taskDefinitions"]:
            for target in task.get("next") or ():
                predecessors[target].append(task["key"])
        for task in stage["taskDefinitions"]:
            key = task["key"]
            definitions[key] = TaskDef(
                key=key,
                stage=index,
                join=task.get("join", "all"),
                predecessors=tuple(predecessors[key]),
                initial=key in stage["initialTaskDefinitionKeys"],
            )
        stages.append(keys)
    return definitions, stages


def expected_status(run: OrderRun) -> str:
    """What the order's tasks say its status is (SPEC §3.1, §3.3)."""
    statuses = {key: task["status"] for key, task in run.tasks.items()}
    if "FAILED" in statuses.values():
        return "FAILURE"
    if all(statuses.get(key) == "SUCCEEDED" for key in run.flow):
        return "SUCCESS"
    if "TIMED_OUT" in statuses.values():
        return "UNHEALTHY"
    return "IN_PROGRESS"


def check_order(run: OrderRun, *, outside_waits: bool = False) -> list[Violation]:
    found: list[Violation] = []

    def violation(rule: str, detail: str) -> None:
        found.append(Violation(rule, run.id, detail))

    task_states = " ".join(f"{key}={task['status']}" for key, task in sorted(run.tasks.items()))
    live = {task["status"] for task in run.tasks.values()} & LIVE_TASKS
    at_rest = run.status == "UNHEALTHY" and not live
    waiting_outside = outside_waits and live == {"WAITING"}
    if run.status not in FINAL and not at_rest and not waiting_outside:
        work = "live work" if live else "no live work"
        last = ", ".join(str(e) for e in run.events[-4:])
        violation(
            "not-final",
            f"{run.status} with {work}; tasks: {task_states or 'none'}; last events: {last}",
        )
    if run.status not in ("CANCELLED", "CREATED") and run.status != expected_status(run):
        violation(
            "status-mismatch",
            f"stored {run.status}, tasks say {expected_status(run)}: {task_states}",
        )
    for event in run.events_of(RECONCILED):
        violation("reconciled", f"repaired by the reconcile pass (event {event.id}: {event.data})")

    cancelled_at = next(
        (
            e
            for e in run.events_of("order.status")
            if isinstance(e.data, dict) and e.data.get("to") == "CANCELLED"
        ),
        None,
    )
    first_success: dict[str, Event] = {}
    for key, task in run.tasks.items():
        definition = run.flow.get(key)
        if definition is None:
            violation("unknown-task", f"task {key!r} is not in the order's flow version")
            continue
        successes = run.events_of("task.succeeded", key)
        if successes:
            first_success[key] = successes[0]
        deliveries = 1 + len(run.events_of("task.redelivery_requested", key))
        attempts = run.succeeded_attempts.get(key, 0)
        if len(successes) > deliveries or attempts > deliveries:
            violation(
                "double-success",
                f"task {key!r}: {len(successes)} task.succeeded events and {attempts} succeeded "
                f"attempts for {deliveries} delivery(ies)",
            )
        if task["status"] == "SUCCEEDED" and not successes:
            violation("success-unrecorded", f"task {key!r} is SUCCEEDED without task.succeeded")
    for key, definition in run.flow.items():
        if key not in run.tasks:
            continue
        queued = run.events_of("task.queued", key)
        if len(queued) > 1:
            violation("queued-twice", f"task {key!r} queued {len(queued)} times")
        if not queued:
            violation("not-queued", f"task {key!r} exists without a task.queued event")
            continue
        start = queued[0]
        if cancelled_at is not None:
            late = [
                e
                for e in run.events
                if e.task_key == key and e.type in ("task.queued", "task.running")
            ]
            if any(cancelled_at.id < e.id for e in late):
                violation("after-cancel", f"task {key!r} queued or run after the cancellation")
        if not definition.initial:
            done = [
                p for p in definition.predecessors if _succeeded_before(first_success, p, start)
            ]
            needed = 1 if definition.join == "any" else len(definition.predecessors)
            if len(done) < needed:
                violation(
                    "join-early",
                    f"task {key!r} (join {definition.join}) queued at event {start.id} when only "
                    f"{done or 'none'} of {list(definition.predecessors)} had succeeded",
                )
        earlier = [k for stage in run.stages[: definition.stage] for k in stage]
        unfinished = [k for k in earlier if not _succeeded_before(first_success, k, start)]
        if unfinished:
            violation(
                "stage-order",
                f"task {key!r} of stage {definition.stage} queued at event {start.id} before "
                f"{unfinished} of earlier stages succeeded",
            )
    return found


def _succeeded_before(first_success: Mapping[str, Event], key: str, event: Event) -> bool:
    success = first_success.get(key)
    return success is not None and success.before(event)


def check_deliveries(
    deliveries: Iterable[tuple[str | None, str | None]], delivery_owner: Mapping[str, str]
) -> list[Violation]:
    """Each delivery id under exactly one `webhook-id`, itself, and owned by a task."""
    seen: dict[str | None, set[str | None]] = defaultdict(set)
    for delivery_id, webhook_id in deliveries:
        seen[delivery_id].add(webhook_id)
    found = []
    for delivery_id, webhook_ids in seen.items():
        order_id = delivery_owner.get(delivery_id) if delivery_id else None
        if webhook_ids != {delivery_id}:
            found.append(
                Violation(
                    "delivery-ids",
                    order_id,
                    f"delivery {delivery_id} came as {sorted(map(str, webhook_ids))}",
                )
            )
        if order_id is None:
            found.append(
                Violation("delivery-ids", None, f"delivery {delivery_id} belongs to no task")
            )
    return found


@dataclass(frozen=True)
class Snapshot:
    """How far a run got: orders per status, and tasks still holding or awaiting work."""

    orders: Mapping[str, int]
    live_tasks: int

    @property
    def unsettled(self) -> int:
        return sum(n for status, n in self.orders.items() if status not in FINAL)


def snapshot(engine: Engine) -> Snapshot:
    with engine.connect() as conn:
        by_status = sqlalchemy.select(t.orders.c.status, sqlalchemy.func.count()).group_by(
            t.orders.c.status
        )
        orders = {status: int(count) for status, count in conn.execute(by_status)}
        live = sqlalchemy.select(sqlalchemy.func.count()).where(
            t.tasks.c.status.in_(sorted(LIVE_TASKS))
        )
        return Snapshot(orders, int(conn.execute(live).scalar_one()))
