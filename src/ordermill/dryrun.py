"""Dry-run a flow against a sample order: the real lifecycle core on the in-memory store, a
simulated clock, scripted outcomes per task key, and no side effects.

Nothing leaves the process: no HTTP request, no e-mail, no file, nothing stored. Each
``consume-rest-api`` task answers what its script says (default: ``201``, and feedback
``success`` when the task expects feedback); ``wait`` tasks end when their time comes on the
simulated clock; ``manual-confirmation`` tasks are answered as scripted (default: confirmed);
every other handler succeeds. Connector bodies are built by the same function the connector
handler uses; e-mails and confirmation texts are rendered by the same templates, so a value
missing from the sample order is reported as a problem.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ordermill.engine.outcomes import completion_of_error
from ordermill.errors import AttemptTimeout, HandlerError, PermanentError, RetryableError
from ordermill.flows.lifecycle import FeedbackKind
from ordermill.flows.model import FlowDefinition
from ordermill.flows.retry import FailureKind, classify_http_status
from ordermill.flows.status import OrderStatus, TaskStatus
from ordermill.flows.work import AttemptRecord, ClaimedTask, Completion, Wake
from ordermill.handlers.base import AttemptLog, TaskContext
from ordermill.handlers.connector import connector_body
from ordermill.handlers.registry import HandlerRegistry
from ordermill.handlers.templates import render, template_context
from ordermill.handlers.wait import wake_time
from ordermill.storage.memory import MemoryStore
from ordermill.testing import FakeClock
from ordermill.times import iso

MAX_STEPS = 10_000
HORIZON = timedelta(days=366)  # the simulated clock stops a year after the start
START = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Scripted:
    """One scripted answer of a task's attempt (the ``outcomes`` items of the request)."""

    status: int = 201
    feedback: str | None = None  # success, failure: sent ``after`` the answer
    confirmed: bool = True  # a manual confirmation's answer
    after: timedelta = timedelta(0)
    timeout: bool = False  # the attempt gets no answer in time

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> Scripted:
        return cls(
            status=int(item.get("status", 201)),
            feedback=item.get("feedback"),
            confirmed=bool(item.get("confirmed", True)),
            after=timedelta(milliseconds=int(item.get("afterMs", 0))),
            timeout=bool(item.get("timeout", False)),
        )


@dataclass
class DryRun:
    status: str = ""
    timeline: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    emails: list[dict[str, Any]] = field(default_factory=list)
    confirmations: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)

    def wire(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "timeline": self.timeline,
            "tasks": self.tasks,
            "requests": self.requests,
            "emails": self.emails,
            "confirmations": self.confirmations,
            "problems": self.problems,
        }


async def dry_run(
    flow: FlowDefinition,
    order: dict[str, Any],
    outcomes: Mapping[str, Sequence[Mapping[str, Any]]],
    registry: HandlerRegistry,
    *,
    space_key: str = "dry-run",
    public_url: str = "https://ordermill.invalid",
) -> DryRun:
    """Run ``order`` through ``flow`` on a simulated clock; see the module's docstring."""
    clock = FakeClock(START)
    store = MemoryStore(clock)
    scripts = {key: [Scripted.of(item) for item in items] for key, items in outcomes.items()}
    run = DryRun()
    later: list[tuple[datetime, str, str, Any]] = []  # (when, order id, task key, answer)
    order_id = await store.create_order(flow, order)
    memory = store.orders[order_id]
    memory.space_key = space_key
    seen = 0

    def note_timeline() -> None:
        nonlocal seen
        for kind, task_key in memory.timeline[seen:]:
            run.timeline.append({"at": iso(clock.now()), "type": kind, "taskKey": task_key})
        seen = len(memory.timeline)

    note_timeline()
    for _ in range(MAX_STEPS):
        claimed = await store.claim("dry-run", 100, 3600)
        if claimed:
            done = [
                await _attempt(task, scripts, registry, clock.now(), public_url, run, later)
                for task in claimed
            ]
            await store.complete(done)
            note_timeline()
            continue
        for when, oid, key, answer in sorted(entry for entry in later if entry[0] <= clock.now()):
            later.remove((when, oid, key, answer))
            if isinstance(answer, FeedbackKind):
                await store.feedback(oid, key, answer)
            else:
                await store.answer(oid, key, confirm=bool(answer))
        await store.fire_due()
        note_timeline()
        if memory.status in (OrderStatus.SUCCESS, OrderStatus.FAILURE, OrderStatus.CANCELLED):
            break
        upcoming = [when for when, *_ in later]
        upcoming += [
            task.due_at
            for task in memory.tasks.values()
            if task.status in (TaskStatus.PENDING, TaskStatus.WAITING) and task.due_at is not None
        ]
        future = [when for when in upcoming if when > clock.now()]
        if not future:
            if not any(when <= clock.now() for when in upcoming):
                break  # nothing more will happen
            continue
        if min(future) - START > HORIZON:
            run.problems.append(
                {"taskKey": "", "message": "the simulation stopped a year after the order began"}
            )
            break
        clock.advance(min(future) - clock.now())
    run.status = memory.status.value
    for key, task in memory.tasks.items():
        entry = run.tasks.setdefault(key, {"attempts": []})
        entry["status"] = task.status.value
    return run


