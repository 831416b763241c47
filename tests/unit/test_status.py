"""The order and task state machines (SPEC §3.1–3.2)."""

from __future__ import annotations

import pytest

from ordermill.flows import OrderStatus, TaskStatus
from ordermill.flows.status import ACTIVE_TASK_STATUSES, TASK_TRANSITIONS, can_transition


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        (TaskStatus.PENDING, TaskStatus.RUNNING, True),
        (TaskStatus.RUNNING, TaskStatus.WAITING, True),
        (TaskStatus.RUNNING, TaskStatus.PENDING, True),  # a retry after backoff
        (TaskStatus.RUNNING, TaskStatus.TIMED_OUT, True),
        (TaskStatus.WAITING, TaskStatus.SUCCEEDED, True),
        (TaskStatus.WAITING, TaskStatus.TIMED_OUT, True),
        (TaskStatus.TIMED_OUT, TaskStatus.SUCCEEDED, True),  # a late answer
        (TaskStatus.TIMED_OUT, TaskStatus.FAILED, True),
        (TaskStatus.TIMED_OUT, TaskStatus.PENDING, True),  # an operator retry
        (TaskStatus.FAILED, TaskStatus.PENDING, True),  # an operator retry
        (TaskStatus.WAITING, TaskStatus.PENDING, False),
        (TaskStatus.FAILED, TaskStatus.SUCCEEDED, True),  # an operator skips it
        (TaskStatus.SUCCEEDED, TaskStatus.FAILED, False),
        (TaskStatus.SUCCEEDED, TaskStatus.PENDING, True),  # an operator's redelivery
        (TaskStatus.CANCELLED, TaskStatus.PENDING, False),
        (TaskStatus.PENDING, TaskStatus.WAITING, False),
    ],
)
def test_task_transitions(current: TaskStatus, new: TaskStatus, allowed: bool) -> None:
    assert can_transition(current, new) is allowed


def test_every_task_status_has_a_row_and_rows_name_only_task_statuses() -> None:
    assert set(TASK_TRANSITIONS) == set(TaskStatus)
    assert all(targets <= set(TaskStatus) for targets in TASK_TRANSITIONS.values())


def test_cancelled_tasks_never_change_again_and_succeeded_ones_only_by_redelivery() -> None:
    ended = {status for status, targets in TASK_TRANSITIONS.items() if not targets}
    assert ended == {TaskStatus.CANCELLED}
    assert TASK_TRANSITIONS[TaskStatus.SUCCEEDED] == {TaskStatus.PENDING}


def test_every_active_task_can_be_cancelled_and_can_end() -> None:
    for status in ACTIVE_TASK_STATUSES:
        assert can_transition(status, TaskStatus.CANCELLED)
        assert TASK_TRANSITIONS[status] & {TaskStatus.SUCCEEDED, TaskStatus.FAILED}


def test_active_statuses_are_those_holding_or_awaiting_work() -> None:
    assert {s for s in TaskStatus if s.is_active} == {
        TaskStatus.PENDING,
        TaskStatus.RUNNING,
        TaskStatus.WAITING,
    }
    assert {s for s in TaskStatus if s.is_ended} == set(TaskStatus) - ACTIVE_TASK_STATUSES


def test_only_success_and_cancellation_are_final_for_an_order() -> None:
    assert {s for s in OrderStatus if s.is_final} == {OrderStatus.SUCCESS, OrderStatus.CANCELLED}


def test_statuses_are_their_wire_strings() -> None:
    assert [s.value for s in OrderStatus] == [
        *("CREATED", "IN_PROGRESS", "SUCCESS", "UNHEALTHY", "FAILURE", "CANCELLED"),
    ]
    assert TaskStatus("TIMED_OUT") is TaskStatus.TIMED_OUT
