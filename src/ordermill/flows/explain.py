"""What an order waits for, in words and as data (``GET /api/orders/{id}/explain``).

``explain`` is pure: it reads an order's facts (its status, the pause flag, each task's status
and times) and the flow, and answers per unfinished task what it waits for, then for the order
the critical path to its end, the earliest possible finish and how that stands against the
order lines' earliest deadline. Which task may start next comes from the planner, the same as
the lifecycle core decides it.

The earliest finish is a lower bound: a timer or a scheduled retry takes at least until it is
due, a wait that has not started takes its duration, and an answer from outside (feedback, a
confirmation) may come at any moment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ordermill.flows.lifecycle import ARCHIVE_MARK
from ordermill.flows.model import FlowDefinition, Join, Stage
from ordermill.flows.order import parse_instant
from ordermill.flows.planner import plan
from ordermill.flows.status import OrderStatus, TaskStatus


class Waits(StrEnum):
    """What an unfinished task waits for."""

    PREDECESSORS = "predecessors"  # tasks before it in its stage, or an earlier stage
    WORKER = "worker"  # due: the next free worker takes it
    RETRY = "retry"  # a retry at ``until`` after an error
    LEASE = "lease"  # a worker runs it now
    FEEDBACK = "feedback"  # a connector's feedback on its updateUrl
    CONFIRMATION = "confirmation"  # a person's answer
    TIMER = "timer"  # a wait that ends at ``until``
    PAUSED = "paused"  # the order is paused
    OPERATOR = "operator"  # failed or timed out: a retry, a skip or a restart
    START = "start"  # the order was not started


@dataclass(frozen=True)
class TaskFacts:
    key: str
    status: TaskStatus
    since: datetime  # when it last changed
    due_at: datetime | None = None  # PENDING: may run then; WAITING: ends then
    held_due_at: datetime | None = None  # due_at kept aside while the order is paused
    wake: str | None = None  # "fire" for a timer
    error: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    asks_question: bool = False
    assignees: tuple[str, ...] = ()
    last_progress: str | None = None  # the last progress message on its updateUrl
    last_progress_at: datetime | None = None


@dataclass(frozen=True)
class Pause:
    at: datetime
    by: str | None
    reason: str | None


@dataclass(frozen=True)
class OrderFacts:
    status: OrderStatus
    tasks: Sequence[TaskFacts]
    body: Mapping[str, Any] = field(default_factory=dict)
    pause: Pause | None = None


@dataclass(frozen=True)
class TaskWait:
    task_key: str
    status: str  # the task's status, or NOT_STARTED
    waits: Waits
    words: str
    since: datetime | None = None
    until: datetime | None = None
    on: tuple[str, ...] = ()  # the predecessors it waits on
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Explanation:
    sentence: str
    tasks: tuple[TaskWait, ...]
    critical_path: tuple[str, ...]
    earliest_finish: datetime | None  # None: the order ended, or waits on an operator
    deadline: datetime | None
    deadline_line: int | None  # 1-based index of the order line whose deadline is earliest
    late_by: timedelta | None  # how much the earliest finish misses the deadline


_TIMER = "fire"


def explain(flow: FlowDefinition, facts: OrderFacts, now: datetime) -> Explanation:
    """What ``facts`` (an order on ``flow``) waits for at ``now``."""
    deadline, line = _earliest_line_deadline(facts.body)
    if facts.status in (OrderStatus.SUCCESS, OrderStatus.CANCELLED):
        sentence = f"The order ended as {facts.status.value}; it waits for nothing."
        return Explanation(sentence, (), (), None, deadline, line, None)
    by_key = {task.key: task for task in facts.tasks}
    # A task a restart archived (``key~n``) is history: nothing can retry or answer it.
    live = [task for task in facts.tasks if ARCHIVE_MARK not in task.key]
    waits = [_task_wait(task, facts, now) for task in live if _unfinished(task.status)]
    waits += _not_started(flow, facts, by_key)
    path, finish = _critical_path(flow, facts, by_key, now)
    stuck = facts.status in (OrderStatus.FAILURE, OrderStatus.CREATED)
    earliest = None if stuck else finish
    late = earliest - deadline if earliest and deadline and earliest > deadline else None
    sentence = _sentence(waits, facts, now, deadline, line, earliest, late)
    return Explanation(sentence, tuple(waits), path, earliest, deadline, line, late)


def _unfinished(status: TaskStatus) -> bool:
    return status.is_active or status in (TaskStatus.FAILED, TaskStatus.TIMED_OUT)


def _task_wait(task: TaskFacts, facts: OrderFacts, now: datetime) -> TaskWait:
    key, status = task.key, task.status.value
    pause = facts.pause
    if facts.status is OrderStatus.CREATED:
        return TaskWait(key, status, Waits.START, "the order was not started")
    match task.status:
        case TaskStatus.FAILED | TaskStatus.TIMED_OUT:
            what = "failed" if task.status is TaskStatus.FAILED else "timed out"
            error = f" ({task.error})" if task.error else ""
            words = f"{what}{error}; waits for an operator to retry, skip or restart it"
            if task.status is TaskStatus.TIMED_OUT:
                words += ", or for a late answer"
            failed: dict[str, Any] = {"error": task.error} if task.error else {}
            return TaskWait(key, status, Waits.OPERATOR, words, task.since, detail=failed)
        case TaskStatus.PENDING if pause is not None:
            return _paused(task, pause)
        case TaskStatus.PENDING if task.due_at is not None and task.due_at > now:
            error = f" after {task.error}" if task.error else ""
            words = f"a retry at {_at(task.due_at)} (in {duration(task.due_at - now)}){error}"
            retried: dict[str, Any] = {"error": task.error} if task.error else {}
            return TaskWait(
                key, status, Waits.RETRY, words, task.since, task.due_at, detail=retried
            )
        case TaskStatus.PENDING:
            ready = task.due_at or task.since
            words = f"a free worker; due since {_at(ready)}"
            return TaskWait(key, status, Waits.WORKER, words, ready)
        case TaskStatus.RUNNING:
            owner = task.lease_owner or "a worker"
            words = f"worker {owner}, which has run it since {_at(task.since)}"
            lease: dict[str, Any] = {
                "worker": task.lease_owner,
                "leaseExpiresAt": task.lease_expires_at,
            }
            return TaskWait(
                key, status, Waits.LEASE, words, task.since, task.lease_expires_at, detail=lease
            )
    # WAITING
    due: datetime | None = task.due_at if pause is None else task.held_due_at
    if task.wake == _TIMER:
        if pause is not None:
            return _paused(task, pause, timer=due)
        left = f" (in {duration(due - now)})" if due else ""
        words = f"a timer due at {_at(due)}{left}" if due else "a timer"
        return TaskWait(key, status, Waits.TIMER, words, task.since, due)
    timeout = f"; it times out at {_at(due)}" if due else ""
    if task.asks_question:
        to = f", sent to {', '.join(task.assignees)}" if task.assignees else ""
        words = f"a confirmation pending since {_at(task.since)}{to}{timeout}"
        asked: dict[str, Any] = {"assignees": list(task.assignees)}
        return TaskWait(key, status, Waits.CONFIRMATION, words, task.since, due, detail=asked)
    progress = ""
    detail: dict[str, Any] = {}
    if task.last_progress is not None:
        progress = f"; last progress: “{task.last_progress}”"
        detail = {"lastProgress": task.last_progress, "lastProgressAt": task.last_progress_at}
    words = f"the connector's feedback since {_at(task.since)}{progress}{timeout}"
    return TaskWait(key, status, Waits.FEEDBACK, words, task.since, due, detail=detail)


def _paused(task: TaskFacts, pause: Pause, timer: datetime | None = None) -> TaskWait:
    why = f": {pause.reason}" if pause.reason else ""
    by = f" by {pause.by}" if pause.by else ""
    words = f"the order to be resumed (paused{by} since {_at(pause.at)}{why})"
    if timer is not None:
        words += f"; its timer, due at {_at(timer)}, fires then"
    detail: dict[str, Any] = {"by": pause.by, "reason": pause.reason, "pausedAt": pause.at}
    return TaskWait(
        task.key, task.status.value, Waits.PAUSED, words, pause.at, timer, detail=detail
    )


def _not_started(
    flow: FlowDefinition, facts: OrderFacts, by_key: Mapping[str, TaskFacts]
) -> list[TaskWait]:
    """Tasks of the flow that do not exist yet: what they wait on, as the planner sees it."""
    statuses = {key: task.status for key, task in by_key.items()}
    current = plan(flow, statuses).stage_index
    waits = []
    for index, stage in enumerate(flow.stages):
        for definition in stage.task_definitions:
            if definition.key in by_key:
                continue
            if current is not None and index > current:
                before = tuple(
                    d.key
                    for s in flow.stages[:index]
                    for d in s.task_definitions
                    if statuses.get(d.key) is not TaskStatus.SUCCEEDED
                )
                words = f"stage {flow.stages[index - 1].key!r} to finish"
            else:
                before = tuple(
                    key
                    for key in stage.predecessors(definition.key)
                    if statuses.get(key) is not TaskStatus.SUCCEEDED
                )
                join = "any of" if definition.join is Join.ANY else "all of"
                words = f"{join} {', '.join(before)} to succeed" if before else "its turn"
            waits.append(
                TaskWait(definition.key, "NOT_STARTED", Waits.PREDECESSORS, words, on=before)
            )
    return waits


def _critical_path(
    flow: FlowDefinition,
    facts: OrderFacts,
    by_key: Mapping[str, TaskFacts],
    now: datetime,
) -> tuple[tuple[str, ...], datetime | None]:
    """The longest chain of least remaining times to the order's end, and when it ends."""
    statuses = {key: task.status for key, task in by_key.items()}
    current = plan(flow, statuses).stage_index
    if current is None:
        return (), None
    start = now
    path: list[str] = []
    for stage in flow.stages[current:]:
        ends = _stage_ends(flow, stage, start, statuses, by_key, now)
        finals = [ends[d.key] for d in stage.task_definitions if not d.next] or list(ends.values())
        start, chain = max(finals, key=lambda end: (end[0], len(end[1])))
        path += chain
    return tuple(path), start


