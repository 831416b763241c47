"""The order and task state machines of SPEC §3.1–3.2, in one place."""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    CREATED = "CREATED"  # stored; its flow has not been started
    IN_PROGRESS = "IN_PROGRESS"  # the flow is running
    SUCCESS = "SUCCESS"  # every stage succeeded
    UNHEALTHY = "UNHEALTHY"  # a task timed out; a late answer can still move it on
    FAILURE = "FAILURE"  # a task failed; nothing new starts
    CANCELLED = "CANCELLED"  # an operator cancelled it

    @property
    def is_final(self) -> bool:
        """SUCCESS and CANCELLED end an order. FAILURE and UNHEALTHY can be retried, and only an
        operator's explicit redelivery of one of its tasks reopens a SUCCESS order."""
        return self in (OrderStatus.SUCCESS, OrderStatus.CANCELLED)


class TaskStatus(StrEnum):
    PENDING = "PENDING"  # runnable, possibly not before a backoff time
    RUNNING = "RUNNING"  # claimed by a worker, under a lease
    WAITING = "WAITING"  # waiting on the outside world: feedback, a confirmation, a timer
    SUCCEEDED = "SUCCEEDED"  # done
    FAILED = "FAILED"  # failed for good (until an operator retries)
    TIMED_OUT = "TIMED_OUT"  # gave up waiting; a late answer can still complete it
    CANCELLED = "CANCELLED"  # the order was cancelled before the task ended

    @property
    def is_active(self) -> bool:
        """The task still holds or awaits work."""
        return self in ACTIVE_TASK_STATUSES

    @property
    def is_ended(self) -> bool:
        return not self.is_active


ACTIVE_TASK_STATUSES = frozenset({TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.WAITING})

# Which task transitions the engine may make; anything else is a bug or a stale write.
TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset(
        {TaskStatus.RUNNING, TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED}
    ),
    TaskStatus.RUNNING: frozenset(
        {
            TaskStatus.PENDING,
            TaskStatus.RUNNING,
            TaskStatus.WAITING,
            TaskStatus.SUCCEEDED,
            TaskStatus.FAILED,
            TaskStatus.TIMED_OUT,
            TaskStatus.CANCELLED,
        }
    ),
    TaskStatus.WAITING: frozenset(
        {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.TIMED_OUT, TaskStatus.CANCELLED}
    ),
    TaskStatus.SUCCEEDED: frozenset({TaskStatus.PENDING}),  # an operator's redelivery
    TaskStatus.FAILED: frozenset({TaskStatus.PENDING, TaskStatus.SUCCEEDED}),  # or skipped
    TaskStatus.TIMED_OUT: frozenset({TaskStatus.PENDING, TaskStatus.SUCCEEDED, TaskStatus.FAILED}),
    TaskStatus.CANCELLED: frozenset(),
}


def can_transition(current: TaskStatus, new: TaskStatus) -> bool:
    """Whether the engine may move a task from ``current`` to ``new``."""
    return new in TASK_TRANSITIONS[current]
