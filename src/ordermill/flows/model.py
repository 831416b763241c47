"""Flow definitions as frozen values: a flow, its stages, their task definitions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Join(StrEnum):
    ALL = "all"  # start once every predecessor in the stage has succeeded
    ANY = "any"  # start once one predecessor has succeeded


class OnAmend(StrEnum):
    IGNORE = "ignore"  # an amendment leaves a succeeded task as it is
    RESEND = "resend"  # a succeeded task is delivered again with the amended order


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how far apart a task's attempts are made (SPEC §3.4)."""

    max_attempts: int
    initial_interval_ms: int = 1000
    backoff_coefficient: float = 2.0
    max_interval_ms: int = 300_000

    def to_wire(self) -> dict[str, Any]:
        return {
            "maxAttempts": self.max_attempts,
            "initialIntervalMs": self.initial_interval_ms,
            "backoffCoefficient": self.backoff_coefficient,
            "maxIntervalMs": self.max_interval_ms,
        }


@dataclass(frozen=True)
class TaskDefinition:
    key: str
    handler_key: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    timeout_ms: int | None = None  # None: the handler's default applies
    next: tuple[str, ...] = ()
    retry: RetryPolicy | None = None  # None: the handler's default applies
    join: Join = Join.ALL
    description: str | None = None
    on_amend: OnAmend = OnAmend.IGNORE

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "key": self.key,
            "handlerKey": self.handler_key,
            "payload": dict(self.payload),
        }
        if self.timeout_ms is not None:
            wire["timeoutDuration"] = self.timeout_ms
        wire["next"] = list(self.next)
        if self.retry is not None:
            wire["retry"] = self.retry.to_wire()
        if self.join is not Join.ALL:
            wire["join"] = self.join.value
        if self.description is not None:
            wire["description"] = self.description
        if self.on_amend is not OnAmend.IGNORE:
            wire["onAmend"] = self.on_amend.value
        return wire


@dataclass(frozen=True)
class Stage:
    key: str
    initial_task_keys: tuple[str, ...]
    task_definitions: tuple[TaskDefinition, ...]

    def task_definition(self, key: str) -> TaskDefinition:
        for definition in self.task_definitions:
            if definition.key == key:
                return definition
        raise KeyError(key)

    def predecessors(self, key: str) -> tuple[str, ...]:
        """The task definitions of this stage that list ``key`` in their ``next``."""
        return tuple(d.key for d in self.task_definitions if key in d.next)

    def to_wire(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "initialTaskDefinitionKeys": list(self.initial_task_keys),
            "taskDefinitions": [d.to_wire() for d in self.task_definitions],
        }


class FailureTrigger(StrEnum):
    """An order status that starts the failure stage when the order turns to it."""

    FAILURE = "FAILURE"
    UNHEALTHY = "UNHEALTHY"


@dataclass(frozen=True)
class FailureStage:
    """The stage that runs when the order turns FAILURE (or UNHEALTHY, when ``on`` says so).

    It never changes the order's status: its tasks are delivered, retried and logged like any
    stage's, but the planner derives the order's status from the ordinary stages only.
    """

    stage: Stage
    on: frozenset[FailureTrigger] = frozenset({FailureTrigger.FAILURE})

    def to_wire(self) -> dict[str, Any]:
        wire = self.stage.to_wire()
        if self.on != {FailureTrigger.FAILURE}:
            wire["on"] = [trigger.value for trigger in FailureTrigger if trigger in self.on]
        return wire


@dataclass(frozen=True)
class FlowDefinition:
    key: str
    name: str
    stages: tuple[Stage, ...]
    space_key: str | None = None
    failure_stage: FailureStage | None = None

    @property
    def all_stages(self) -> tuple[Stage, ...]:
        """The ordinary stages, then the failure stage (its index is ``len(stages)``)."""
        if self.failure_stage is None:
            return self.stages
        return (*self.stages, self.failure_stage.stage)

    @property
    def failure_index(self) -> int | None:
        """The stage index the failure stage's tasks are stored with, None without one."""
        return None if self.failure_stage is None else len(self.stages)

    def is_failure_task(self, task_key: str) -> bool:
        stage = self.failure_stage
        return stage is not None and any(d.key == task_key for d in stage.stage.task_definitions)

    def stage_index_of(self, task_key: str) -> int:
        for index, stage in enumerate(self.all_stages):
            if any(d.key == task_key for d in stage.task_definitions):
                return index
        raise KeyError(task_key)

    def task_definition(self, task_key: str) -> TaskDefinition:
        return self.all_stages[self.stage_index_of(task_key)].task_definition(task_key)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"key": self.key, "name": self.name}
        if self.space_key is not None:
            wire["spaceKey"] = self.space_key
        wire["stages"] = [s.to_wire() for s in self.stages]
        if self.failure_stage is not None:
            wire["failureStage"] = self.failure_stage.to_wire()
        return wire

    def content_hash(self) -> str:
        """A SHA-256 over the canonical JSON of what the flow does (name and stages)."""
        what: dict[str, Any] = {"name": self.name, "stages": [s.to_wire() for s in self.stages]}
        if self.failure_stage is not None:
            what["failureStage"] = self.failure_stage.to_wire()
        canonical = json.dumps(
            what,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()