def _stage_ends(
    flow: FlowDefinition,
    stage: Stage,
    start: datetime,
    statuses: Mapping[str, TaskStatus],
    by_key: Mapping[str, TaskFacts],
    now: datetime,
) -> dict[str, tuple[datetime, list[str]]]:
    """Per task of ``stage``: when it ends at the earliest, and the unfinished chain to it."""
    ends: dict[str, tuple[datetime, list[str]]] = {}

    def end_of(key: str, seen: frozenset[str]) -> tuple[datetime, list[str]]:
        if key in ends:
            return ends[key]
        definition = stage.task_definition(key)
        before = [end_of(k, seen | {key}) for k in stage.predecessors(key) if k not in seen]
        chain: list[str] = []
        at = start
        if before and key not in stage.initial_task_keys:
            pick = min if definition.join is Join.ANY else max
            at, chain = pick(before, key=lambda end: end[0])
        end = at + _least_time(flow, key, by_key.get(key), now)
        if statuses.get(key) is not TaskStatus.SUCCEEDED:
            chain = [*chain, key]
        ends[key] = (end, chain)
        return ends[key]

    for definition in stage.task_definitions:
        end_of(definition.key, frozenset())
    return ends


def _least_time(flow: FlowDefinition, key: str, task: TaskFacts | None, now: datetime) -> timedelta:
    zero = timedelta(0)
    if task is None:
        definition = flow.task_definition(key)
        ms = definition.payload.get("durationMs") if definition.handler_key == "wait" else None
        return timedelta(milliseconds=ms) if isinstance(ms, int) else zero
    if task.status is TaskStatus.SUCCEEDED:
        return zero
    due = task.due_at or task.held_due_at
    timed = task.status is TaskStatus.PENDING or task.wake == _TIMER
    if timed and due is not None and due > now:
        return due - now
    return zero