async def _attempt(
    task: ClaimedTask,
    scripts: dict[str, list[Scripted]],
    registry: HandlerRegistry,
    now: datetime,
    public_url: str,
    run: DryRun,
    later: list[tuple[datetime, str, str, Any]],
) -> Completion:
    """What one attempt of ``task`` does in the simulation."""
    queue = scripts.get(task.task_key) or []
    script = queue.pop(0) if len(queue) > 1 else (queue[0] if queue else Scripted())
    definition = task.definition
    ctx = TaskContext.of_claimed(
        task,
        payload=registry.parse_payload(definition.handler_key, definition.payload),
        update_url=f"{public_url}/api/feedback/…",
        timeout_seconds=registry.timeout_ms(definition) / 1000,
        now=now,
    )
    record = AttemptRecord(number=task.attempt, started_at=now, ended_at=now, outcome="")
    entry = run.tasks.setdefault(task.task_key, {"attempts": []})
    attempt: dict[str, Any] = {"number": task.attempt, "at": iso(now)}
    entry["attempts"].append(attempt)
    policy = registry.retry_policy(definition)
    try:
        completion = await _outcome(task, ctx, script, run, later, record)
    except HandlerError as error:
        attempt.update(outcome="error", error=error.message)
        completion = completion_of_error(
            task, error, policy, now, now, 0.0, AttemptLog(), jitter=0.5
        )
    attempt["outcome"] = completion.attempt.outcome
    attempt["taskStatus"] = completion.status.value
    return completion


async def _outcome(
    task: ClaimedTask,
    ctx: TaskContext,
    script: Scripted,
    run: DryRun,
    later: list[tuple[datetime, str, str, Any]],
    record: AttemptRecord,
) -> Completion:
    key, now, payload = task.task_key, ctx.now, ctx.payload
    handler_key = task.definition.handler_key
    if handler_key == "consume-rest-api":
        body = json.loads(connector_body(ctx))
        run.requests.append(
            {"taskKey": key, "attempt": task.attempt, "url": payload.uri, "body": body}
        )
        if script.timeout:
            raise AttemptTimeout(f"no answer within {ctx.timeout_seconds:g} s (scripted)")
        kind = classify_http_status(script.status)
        record.status_code = script.status
        if kind is FailureKind.RETRYABLE:
            raise RetryableError(
                f"the connector answered {script.status}", status_code=script.status
            )
        if kind is not None:
            raise PermanentError(
                f"the connector answered {script.status}", status_code=script.status
            )
        result = {"statusCode": script.status}
        if not payload.sends_feedback:
            return _done(task, record, result)
        feedback = FeedbackKind(script.feedback or "success")
        later.append((now + script.after, task.order_id, key, feedback))
        wait_ms = payload.feedback_timeout_duration or int(ctx.timeout_seconds * 1000)
        return _waiting(task, record, now + timedelta(milliseconds=wait_ms), Wake.TIMEOUT, result)
    variables = template_context(ctx)
    known = len(run.problems)
    if handler_key == "send-email":
        email = {
            "taskKey": key,
            "to": [await _render(run, key, r, variables, "recipient") for r in payload.recipient],
            "subject": await _render(run, key, payload.subject, variables, "subject"),
            "body": await _render(run, key, payload.body, variables, "body"),
        }
        run.emails.append(email)
        if len(run.problems) > known:  # the real handler fails the task on a template error
            raise PermanentError(run.problems[known]["message"])
        return _done(task, record, {"dryRun": True})
    if handler_key == "manual-confirmation":
        text = {
            "taskKey": key,
            "title": await _render(run, key, payload.title, variables, "title"),
            "description": (
                None
                if payload.description is None
                else await _render(run, key, payload.description, variables, "description")
            ),
            "assignees": list(payload.assignees),
        }
        run.confirmations.append(text)
        if len(run.problems) > known:
            raise PermanentError(run.problems[known]["message"])
        later.append((now + script.after, task.order_id, key, script.confirmed))
        return _waiting(task, record, None, Wake.TIMEOUT, {"confirmation": text})
    if handler_key == "wait":
        return _waiting(task, record, wake_time(payload, task.order, now), Wake.FIRE, None)
    return _done(task, record, {"dryRun": True})


async def _render(run: DryRun, key: str, source: str, variables: dict[str, Any], name: str) -> str:
    try:
        return await render(source, variables, field=name)
    except PermanentError as error:
        run.problems.append({"taskKey": key, "message": error.message})
        return ""


def _done(task: ClaimedTask, record: AttemptRecord, result: dict[str, Any]) -> Completion:
    record.outcome = "succeeded"
    return Completion(task=task, status=TaskStatus.SUCCEEDED, attempt=record, result=result)


def _waiting(
    task: ClaimedTask,
    record: AttemptRecord,
    until: datetime | None,
    wake: str,
    result: dict[str, Any] | None,
) -> Completion:
    record.outcome = "waiting"
    return Completion(
        task=task, status=TaskStatus.WAITING, attempt=record, due_at=until, wake=wake, result=result
    )
