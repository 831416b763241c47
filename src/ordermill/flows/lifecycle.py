"""The lifecycle core: how one event moves an order and its tasks, decided in one place.

``decide`` takes an order's state (its status and the status of each task it has) and one
event, and answers either a ``Decision`` (the new state, the task changes, the timeline events
and the effects: tasks to queue, timers to set) or a ``Refusal`` that says why the event does not
apply. Storage applies a decision inside the transaction that holds the order's row lock; the
API answers a refusal with 409.

Every task change is checked against ``TASK_TRANSITIONS``, and what starts next comes from the
planner, so the same state and event always give the same answer.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from ordermill.errors import Conflict
from ordermill.flows.model import FlowDefinition, OnAmend
from ordermill.flows.planner import TaskRef, failure_rerun, plan, runnable
from ordermill.flows.status import OrderStatus, TaskStatus, can_transition

# --- state ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderState:
    """What the core decides on: the order's status and each existing task's status."""

    status: OrderStatus
    tasks: Mapping[str, TaskStatus] = field(default_factory=lambda: MappingProxyType({}))
    paused: bool = False  # a flag beside the status: nothing new starts while it is set

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", MappingProxyType(dict(self.tasks)))

    def task(self, key: str) -> TaskStatus | None:
        return self.tasks.get(key)


# --- events --------------------------------------------------------------------------------------


class Outcome(StrEnum):
    """How an attempt ended, as the engine classified it."""

    SUCCEEDED = "succeeded"
    WAITING = "waiting"  # the task now waits on feedback, a confirmation or a timer
    RETRYABLE = "retryable"  # another attempt later (PENDING again)
    PERMANENT = "permanent"  # failed for good
    TIMED_OUT = "timed_out"  # the retry budget ran out on timeouts
    LOST = "lost"  # the worker's lease expired; another worker takes the task over


_OUTCOME_STATUS = {
    Outcome.SUCCEEDED: TaskStatus.SUCCEEDED,
    Outcome.WAITING: TaskStatus.WAITING,
    Outcome.RETRYABLE: TaskStatus.PENDING,
    Outcome.PERMANENT: TaskStatus.FAILED,
    Outcome.TIMED_OUT: TaskStatus.TIMED_OUT,
    Outcome.LOST: TaskStatus.RUNNING,
}


# The outcome an attempt that ended in each status had (flows.work.Completion.status).
OUTCOME_OF_STATUS = {status: outcome for outcome, status in _OUTCOME_STATUS.items()}


class FeedbackKind(StrEnum):
    PROGRESS = "progress"
    SUCCESS = "success"
    FAILURE = "failure"


class Operator(StrEnum):
    START = "start"
    RETRY = "retry"
    CANCEL = "cancel"
    REDELIVER = "redeliver"
    PAUSE = "pause"
    RESUME = "resume"
    SKIP = "skip"  # a task marked succeeded by hand


@dataclass(frozen=True)
class Claimed:
    """A worker took a due task under a lease."""

    task_key: str


@dataclass(frozen=True)
class AttemptEnded:
    task_key: str
    outcome: Outcome


@dataclass(frozen=True)
class FeedbackReceived:
    """A connector's note on the task's updateUrl; ``held`` feedback came before the answer."""

    task_key: str
    kind: FeedbackKind
    held: bool = False  # already received while the task ran, applied now


@dataclass(frozen=True)
class TimerFired:
    task_key: str


@dataclass(frozen=True)
class WaitTimedOut:
    task_key: str


@dataclass(frozen=True)
class ConfirmationAnswered:
    task_key: str
    confirmed: bool


@dataclass(frozen=True)
class OperatorAction:
    action: Operator
    task_key: str | None = None  # the task, for a redelivery, a skip or a one-task retry
    reason: str | None = None


@dataclass(frozen=True)
class Restart:
    """Move the order onto ``to_version`` of its flow (the flow ``decide`` is given).

    Tasks that succeeded and whose key the new version still has keep their results, unless
    ``from_start``; every other task is archived under a new key (``key~n``) and the planner
    starts the new version's work from there.
    """

    from_version: int
    to_version: int
    from_start: bool = False
    reason: str | None = None
    previous: FlowDefinition | None = None  # the version the order ran on, when known


@dataclass(frozen=True)
class Amended:
    """The order's content changed to a new revision (a JSON Merge Patch of addresses, data
    and order lines); ``changed`` are the JSON pointers that changed, ``details`` (the diff,
    the actor's reason) go into the timeline entry."""

    revision: int
    changed: tuple[str, ...]
    details: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Replan:
    """Nothing happened to a task: bring the order up to date with its tasks (at intake, and
    when the reconcile pass finds an order with no live work)."""


Event = (
    Replan
    | Amended
    | Claimed
    | AttemptEnded
    | FeedbackReceived
    | TimerFired
    | WaitTimedOut
    | ConfirmationAnswered
    | OperatorAction
    | Restart
)

ARCHIVE_MARK = "~"  # never in a task key: an archived task's key is ``key~n``


# --- answers -------------------------------------------------------------------------------------


class Note(StrEnum):
    """What a decision means beyond its state change, for the caller's answer."""

    APPLIED = "applied"
    HELD = "held"  # final feedback before the attempt's answer: applied once it ends
    DUPLICATE = "duplicate"  # the same final feedback again: nothing changes
    RECORDED = "recorded"  # a progress note (a heartbeat while the task waits)


@dataclass(frozen=True)
class TaskChange:
    task_key: str
    old: TaskStatus
    new: TaskStatus


@dataclass(frozen=True)
class TimelineEvent:
    type: str
    task_key: str | None = None
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Decision:
    state: OrderState
    changes: tuple[TaskChange, ...] = ()
    events: tuple[TimelineEvent, ...] = ()
    start: tuple[TaskRef, ...] = ()  # tasks to queue (they do not exist yet)
    extend_wait: str | None = None  # a WAITING task whose heartbeat pushes its deadline on
    note: Note = Note.APPLIED
    archive: tuple[tuple[str, str], ...] = ()  # (key, archived key) on a restart

    @property
    def order_changed(self) -> bool:
        return any(e.type == "order.status" for e in self.events)


@dataclass(frozen=True)
class Refusal:
    """The event does not apply to this state; ``reason`` is said to the caller."""

    reason: str

    def error(self) -> Conflict:
        return Conflict(self.reason)


# --- deciding ------------------------------------------------------------------------------------

_ENDED_BY_PERSON = (TaskStatus.WAITING, TaskStatus.TIMED_OUT)
_FINAL = {FeedbackKind.SUCCESS: TaskStatus.SUCCEEDED, FeedbackKind.FAILURE: TaskStatus.FAILED}


def decide(flow: FlowDefinition, state: OrderState, event: Event) -> Decision | Refusal:
    """The one answer to ``event`` in ``state``: a decision to apply, or a refusal."""
    archived = getattr(event, "task_key", None)
    if archived is not None and ARCHIVE_MARK in archived:
        return Refusal(f"task {archived!r} was archived by a restart; it does not move again")
    if isinstance(event, OperatorAction):
        return _operator(flow, state, event)
    if isinstance(event, Restart):
        return _restart(flow, state, event)
    if isinstance(event, Amended):
        return _amend(flow, state, event)
    if isinstance(event, Replan):
        decision = _move(flow, state, {})
        if isinstance(decision, Decision) and not decision.events:
            return Refusal("the order is up to date with its tasks")
        return decision
    current = state.task(event.task_key)
    if current is None:
        return Refusal(f"the order has no task {event.task_key!r}")
    match event:
        case Claimed():
            if current is not TaskStatus.PENDING or state.status is OrderStatus.CANCELLED:
                return Refusal(f"task {event.task_key!r} is {current.value}, not PENDING")
            if state.paused:
                return Refusal("the order is paused; nothing new starts until it is resumed")
            return _move(flow, state, {event.task_key: TaskStatus.RUNNING}, plan_after=False)
        case AttemptEnded():
            if current is not TaskStatus.RUNNING:
                return Refusal(f"task {event.task_key!r} is {current.value}, not RUNNING")
            new = _OUTCOME_STATUS[event.outcome]
            return _move(flow, state, {event.task_key: new}, plan_after=new.is_ended)
        case FeedbackReceived():
            return _feedback(flow, state, event, current)
        case TimerFired() | WaitTimedOut():
            if current is not TaskStatus.WAITING:
                return Refusal(f"task {event.task_key!r} is {current.value}, not WAITING")
            if state.paused:
                return Refusal("the order is paused; its timers fire when it is resumed")
            new = TaskStatus.SUCCEEDED if isinstance(event, TimerFired) else TaskStatus.TIMED_OUT
            return _move(flow, state, {event.task_key: new})
        case ConfirmationAnswered():
            if state.status is OrderStatus.CANCELLED or current is TaskStatus.CANCELLED:
                return Refusal("the order was cancelled; the confirmation no longer takes answers")
            if current not in _ENDED_BY_PERSON:
                return Refusal(f"task {event.task_key!r} is {current.value}; it takes no answer")
            new = TaskStatus.SUCCEEDED if event.confirmed else TaskStatus.FAILED
            return _move(flow, state, {event.task_key: new})
    raise TypeError(f"not a lifecycle event: {event!r}")  # pragma: no cover


def _feedback(
    flow: FlowDefinition, state: OrderState, event: FeedbackReceived, current: TaskStatus
) -> Decision | Refusal:
    cancelled = state.status is OrderStatus.CANCELLED or current is TaskStatus.CANCELLED
    if event.kind is FeedbackKind.PROGRESS:
        if current.is_ended or state.status is OrderStatus.CANCELLED:
            return Refusal(f"the task already ended as {current.value}; progress is not accepted")
        extend = event.task_key if current is TaskStatus.WAITING else None
        return Decision(state, extend_wait=extend, note=Note.RECORDED)
    final = _FINAL[event.kind]
    if cancelled:
        return Refusal("the order was cancelled; feedback is no longer accepted")
    if current is final:
        return Decision(state, note=Note.DUPLICATE)
    if current in (TaskStatus.SUCCEEDED, TaskStatus.FAILED):
        return Refusal(f"the task already ended as {current.value}")
    if current is TaskStatus.RUNNING and not event.held:
        return Decision(state, note=Note.HELD)
    return _move(flow, state, {event.task_key: final})


def _operator(flow: FlowDefinition, state: OrderState, event: OperatorAction) -> Decision | Refusal:
    status = state.status
    match event.action:
        case Operator.START:
            if status is not OrderStatus.CREATED:
                return Refusal(f"only CREATED orders can be started; this one is {status.value}")
            started = OrderState(OrderStatus.IN_PROGRESS, state.tasks, state.paused)
            decision = _move(flow, started, {}, opening=(TimelineEvent("order.started"),))
            if isinstance(decision, Decision):
                moved = TimelineEvent(
                    "order.status", data=_from_to(status, OrderStatus.IN_PROGRESS)
                )
                return _with_events(decision, (moved,), first=True)
            return decision
        case Operator.RETRY:
            if status in (OrderStatus.SUCCESS, OrderStatus.CANCELLED, OrderStatus.CREATED):
                return Refusal(f"a {status.value} order cannot be retried")
            failed = sorted(
                key
                for key, task in state.tasks.items()
                if task in (TaskStatus.FAILED, TaskStatus.TIMED_OUT)
                and not flow.is_failure_task(key)
                and ARCHIVE_MARK not in key
            )
            if event.task_key is not None:
                # One task only: the others stay as they are (and keep the order failed).
                if event.task_key not in failed:
                    return Refusal(f"task {event.task_key!r} has not failed or timed out")
                failed = [event.task_key]
            if not failed:
                return Refusal("the order has no failed or timed-out task to retry")
            opening = (TimelineEvent("order.retried", data={"tasks": failed}),)
            return _move(flow, state, dict.fromkeys(failed, TaskStatus.PENDING), opening=opening)
        case Operator.REDELIVER:
            key = event.task_key or ""
            current = state.task(key)
            if current is None:
                return Refusal(f"the order has no task {key!r}")
            if status is OrderStatus.CANCELLED:
                return Refusal("a CANCELLED order cannot be redelivered")
            if current.is_active or current is TaskStatus.CANCELLED:
                return Refusal(f"task {key!r} has not ended; only ended tasks are redelivered")
            opening = (TimelineEvent("task.redelivery_requested", task_key=key),)
            return _move(flow, state, {key: TaskStatus.PENDING}, opening=opening)
        case Operator.CANCEL:
            if status in (OrderStatus.SUCCESS, OrderStatus.CANCELLED):
                return Refusal(f"a {status.value} order cannot be cancelled")
            active = {key: TaskStatus.CANCELLED for key, s in state.tasks.items() if s.is_active}
            opening = (TimelineEvent("order.cancelled", data=_reason(event.reason)),)
            decision = _move(flow, state, active, cancel=True, plan_after=True, opening=opening)
            return _unpaused(decision) if isinstance(decision, Decision) else decision
        case Operator.PAUSE:
            if status.is_final:
                return Refusal(f"a {status.value} order cannot be paused")
            if state.paused:
                return Refusal("the order is already paused")
            paused = OrderState(status, state.tasks, paused=True)
            return Decision(
                paused, events=(TimelineEvent("order.paused", data=_reason(event.reason)),)
            )
        case Operator.RESUME:
            if not state.paused:
                return Refusal("the order is not paused")
            resumed = OrderState(status, state.tasks, paused=False)
            return Decision(
                resumed, events=(TimelineEvent("order.resumed", data=_reason(event.reason)),)
            )
        case Operator.SKIP:
            return _skip(flow, state, event)
    raise TypeError(f"not an operator action: {event!r}")  # pragma: no cover


_SKIPPABLE = (TaskStatus.FAILED, TaskStatus.WAITING, TaskStatus.TIMED_OUT)


def _skip(flow: FlowDefinition, state: OrderState, event: OperatorAction) -> Decision | Refusal:
    key = event.task_key or ""
    current = state.task(key)
    if current is None:
        return Refusal(f"the order has no task {key!r}")
    if state.status.is_final:
        return Refusal(f"a task of a {state.status.value} order cannot be skipped")
    if current not in _SKIPPABLE:
        return Refusal(
            f"task {key!r} is {current.value}; only FAILED, WAITING or TIMED_OUT tasks are skipped"
        )
    opening = (TimelineEvent("task.skipped", task_key=key, data=_reason(event.reason)),)
    return _move(flow, state, {key: TaskStatus.SUCCEEDED}, opening=opening)


_RESTARTABLE = (OrderStatus.FAILURE, OrderStatus.UNHEALTHY, OrderStatus.CANCELLED)


def _restart(flow: FlowDefinition, state: OrderState, event: Restart) -> Decision | Refusal:
    if state.status not in _RESTARTABLE:
        return Refusal(
            f"a {state.status.value} order cannot be restarted; "
            "only FAILURE, UNHEALTHY or CANCELLED ones"
        )
    known = {
        d.key: index for index, stage in enumerate(flow.stages) for d in stage.task_definitions
    }
    keep = (
        {}
        if event.from_start
        else {
            key: status
            for key, status in state.tasks.items()
            if status is TaskStatus.SUCCEEDED and key in known
        }
    )
    refusal = _unheld(flow, keep, known, event)
    if refusal is not None:
        return refusal
    changes: list[TaskChange] = []
    archive: list[tuple[str, str]] = []
    tasks: dict[str, TaskStatus] = dict(keep)
    taken = set(state.tasks)
    for key, status in sorted(state.tasks.items()):
        if key in keep:
            continue
        if ARCHIVE_MARK in key:
            tasks[key] = status
            continue
        if status.is_active:
            changes.append(TaskChange(key, status, TaskStatus.CANCELLED))
            status = TaskStatus.CANCELLED
        archived = next(
            name for n in itertools.count(1) if (name := f"{key}{ARCHIVE_MARK}{n}") not in taken
        )
        taken.add(archived)
        archive.append((key, archived))
        tasks[archived] = status
    data: dict[str, Any] = {
        "fromVersion": event.from_version,
        "toVersion": event.to_version,
        "from": "start" if event.from_start else "failed",
        "kept": sorted(keep),
    }
    if event.reason:
        data["reason"] = event.reason
    opening = (TimelineEvent("order.restarted", data=data),)
    moved = _move(
        flow, OrderState(OrderStatus.IN_PROGRESS, tasks, state.paused), {}, opening=opening
    )
    if isinstance(moved, Refusal):  # pragma: no cover - the planner refuses nothing here
        return moved
    events = tuple(e for e in moved.events if e.type != "order.status")
    if moved.state.status is not state.status:
        events += (TimelineEvent("order.status", data=_from_to(state.status, moved.state.status)),)
    return Decision(moved.state, tuple(changes), events, moved.start, archive=tuple(archive))


def _unheld(
    flow: FlowDefinition, keep: Mapping[str, TaskStatus], known: Mapping[str, int], event: Restart
) -> Refusal | None:
    """Why the new version cannot hold the tasks kept: one is another kind of task there, or
    it would have succeeded before predecessors that run again; None when it can."""
    version = event.to_version
    current = plan(flow, keep).stage_index
    for key in sorted(keep):
        index = known[key]
        if event.previous is not None:
            before = event.previous
            old_stage = before.stages[before.stage_index_of(key)]
            old, new = old_stage.task_definition(key), flow.task_definition(key)
            if (old.handler_key, old_stage.key) != (new.handler_key, flow.stages[index].key):
                return Refusal(
                    f"version {version} cannot hold the order's history: task {key!r} "
                    "succeeded as another kind of task or in another stage there; "
                    'restart with "from": "start"'
                )
        if current is not None and (
            index > current or key not in runnable(flow.stages[index], keep)
        ):
            return Refusal(
                f"version {version} cannot hold the order's history: task {key!r} succeeded, "
                "but in that version it comes after tasks that have not; "
                'restart with "from": "start"'
            )
    return None


def _reason(reason: str | None) -> dict[str, Any] | None:
    return {"reason": reason} if reason else None


def _unpaused(decision: Decision) -> Decision:
    state = decision.state
    return replace(decision, state=OrderState(state.status, state.tasks, paused=False))


def _amend(flow: FlowDefinition, state: OrderState, event: Amended) -> Decision | Refusal:
    """A new revision of the order's content. Tasks not started yet will send it anyway; a
    succeeded task whose definition says ``onAmend: resend`` is delivered again."""
    if state.status.is_final:
        return Refusal(f"a {state.status.value} order cannot be amended")
    resend = sorted(
        key
        for key, task in state.tasks.items()
        if task is TaskStatus.SUCCEEDED
        and not flow.is_failure_task(key)
        and _definition_resends(flow, key)
    )
    data = {
        **event.details,
        "revision": event.revision,
        "changed": list(event.changed),
        "resend": resend,
    }
    opening = (TimelineEvent("order.amended", data=data),)
    return _move(flow, state, dict.fromkeys(resend, TaskStatus.PENDING), opening=opening)


def _definition_resends(flow: FlowDefinition, key: str) -> bool:
    try:
        return flow.task_definition(key).on_amend is OnAmend.RESEND
    except KeyError:
        return False


def _move(
    flow: FlowDefinition,
    state: OrderState,
    updates: Mapping[str, TaskStatus],
    *,
    plan_after: bool = True,
    cancel: bool = False,
    opening: tuple[TimelineEvent, ...] = (),
) -> Decision | Refusal:
    """Apply task changes (checked against the transition table), then ask the planner."""
    changes = []
    for key, new in updates.items():
        old = state.tasks[key]
        if not can_transition(old, new):
            return Refusal(f"task {key!r} cannot move from {old.value} to {new.value}")
        changes.append(TaskChange(key, old, new))
    tasks = {**state.tasks, **updates}
    status = OrderStatus.CANCELLED if cancel else state.status
    events = list(opening)
    start: tuple[TaskRef, ...] = ()
    if plan_after:
        decision = plan(
            flow,
            tasks,
            started=status is not OrderStatus.CREATED,
            cancelled=status is OrderStatus.CANCELLED,
        )
        if decision.stage_started is not None:
            events.append(TimelineEvent("stage.started", data={"stage": decision.stage_started}))
        status = decision.order_status
        again = _failure_again(flow, state, tasks, updates, status)
        for key in again:
            changes.append(TaskChange(key, tasks[key], TaskStatus.PENDING))
            tasks[key] = TaskStatus.PENDING
        if decision.failure_start or again:
            fresh = not any(flow.is_failure_task(key) for key in state.tasks)
            events.append(_failure_started(flow, state, updates, status, fresh))
        start = decision.start + decision.failure_start
        events += [TimelineEvent("task.queued", task_key=ref.task_key) for ref in start]
        events += [TimelineEvent("task.queued", task_key=key) for key in again]
        tasks.update({ref.task_key: TaskStatus.PENDING for ref in start})
    if status is not state.status:
        events.append(TimelineEvent("order.status", data=_from_to(state.status, status)))
    return Decision(OrderState(status, tasks, state.paused), tuple(changes), tuple(events), start)


def _failure_again(
    flow: FlowDefinition,
    state: OrderState,
    tasks: Mapping[str, TaskStatus],
    updates: Mapping[str, TaskStatus],
    status: OrderStatus,
) -> tuple[str, ...]:
    """Failure stage tasks that run once more: its ended initial tasks when the order turns
    to a status that triggers the stage again, and the successors of a rerun that succeeded."""
    failure = flow.failure_stage
    if failure is None:
        return ()
    again: list[str] = []
    triggers = {trigger.value for trigger in failure.on}
    if status.value in triggers and state.status.value not in triggers:
        again += [
            key
            for key in failure.stage.initial_task_keys
            if (current := tasks.get(key)) is not None
            and current.is_ended
            and current is not TaskStatus.CANCELLED
        ]
    for key, new in updates.items():
        if new is TaskStatus.SUCCEEDED:
            again += [k for k in failure_rerun(flow, tasks, key) if k not in again]
    return tuple(again)


def _failure_started(
    flow: FlowDefinition,
    state: OrderState,
    updates: Mapping[str, TaskStatus],
    status: OrderStatus,
    fresh: bool,
) -> TimelineEvent:
    """The timeline entry of a failure stage (re)start, naming the trigger its tasks send."""
    assert flow.failure_stage is not None
    cause = TaskStatus.FAILED if status is OrderStatus.FAILURE else TaskStatus.TIMED_OUT
    moved = [k for k, new in updates.items() if new is cause and not flow.is_failure_task(k)]
    held = sorted(
        k for k, task in state.tasks.items() if task is cause and not flow.is_failure_task(k)
    )
    culprit = (moved or held)[0] if moved or held else None
    trigger: dict[str, Any] = {
        "event": "order.failed" if status is OrderStatus.FAILURE else "order.unhealthy",
        "taskKey": culprit,
    }
    data = {"stage": flow.failure_stage.stage.key, "failureStage": True, "trigger": trigger}
    return TimelineEvent("stage.started" if fresh else "stage.restarted", data=data)


def _from_to(old: OrderStatus, new: OrderStatus) -> dict[str, str]:
    return {"from": old.value, "to": new.value}


def _with_events(decision: Decision, events: tuple[TimelineEvent, ...], *, first: bool) -> Decision:
    ordered = events + decision.events if first else decision.events + events
    return replace(decision, events=ordered)


def apply(flow: FlowDefinition, state: OrderState, event: Event) -> OrderState:
    """The state after ``event``; a refusal leaves it as it was (for simulations and tests)."""
    decision = decide(flow, state, event)
    return decision.state if isinstance(decision, Decision) else state
