"""Rebuilding a flow definition from its stored wire JSON (already validated when saved)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ordermill.flows.model import (
    FailureStage,
    FailureTrigger,
    FlowDefinition,
    Join,
    OnAmend,
    RetryPolicy,
    Stage,
    TaskDefinition,
)


def _retry(wire: Mapping[str, Any] | None) -> RetryPolicy | None:
    if wire is None:
        return None
    return RetryPolicy(
        max_attempts=int(wire["maxAttempts"]),
        initial_interval_ms=int(wire.get("initialIntervalMs", 1000)),
        backoff_coefficient=float(wire.get("backoffCoefficient", 2.0)),
        max_interval_ms=int(wire.get("maxIntervalMs", 300_000)),
    )


def _stage(stage: Mapping[str, Any]) -> Stage:
    return Stage(
        key=stage["key"],
        initial_task_keys=tuple(stage["initialTaskDefinitionKeys"]),
        task_definitions=tuple(
            TaskDefinition(
                key=task["key"],
                handler_key=task["handlerKey"],
                payload=dict(task.get("payload") or {}),
                timeout_ms=task.get("timeoutDuration"),
                next=tuple(task.get("next") or ()),
                retry=_retry(task.get("retry")),
                join=Join(task.get("join", "all")),
                description=task.get("description"),
                on_amend=OnAmend(task.get("onAmend") or "ignore"),
            )
            for task in stage["taskDefinitions"]
        ),
    )


def _failure_stage(wire: Mapping[str, Any] | None) -> FailureStage | None:
    if wire is None:
        return None
    on = frozenset(FailureTrigger(value) for value in wire.get("on") or ["FAILURE"])
    return FailureStage(_stage(wire), on)


def flow_from_wire(wire: Mapping[str, Any]) -> FlowDefinition:
    """The definition stored by ``FlowDefinition.to_wire()``; trusts its input."""
    return FlowDefinition(
        key=wire["key"],
        name=wire["name"],
        space_key=wire.get("spaceKey"),
        stages=tuple(_stage(stage) for stage in wire["stages"]),
        failure_stage=_failure_stage(wire.get("failureStage")),
    )
