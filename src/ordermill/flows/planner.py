"""The planner (SPEC §3.3): from a flow and its order's task states, what starts next.

``plan`` is a pure reconcile function. It looks only at the current state, never at the event
that led there, so the engine may call it after any change, any number of times, and apply
the answer in the same transaction: the same state always gives the same plan.

Choices beyond the SPEC:

- While a task is TIMED_OUT the order is UNHEALTHY and the successors that need that task do
  not start, but other branches of the stage whose joins are satisfied still do.
- A CANCELLED task neither succeeds nor fails; it holds its stage back. It only occurs in
  cancelled orders.
- Tasks for keys the flow does not define are ignored.
- The failure stage (``flow.failure_stage``) never counts towards the order's status. While the
  order's status is one its ``on`` names, its runnable tasks that do not exist yet start, with
  the same joins as any stage; they are stored with stage index ``len(flow.stages)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ordermill.flows.model import FlowDefinition, Join, Stage
from ordermill.flows.status import OrderStatus, TaskStatus


@dataclass(frozen=True)
class TaskRef:
    """A task definition as the planner names it: where it sits and its key."""

    stage_index: int
    stage_key: str
    task_key: str


@dataclass(frozen=True)
class Plan:
    """What to do now, and how the order stands once it is done."""

    start: tuple[TaskRef, ...]  # tasks to create now (they do not exist yet), in definition order
    order_status: OrderStatus  # the order's status after applying ``start``
    stage_index: (
        int | None
    )  # the stage in progress after applying ``start``; None when all succeeded
    stage_started: str | None  # key of a stage whose first tasks are in ``start``
    failure_start: tuple[TaskRef, ...] = ()  # failure stage tasks to create now


def plan(
    flow: FlowDefinition,
    tasks: Mapping[str, TaskStatus],
    *,
    started: bool = True,
    cancelled: bool = False,
) -> Plan:
    """Decide which tasks to create now and what the order's status is.

    ``tasks`` maps each existing task's definition key to its status; a task runs at most once
    per order, so the key is its identity.
    """
    known = {d.key for stage in flow.stages for d in stage.task_definitions}
    statuses = {key: status for key, status in tasks.items() if key in known}
    current = _current_stage(flow, statuses)
    if cancelled:
        return Plan((), OrderStatus.CANCELLED, current, None)
    if not started:
        return Plan((), OrderStatus.CREATED, current, None)
    present = set(statuses.values())
    if TaskStatus.FAILED in present:
        return Plan((), OrderStatus.FAILURE, current, None, failure_start(flow, tasks, "FAILURE"))
    if current is None:
        return Plan((), OrderStatus.SUCCESS, None, None)
    stage = flow.stages[current]
    start = tuple(
        TaskRef(current, stage.key, key) for key in runnable(stage, statuses) if key not in statuses
    )
    fresh = start and not any(d.key in statuses for d in stage.task_definitions)
    status = OrderStatus.UNHEALTHY if TaskStatus.TIMED_OUT in present else OrderStatus.IN_PROGRESS
    failing = failure_start(flow, tasks, status.value)
    return Plan(start, status, current, stage.key if fresh else None, failing)


def failure_start(
    flow: FlowDefinition, tasks: Mapping[str, TaskStatus], status: str
) -> tuple[TaskRef, ...]:
    """The failure stage's runnable tasks that do not exist yet, while ``status`` triggers it."""
    failure = flow.failure_stage
    if failure is None or status not in {trigger.value for trigger in failure.on}:
        return ()
    index = len(flow.stages)
    return tuple(
        TaskRef(index, failure.stage.key, key)
        for key in runnable(failure.stage, tasks)
        if key not in tasks
    )


def failure_rerun(
    flow: FlowDefinition, tasks: Mapping[str, TaskStatus], succeeded: str
) -> tuple[str, ...]:
    """The ended failure stage tasks to run again now that ``succeeded`` (a failure stage task
    run again for a new failure) succeeded: successors whose join it satisfies once more."""
    failure = flow.failure_stage
    if failure is None or not flow.is_failure_task(succeeded):
        return ()
    stage = failure.stage
    again = []
    for key in stage.task_definition(succeeded).next:
        current = tasks.get(key)
        if current is None or current.is_active or current is TaskStatus.CANCELLED:
            continue
        before = stage.predecessors(key)
        done = [k for k in before if tasks.get(k) is TaskStatus.SUCCEEDED]
        definition = stage.task_definition(key)
        if (definition.join is Join.ALL and done == list(before)) or (
            definition.join is Join.ANY and done == [succeeded]
        ):
            again.append(key)
    return tuple(again)


def derive_order_status(
    flow: FlowDefinition,
    tasks: Mapping[str, TaskStatus],
    *,
    started: bool = True,
    cancelled: bool = False,
) -> OrderStatus:
    """The order's status once the plan for this state is applied."""
    return plan(flow, tasks, started=started, cancelled=cancelled).order_status


def runnable(stage: Stage, tasks: Mapping[str, TaskStatus]) -> list[str]:
    """The task definitions of ``stage`` that may run, in definition order, existing or not.

    Initial ones always may; the others once their join is satisfied: ``all`` when every
    predecessor succeeded, ``any`` when one did.
    """
    predecessors: dict[str, list[str]] = {d.key: [] for d in stage.task_definitions}
    for definition in stage.task_definitions:
        for target in definition.next:
            if target in predecessors:
                predecessors[target].append(definition.key)
    keys = []
    for definition in stage.task_definitions:
        before = predecessors[definition.key]
        succeeded = [key for key in before if tasks.get(key) == TaskStatus.SUCCEEDED]
        if (
            definition.key in stage.initial_task_keys
            or (definition.join == Join.ANY and succeeded)
            or (definition.join == Join.ALL and before and succeeded == before)
        ):
            keys.append(definition.key)
    return keys


def _current_stage(flow: FlowDefinition, tasks: Mapping[str, TaskStatus]) -> int | None:
    """The first stage whose task definitions have not all succeeded."""
    for index, stage in enumerate(flow.stages):
        if any(tasks.get(d.key) != TaskStatus.SUCCEEDED for d in stage.task_definitions):
            return index
    return None
