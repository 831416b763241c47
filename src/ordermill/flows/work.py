"""The values that pass between the engine and storage: a claimed task and an attempt's outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ordermill.flows.model import FlowDefinition, TaskDefinition
from ordermill.flows.status import TaskStatus


class Wake:
    """What happens when a WAITING task's due time arrives."""

    TIMEOUT = "timeout"  # nobody answered in time: the task times out
    FIRE = "fire"  # a timer: the task succeeds


@dataclass(frozen=True)
class DeliverySettings:
    """A space's connector allowances and signing secrets, as the engine needs them."""

    allow_networks: tuple[str, ...] = ()
    allow_http_hosts: tuple[str, ...] = ()
    signing_secrets: tuple[str, ...] = ()  # newest first; all of them sign during a rotation
    require_feedback_signature: bool = False


@dataclass(frozen=True)
class AssetRecord:
    """A file an order gained while it ran: an export, or an asset a connector sent back."""

    asset_id: str
    source: str  # export | feedback
    item_id: str | None = None  # None: the asset belongs to the whole order
    url: str | None = None  # an outside URL, or None when ordermill stores the bytes
    blob_key: str | None = None
    file_name: str | None = None
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    is_public: bool = False


@dataclass(frozen=True)
class Question:
    """What a task that waits for a person's answer asks, and who was told."""

    title: str
    description: str | None = None
    assignees: tuple[str, ...] = ()
    notified: tuple[str, ...] | None = None  # message ids of the notifications sent

    def wire(self) -> dict[str, Any]:
        """The question as the task's result shows it (``result.confirmation``)."""
        shown: dict[str, Any] = {
            "title": self.title,
            "description": self.description,
            "assignees": list(self.assignees),
        }
        if self.notified is not None:
            shown["notified"] = list(self.notified)
        return shown


@dataclass(frozen=True)
class ClaimedTask:
    """A task claimed by a worker, with everything its handler needs."""

    task_id: int
    order_id: str
    space_key: str
    flow_key: str
    flow_version: int
    stage_key: str
    task_key: str
    handler_key: str
    attempt: int  # the number of this attempt, counting every attempt ever made
    budget_attempt: int  # the number of this attempt within the current retry budget
    delivery_id: str
    delivery_epoch: datetime  # when this delivery began; links in the body expire after it
    feedback_token: str
    order: dict[str, Any]
    flow: FlowDefinition
    definition: TaskDefinition
    lease_owner: str
    claimed_at: datetime
    assets: tuple[dict[str, Any], ...] = ()  # files the order gained so far (order_assets rows)
    reclaimed: bool = False  # claimed after another worker's lease expired
    # What ordermill adds to the request's ``context`` for this delivery (a failure stage's
    # ``trigger``); the same on every attempt.
    context: dict[str, Any] | None = None


@dataclass
class AttemptRecord:
    """One attempt as it goes into the delivery log."""

    number: int
    started_at: datetime
    ended_at: datetime
    outcome: str  # succeeded | waiting | retry | failed | timed_out | lost
    status_code: int | None = None
    latency_ms: float | None = None
    request: dict[str, Any] | None = None
    response_body: str | None = None
    error_class: str | None = None
    error_message: str | None = None

    def row(self, task_id: int) -> dict[str, Any]:
        return {
            "task_id": task_id,
            "number": self.number,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "outcome": self.outcome,
            "status_code": self.status_code,
            "latency_ms": self.latency_ms,
            "request": self.request,
            "response_body": self.response_body,
            "error_class": self.error_class,
            "error_message": self.error_message,
        }


@dataclass
class Completion:
    """The outcome of one attempt, as the engine decided it."""

    task: ClaimedTask
    status: TaskStatus  # SUCCEEDED | WAITING | PENDING (retry) | FAILED | TIMED_OUT
    attempt: AttemptRecord
    due_at: datetime | None = None  # PENDING: retry time; WAITING: deadline
    wake: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    assets: tuple[AssetRecord, ...] = ()
    heartbeat_ms: int | None = None  # WAITING: each progress note pushes due_at this far ahead
    question: Question | None = None  # WAITING for a person's answer to this