def _earliest_line_deadline(body: Mapping[str, Any]) -> tuple[datetime | None, int | None]:
    found: tuple[datetime | None, int | None] = (None, None)
    for number, line in enumerate(body.get("orderLines") or (), start=1):
        if isinstance(line, Mapping) and isinstance(line.get("deadline"), str):
            when = parse_instant(line["deadline"])
            if found[0] is None or when < found[0]:
                found = (when, number)
    return found


def _sentence(
    waits: Sequence[TaskWait],
    facts: OrderFacts,
    now: datetime,
    deadline: datetime | None,
    line: int | None,
    earliest: datetime | None,
    late: timedelta | None,
) -> str:
    order = {
        Waits.PAUSED: 0,
        Waits.OPERATOR: 1,
        Waits.START: 2,
        Waits.FEEDBACK: 3,
        Waits.CONFIRMATION: 3,
        Waits.TIMER: 4,
        Waits.RETRY: 4,
        Waits.LEASE: 5,
        Waits.WORKER: 6,
        Waits.PREDECESSORS: 7,
    }
    started = [wait for wait in waits if wait.status != "NOT_STARTED"] or list(waits)
    if facts.pause is not None:
        why = f" ({facts.pause.reason})" if facts.pause.reason else ""
        head = f"Paused for {duration(now - facts.pause.at)}{why}"
    elif not started:
        head = f"The order is {facts.status.value} and waits for nothing"
    else:
        first = min(started, key=lambda wait: (order[wait.waits], wait.since or now))
        head = _head(first, facts, now)
    return head + _deadline_words(now, deadline, line, earliest, late) + "."


def _head(wait: TaskWait, facts: OrderFacts, now: datetime) -> str:
    if wait.waits is Waits.START:
        return "Waiting to be started"
    if wait.waits is Waits.OPERATOR:
        return f"Waiting for an operator: {wait.task_key} {wait.words.split(';')[0]}"
    waited = f" {duration(now - wait.since)}" if wait.since else ""
    what = {
        Waits.FEEDBACK: "for the connector's feedback",
        Waits.CONFIRMATION: "for a confirmation",
        Waits.TIMER: "for a timer",
        Waits.RETRY: "for a retry",
        Waits.LEASE: "for a worker to finish",
        Waits.WORKER: "for a free worker",
        Waits.PREDECESSORS: "for earlier tasks",
    }[wait.waits]
    return f"Waiting{waited} {what} on {wait.task_key}"


def _deadline_words(
    now: datetime,
    deadline: datetime | None,
    line: int | None,
    earliest: datetime | None,
    late: timedelta | None,
) -> str:
    if deadline is None:
        return ""
    which = f"the deadline of line {line}"
    if deadline <= now:
        return f"; {which} passed {duration(now - deadline)} ago"
    words = f"; {which} is in {duration(deadline - now)}"
    if late is not None:
        words += f", which the order misses by at least {duration(late)}"
    return words


def duration(span: timedelta) -> str:
    """A span in at most two units: 2 d 3 h, 4 h 10 min, 12 s."""
    seconds = max(0, int(span.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    shown = [f"{n} {unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0 s"


def _at(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else "an unknown time"
