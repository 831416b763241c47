"""Dry-run a flow against a sample order: the real lifecycle core on the in-memory store, a
simulated clock, scripted outcomes per task key, and no side effects.

Nothing leaves the process: no HTTP request, no e-mail, no file, nothing stored. Each
``consume-rest-api`` task answers what its script says (default: ``201``, and feedback
``success`` when the task expects feedback); ``wait`` tasks end when their time comes on the
simulated clock; ``manual-confirmation`` tasks are answered as scripted (default: confirmed);
``export`` tasks list the files they would store (nothing is fetched or written); every other
handler succeeds. Connector bodies are built by the same function the connector handler uses,
with an example ``updateUrl``; e-mails, confirmation texts and the mails that ask assignees to
confirm are rendered by the same templates, so a value missing from the sample order is reported
as a problem. Retry jitter comes from a seeded generator: the answer names the seed, and the
same seed gives the same run.
"""

from __future__ import annotations

import json
import random
import secrets
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
from ordermill.handlers.confirmation import answer_path, notify_subject, notify_text
from ordermill.handlers.connector import connector_body
from ordermill.handlers.export.layout import export_outputs, plan_item_files
from ordermill.handlers.registry import HandlerRegistry
from ordermill.handlers.templates import render, template_context
from ordermill.handlers.wait import wake_time
from ordermill.storage.memory import MemoryStore
from ordermill.testing import FakeClock
from ordermill.times import iso

MAX_STEPS = 10_000
HORIZON = timedelta(days=366)  # the simulated clock stops a year after the start
START = datetime(2030, 1, 1, tzinfo=UTC)
# Marks the example links of a dry run (a task's updateUrl, a confirmation's answer links): it
# stands where a real token or signature would be, so nothing sent to them is accepted.
EXAMPLE = "dry-run-example"


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
    exports: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)
    seed: int = 0
    update_url: str = ""

    def wire(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "updateUrl": self.update_url,
            "status": self.status,
            "timeline": self.timeline,
            "tasks": self.tasks,
            "requests": self.requests,
            "emails": self.emails,
            "confirmations": self.confirmations,
            "exports": self.exports,
            "problems": self.problems,
        }


@dataclass
class _Simulation:
    """What every simulated attempt shares."""

    scripts: dict[str, list[Scripted]]
    registry: HandlerRegistry
    run: DryRun
    rng: random.Random
    # (when, order id, task key, answer): feedback and confirmation answers still to come
    later: list[tuple[datetime, str, str, Any]] = field(default_factory=list)


async def dry_run(
    flow: FlowDefinition,
    order: dict[str, Any],
    outcomes: Mapping[str, Sequence[Mapping[str, Any]]],
    registry: HandlerRegistry,
    *,
    space_key: str = "dry-run",
    public_url: str = "https://ordermill.invalid",
    seed: int | None = None,
) -> DryRun:
    """Run ``order`` through ``flow`` on a simulated clock; see the module's docstring.
    ``seed`` (default: a random one, named in the answer) draws the retries' jitter."""
    clock = FakeClock(START)
    store = MemoryStore(clock)
    scripts = {key: [Scripted.of(item) for item in items] for key, items in outcomes.items()}
    seed = secrets.randbelow(2**32) if seed is None else seed
    update_url = f"{public_url.rstrip('/')}/api/feedback/{EXAMPLE}"
    run = DryRun(seed=seed, update_url=update_url)
    sim = _Simulation(scripts, registry, run, random.Random(seed))
    later = sim.later
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
            done = [await _attempt(task, sim, clock.now()) for task in claimed]
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


async def _attempt(task: ClaimedTask, sim: _Simulation, now: datetime) -> Completion:
    """What one attempt of ``task`` does in the simulation."""
    registry, run = sim.registry, sim.run
    queue = sim.scripts.get(task.task_key) or []
    script = queue.pop(0) if len(queue) > 1 else (queue[0] if queue else Scripted())
    definition = task.definition
    ctx = TaskContext.of_claimed(
        task,
        payload=registry.parse_payload(definition.handler_key, definition.payload),
        update_url=run.update_url,
        timeout_seconds=registry.timeout_ms(definition) / 1000,
        now=now,
    )
    record = AttemptRecord(number=task.attempt, started_at=now, ended_at=now, outcome="")
    entry = run.tasks.setdefault(task.task_key, {"attempts": []})
    attempt: dict[str, Any] = {"number": task.attempt, "at": iso(now)}
    entry["attempts"].append(attempt)
    policy = registry.retry_policy(definition)
    try:
        completion = await _outcome(task, ctx, script, sim, record)
    except HandlerError as error:
        attempt.update(outcome="error", error=error.message)
        jitter = sim.rng.random()
        completion = completion_of_error(
            task, error, policy, now, now, 0.0, AttemptLog(), jitter=jitter
        )
    attempt["outcome"] = completion.attempt.outcome
    attempt["taskStatus"] = completion.status.value
    return completion


async def _outcome(
    task: ClaimedTask,
    ctx: TaskContext,
    script: Scripted,
    sim: _Simulation,
    record: AttemptRecord,
) -> Completion:
    key, now, payload, run, later = task.task_key, ctx.now, ctx.payload, sim.run, sim.later
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
        title = " ".join((await _render(run, key, payload.title, variables, "title")).split())
        text = {
            "taskKey": key,
            "title": title,
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
        if payload.notify:
            _ask_by_mail(task, ctx, text, run)
        later.append((now + script.after, task.order_id, key, script.confirmed))
        return _waiting(task, record, None, Wake.TIMEOUT, {"confirmation": text})
    if handler_key == "export":
        return _export(task, ctx, record, run)
    if handler_key == "wait":
        return _waiting(task, record, wake_time(payload, task.order, now), Wake.FIRE, None)
    return _done(task, record, {"dryRun": True})


def _ask_by_mail(task: ClaimedTask, ctx: TaskContext, text: dict[str, Any], run: DryRun) -> None:
    """The mails that would ask each assignee to confirm, with example links."""
    order = str(ctx.order.get("thirdPartyOrderId") or ctx.order_id)
    expires = (ctx.now + timedelta(seconds=ctx.timeout_seconds)).isoformat(timespec="minutes")
    base = run.update_url.removesuffix(f"/api/feedback/{EXAMPLE}")
    for index, assignee in enumerate(text["assignees"]):
        confirm = f"{base}{answer_path(EXAMPLE, 'confirm', index)}"
        reject = f"{base}{answer_path(EXAMPLE, 'reject', index)}"
        body = notify_text(text["title"], text["description"], order, confirm, reject, expires)
        subject = notify_subject(text["title"])
        run.emails.append(
            {"taskKey": task.task_key, "to": [assignee], "subject": subject, "body": body}
        )


def _export(task: ClaimedTask, ctx: TaskContext, record: AttemptRecord, run: DryRun) -> Completion:
    """The files an export would store, and the item files it would bring into its package;
    nothing is fetched or written."""
    formats = list(ctx.payload.formats)
    third_party_id = str(ctx.order.get("thirdPartyOrderId", ""))
    files = [
        {"assetId": o.asset_id, "fileName": o.file_name, "contentType": o.content_type}
        for o in export_outputs(formats, third_party_id, ctx.order_id)
    ]
    items = []
    if {"manifest", "zip"} & set(formats):
        items = [
            {"path": f.path, "itemId": f.item_id, "assetId": f.asset_id, "from": f.url}
            for f in plan_item_files(ctx.order, ctx.assets)
        ]
    run.exports.append({"taskKey": task.task_key, "files": files, "itemFiles": items})
    return _done(task, record, {"dryRun": True, "files": files})


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
