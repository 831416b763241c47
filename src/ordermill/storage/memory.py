"""An in-memory store: the worker's store protocol without a database, for fast tests.

``MemoryStore`` implements ``WorkStore`` (claim, complete, extend leases, fire timers,
reconcile) and the outside world's side of an order (intake, feedback, confirmation answers,
operator actions). Every status change is decided by ``flows.lifecycle.decide``, exactly as the
database writer does; each public method is atomic, as a transaction is. Nothing is persisted.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ordermill.clock import Clock
from ordermill.errors import NotFound
from ordermill.flows.lifecycle import (
    OUTCOME_OF_STATUS,
    AttemptEnded,
    Claimed,
    ConfirmationAnswered,
    Decision,
    Event,
    FeedbackKind,
    FeedbackReceived,
    Note,
    OperatorAction,
    OrderState,
    Refusal,
    Replan,
    Restart,
    TimerFired,
    WaitTimedOut,
    decide,
)
from ordermill.flows.model import FlowDefinition
from ordermill.flows.status import OrderStatus, TaskStatus
from ordermill.flows.work import ClaimedTask, Completion, Wake


@dataclass
class MemoryTask:
    id: int
    order_id: str
    stage_key: str
    key: str
    handler_key: str
    status: TaskStatus = TaskStatus.PENDING
    attempts: int = 0
    budget_base: int = 0
    due_at: datetime | None = None
    wake: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


@dataclass
class MemoryOrder:
    id: str
    flow: FlowDefinition
    body: dict[str, Any]
    status: OrderStatus
    space_key: str = "memory"
    version: int = 0
    tasks: dict[str, MemoryTask] = field(default_factory=dict)
    timeline: list[tuple[str, str | None]] = field(default_factory=list)
    paused: bool = False

    @property
    def state(self) -> OrderState:
        statuses = {key: task.status for key, task in self.tasks.items()}
        return OrderState(self.status, statuses, self.paused)


class MemoryStore:
    """Orders and tasks in dictionaries, moved only by the lifecycle core."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.orders: dict[str, MemoryOrder] = {}
        self._tasks: dict[int, MemoryTask] = {}
        self._ids = itertools.count(1)
        self._listeners: list[Callable[[], None]] = []
        self._held: dict[tuple[str, str], FeedbackKind] = {}  # final feedback before the answer
        self.reconciled = 0

    # -- the outside world ----------------------------------------------------------------

    def on_new_work(self, listener: Any) -> None:
        self._listeners.append(listener)

    async def create_order(
        self, flow: FlowDefinition, body: dict[str, Any], *, start: bool = True
    ) -> str:
        order_id = f"ord_{next(self._ids)}"
        status = OrderStatus.IN_PROGRESS if start else OrderStatus.CREATED
        order = MemoryOrder(order_id, flow, body, status)
        self.orders[order_id] = order
        if start:
            self._apply(order, Replan())
        return order_id

    async def feedback(self, order_id: str, task_key: str, kind: FeedbackKind) -> Note | Refusal:
        """Feedback on a task's updateUrl; early final feedback is held for the attempt."""
        order = self._order(order_id)
        answer = self._apply(order, FeedbackReceived(task_key, kind))
        if isinstance(answer, Refusal):
            return answer
        if answer.note is Note.HELD:
            self._held[(order_id, task_key)] = kind
        return answer.note

    async def answer(self, order_id: str, task_key: str, *, confirm: bool) -> Decision | Refusal:
        return self._apply(self._order(order_id), ConfirmationAnswered(task_key, confirm))

    async def operate(self, order_id: str, event: OperatorAction) -> Decision | Refusal:
        return self._apply(self._order(order_id), event)

    async def restart(
        self, order_id: str, flow: FlowDefinition, event: Restart
    ) -> Decision | Refusal:
        """Move the order onto ``flow`` (another version of its flow)."""
        order = self._order(order_id)
        answer = decide(flow, order.state, event)
        if isinstance(answer, Refusal):
            return answer
        order.flow = flow
        return self._apply(order, event, answer)

    # -- the worker's side (WorkStore) ------------------------------------------------------

    async def claim(
        self, owner: str, limit: int, lease_seconds: float, *, expired: bool = True
    ) -> list[ClaimedTask]:
        now = self.clock.now()
        due = sorted(
            (
                task
                for task in self._tasks.values()
                if task.status is TaskStatus.PENDING and (task.due_at or now) <= now
            ),
            key=lambda task: (task.due_at or now, task.id),
        )[:limit]
        if expired and len(due) < limit:
            due += [
                task
                for task in self._tasks.values()
                if task.status is TaskStatus.RUNNING
                and task.lease_expires_at is not None
                and task.lease_expires_at <= now
                and not self.orders[task.order_id].paused
            ][: limit - len(due)]
        claimed = []
        for task in due:
            order = self.orders[task.order_id]
            if task.status is TaskStatus.PENDING:
                answer = self._apply(order, Claimed(task.key))
                if isinstance(answer, Refusal):
                    continue
            else:
                task.budget_base += 1  # a lost attempt does not use up the budget
            task.attempts += 1
            task.lease_owner = owner
            task.lease_expires_at = now + timedelta(seconds=lease_seconds)
            claimed.append(self._claimed(order, task, owner, now))
        return claimed

    async def complete(self, completions: list[Completion]) -> list[bool]:
        applied = []
        for done in completions:
            order = self._order(done.task.order_id)
            task = order.tasks.get(done.task.task_key)
            fresh = (
                task is not None
                and task.id == done.task.task_id  # not a task a restart put under the same key
                and task.status is TaskStatus.RUNNING
                and (task.lease_owner, task.attempts) == (done.task.lease_owner, done.task.attempt)
            )
            if not fresh:
                applied.append(False)
                continue
            event = AttemptEnded(done.task.task_key, OUTCOME_OF_STATUS[done.status])
            answer = self._apply(order, event)
            assert isinstance(answer, Decision), answer
            assert task is not None
            task.due_at, task.wake, task.error = done.due_at, done.wake, done.error
            task.result = done.result if done.result is not None else task.result
            applied.append(True)
            held = self._held.pop((order.id, task.key), None)
            if held is not None and done.status is not TaskStatus.SUCCEEDED:
                self._apply(order, FeedbackReceived(task.key, held, held=True))
        return applied

    async def extend_leases(self, owner: str, task_ids: list[int], lease_seconds: float) -> None:
        until = self.clock.now() + timedelta(seconds=lease_seconds)
        for task_id in task_ids:
            task = self._tasks.get(task_id)
            if task and task.lease_owner == owner and task.status is TaskStatus.RUNNING:
                task.lease_expires_at = until

    async def fire_due(self, limit: int = 200) -> int:
        now = self.clock.now()
        due = [
            task
            for task in self._tasks.values()
            if task.status is TaskStatus.WAITING and task.due_at is not None and task.due_at <= now
        ][:limit]
        for task in due:
            event: Event = (
                TimerFired(task.key) if task.wake == Wake.FIRE else WaitTimedOut(task.key)
            )
            self._apply(self.orders[task.order_id], event)
        return len(due)

    async def reconcile(self, limit: int = 200) -> int:
        stranded = [
            order
            for order in self.orders.values()
            if order.status is OrderStatus.IN_PROGRESS
            and not any(task.status.is_active for task in order.tasks.values())
        ][:limit]
        moved = sum(isinstance(self._apply(order, Replan()), Decision) for order in stranded)
        self.reconciled += moved
        return moved

    # -- applying the core's decisions ----------------------------------------------------------

    def _order(self, order_id: str) -> MemoryOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise NotFound(f"order {order_id!r} does not exist")
        return order

    def _apply(
        self, order: MemoryOrder, event: Event, decided: Decision | None = None
    ) -> Decision | Refusal:
        answer = decided or decide(order.flow, order.state, event)
        if isinstance(answer, Refusal):
            return answer
        now = self.clock.now()
        for change in answer.changes:
            task = order.tasks[change.task_key]
            task.status = change.new
            if change.old is TaskStatus.RUNNING and change.new is not TaskStatus.RUNNING:
                task.lease_owner = task.lease_expires_at = None
            if change.new is TaskStatus.PENDING and change.old.is_ended:
                task.budget_base, task.due_at, task.error = task.attempts, now, None
            if change.new.is_ended:
                task.due_at = task.wake = None
        for key, archived in answer.archive:
            order.tasks[archived] = order.tasks.pop(key)
            order.tasks[archived].key = archived
        for ref in answer.start:
            task = MemoryTask(
                next(self._ids),
                order.id,
                ref.stage_key,
                ref.task_key,
                order.flow.all_stages[ref.stage_index].task_definition(ref.task_key).handler_key,
                due_at=now,
            )
            order.tasks[ref.task_key] = task
            self._tasks[task.id] = task
        order.timeline += [(note.type, note.task_key) for note in answer.events]
        order.status = answer.state.status
        order.paused = answer.state.paused
        order.version += 1
        if answer.start or any(c.new is TaskStatus.PENDING for c in answer.changes):
            for listener in self._listeners:
                listener()
        return answer

    def _claimed(
        self, order: MemoryOrder, task: MemoryTask, owner: str, now: datetime
    ) -> ClaimedTask:
        return ClaimedTask(
            task_id=task.id,
            order_id=order.id,
            space_key=order.space_key,
            flow_key=order.flow.key,
            flow_version=1,
            stage_key=task.stage_key,
            task_key=task.key,
            handler_key=task.handler_key,
            attempt=task.attempts,
            budget_attempt=task.attempts - task.budget_base,
            delivery_id=f"dlv_{task.id}",
            delivery_epoch=now,
            feedback_token=f"token-{task.id}",
            order=order.body,
            flow=order.flow,
            definition=order.flow.task_definition(task.key),
            lease_owner=owner,
            claimed_at=now,
        )

    def statuses(self, order_ids: Sequence[str] | None = None) -> dict[str, OrderStatus]:
        ids = self.orders if order_ids is None else order_ids
        return {order_id: self.orders[order_id].status for order_id in ids}
