"""Turning what a handler did into the task's next state, with the flow's retry policy."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from ordermill.errors import AttemptTimeout, HandlerError, PermanentError
from ordermill.flows.model import RetryPolicy
from ordermill.flows.retry import FailureKind, decide_retry
from ordermill.flows.status import TaskStatus
from ordermill.flows.work import AttemptRecord, ClaimedTask, Completion, Wake
from ordermill.handlers.base import AttemptLog, Outcome, Succeeded, Waiting


def _attempt(
    task: ClaimedTask,
    started: datetime,
    ended: datetime,
    latency_ms: float,
    log: AttemptLog,
    outcome: str,
) -> AttemptRecord:
    return AttemptRecord(
        number=task.attempt,
        started_at=started,
        ended_at=ended,
        outcome=outcome,
        status_code=log.status_code,
        latency_ms=round(latency_ms, 3),
        request=log.request,
        response_body=log.response_body,
    )


def completion_of_outcome(
    task: ClaimedTask,
    outcome: Outcome,
    started: datetime,
    ended: datetime,
    latency_ms: float,
    log: AttemptLog,
) -> Completion:
    if isinstance(outcome, Succeeded):
        return Completion(
            task=task,
            status=TaskStatus.SUCCEEDED,
            attempt=_attempt(task, started, ended, latency_ms, log, "succeeded"),
            result=outcome.result,
            assets=outcome.assets,
        )
    assert isinstance(outcome, Waiting)
    return Completion(
        task=task,
        status=TaskStatus.WAITING,
        attempt=_attempt(task, started, ended, latency_ms, log, "waiting"),
        due_at=outcome.until,
        wake=Wake.FIRE if outcome.fire else Wake.TIMEOUT,
        result=outcome.result,
        heartbeat_ms=outcome.heartbeat_ms,
        question=outcome.question,
    )


def failure_kind(error: HandlerError) -> FailureKind:
    if isinstance(error, PermanentError):
        return FailureKind.PERMANENT
    if isinstance(error, AttemptTimeout):
        return FailureKind.TIMEOUT
    return FailureKind.RETRYABLE


def completion_of_error(
    task: ClaimedTask,
    error: HandlerError,
    policy: RetryPolicy,
    started: datetime,
    ended: datetime,
    latency_ms: float,
    log: AttemptLog,
    *,
    jitter: float | None = None,
) -> Completion:
    """A failed attempt: retry later, or end the task FAILED or TIMED_OUT."""
    retry_after_ms = None if error.retry_after is None else int(error.retry_after * 1000)
    decision = decide_retry(
        policy,
        task.budget_attempt,
        failure_kind(error),
        retry_after_ms=retry_after_ms,
        jitter=random.random() if jitter is None else jitter,
    )
    log.status_code = log.status_code if log.status_code is not None else error.status_code
    if log.response_body is None:
        log.response_body = error.response_body
    detail: dict[str, Any] = {"class": type(error).__name__, "message": error.message}
    if error.status_code is not None:
        detail["statusCode"] = error.status_code
    if decision.retry:
        status, outcome = TaskStatus.PENDING, "retry"
        due_at: datetime | None = ended + timedelta(milliseconds=decision.delay_ms)
    else:
        assert decision.final_status is not None
        status, due_at = decision.final_status, None
        outcome = "timed_out" if status is TaskStatus.TIMED_OUT else "failed"
    record = _attempt(task, started, ended, latency_ms, log, outcome)
    record.error_class = detail["class"]
    record.error_message = error.message
    return Completion(task=task, status=status, attempt=record, due_at=due_at, error=detail)
