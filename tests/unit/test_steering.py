"""Operators steer orders through the lifecycle core: pause, resume, skip, cancel, restart."""

from __future__ import annotations

from dataclasses import replace

from ordermill.flows.lifecycle import (
    AttemptEnded,
    Claimed,
    FeedbackKind,
    FeedbackReceived,
    Operator,
    OperatorAction,
    OrderState,
    Outcome,
    Refusal,
    Restart,
    TimerFired,
    WaitTimedOut,
    decide,
)
from ordermill.flows.model import FlowDefinition, Stage, TaskDefinition
from ordermill.flows.status import OrderStatus
from tests.unit.test_lifecycle import (
    CANCELLED,
    FAILED,
    JOIN,
    PENDING,
    RUNNING,
    SUCCEEDED,
    TIMED_OUT,
    WAITING,
    decided,
    definition,
    state,
)


def paused(status: OrderStatus = OrderStatus.IN_PROGRESS, **tasks: object) -> OrderState:
    return replace(state(status, **tasks), paused=True)  # type: ignore[arg-type]


def test_pause_sets_the_flag_beside_the_status_and_resume_clears_it() -> None:
    running = state(a=SUCCEEDED, b=PENDING, c=RUNNING)
    held = decided(JOIN, running, OperatorAction(Operator.PAUSE, reason="material out"))
    assert held.state.paused
    assert held.state.status is OrderStatus.IN_PROGRESS
    assert held.state.tasks == running.tasks
    assert held.changes == ()
    assert [(e.type, e.data) for e in held.events] == [("order.paused", {"reason": "material out"})]
    again = decide(JOIN, held.state, OperatorAction(Operator.PAUSE))
    assert isinstance(again, Refusal)
    assert "already paused" in again.reason
    resumed = decided(JOIN, held.state, OperatorAction(Operator.RESUME))
    assert not resumed.state.paused
    assert resumed.events[0].type == "order.resumed"
    assert isinstance(decide(JOIN, resumed.state, OperatorAction(Operator.RESUME)), Refusal)


def test_final_orders_cannot_be_paused() -> None:
    for status in (OrderStatus.SUCCESS, OrderStatus.CANCELLED):
        answer = decide(JOIN, state(status, a=SUCCEEDED), OperatorAction(Operator.PAUSE))
        assert isinstance(answer, Refusal)
        assert status.value in answer.reason


def test_a_paused_order_claims_nothing_and_fires_no_timer_but_in_flight_work_finishes() -> None:
    held = paused(a=SUCCEEDED, b=PENDING, c=RUNNING)
    assert isinstance(decide(JOIN, held, Claimed("b")), Refusal)
    waiting = paused(a=SUCCEEDED, b=WAITING, c=WAITING)
    assert isinstance(decide(JOIN, waiting, TimerFired("b")), Refusal)
    assert isinstance(decide(JOIN, waiting, WaitTimedOut("c")), Refusal)
    # the attempt in flight is recorded; its successor is queued but does not start
    ended = decided(
        JOIN, paused(a=SUCCEEDED, b=SUCCEEDED, c=RUNNING), AttemptEnded("c", Outcome.SUCCEEDED)
    )
    assert ended.state.paused
    assert ended.state.tasks["d"] is PENDING
    assert isinstance(decide(JOIN, ended.state, Claimed("d")), Refusal)
    # feedback is accepted and applied
    fed = decided(JOIN, waiting, FeedbackReceived("b", FeedbackKind.SUCCESS))
    assert fed.state.tasks["b"] is SUCCEEDED
    assert fed.state.paused
    resumed = decided(JOIN, ended.state, OperatorAction(Operator.RESUME))
    assert decided(JOIN, resumed.state, Claimed("d")).state.tasks["d"] is RUNNING


def test_cancel_keeps_its_reason_and_lifts_a_pause() -> None:
    answer = decided(
        JOIN, paused(a=SUCCEEDED, b=PENDING), OperatorAction(Operator.CANCEL, reason="duplicate")
    )
    assert answer.state.status is OrderStatus.CANCELLED
    assert not answer.state.paused
    assert answer.events[0].type == "order.cancelled"
    assert answer.events[0].data == {"reason": "duplicate"}


def test_skip_marks_a_failed_task_succeeded_and_its_successors_run() -> None:
    failed = state(OrderStatus.FAILURE, a=SUCCEEDED, b=FAILED, c=SUCCEEDED)
    skipped = decided(JOIN, failed, OperatorAction(Operator.SKIP, "b", reason="booked by phone"))
    assert skipped.state.tasks["b"] is SUCCEEDED
    assert skipped.state.tasks["d"] is PENDING
    assert skipped.state.status is OrderStatus.IN_PROGRESS
    first = skipped.events[0]
    assert (first.type, first.task_key, first.data) == (
        "task.skipped",
        "b",
        {"reason": "booked by phone"},
    )
    for status in (WAITING, TIMED_OUT):
        moved = decided(
            JOIN, state(a=SUCCEEDED, b=status, c=SUCCEEDED), OperatorAction(Operator.SKIP, "b")
        )
        assert moved.state.tasks["b"] is SUCCEEDED


def test_skip_refuses_running_pending_succeeded_and_unknown_tasks() -> None:
    current = state(a=SUCCEEDED, b=RUNNING, c=PENDING)
    for key in ("a", "b", "c", "zz"):
        assert isinstance(decide(JOIN, current, OperatorAction(Operator.SKIP, key)), Refusal)
    done = state(OrderStatus.CANCELLED, a=SUCCEEDED, b=CANCELLED)
    assert isinstance(decide(JOIN, done, OperatorAction(Operator.SKIP, "b")), Refusal)


def connector(key: str, *next_: str) -> TaskDefinition:
    return TaskDefinition(key, "consume-rest-api", {"url": "https://erp.test"}, next=next_)


V1 = FlowDefinition("f", "F", (Stage("s", ("a",), (definition("a", "b"), connector("b"))),))
V2 = FlowDefinition(
    "f", "F", (Stage("s", ("a",), (definition("a", "b"), connector("b", "c"), definition("c"))),)
)


def test_restart_on_a_new_version_keeps_what_succeeded_and_archives_the_rest() -> None:
    failed = state(OrderStatus.FAILURE, a=SUCCEEDED, b=FAILED)
    answer = decided(V2, failed, Restart(1, 2, reason="URL fixed", previous=V1))
    assert answer.archive == (("b", "b~1"),)
    assert answer.state.status is OrderStatus.IN_PROGRESS
    assert dict(answer.state.tasks) == {"a": SUCCEEDED, "b~1": FAILED, "b": PENDING}
    restarted = answer.events[0]
    assert restarted.type == "order.restarted"
    assert restarted.data == {
        "fromVersion": 1,
        "toVersion": 2,
        "from": "failed",
        "kept": ["a"],
        "reason": "URL fixed",
    }
    assert ("order.status", {"from": "FAILURE", "to": "IN_PROGRESS"}) in [
        (e.type, e.data) for e in answer.events
    ]
    # a second restart archives under the next free name
    again = decided(
        V2, state(OrderStatus.FAILURE, **{**answer.state.tasks, "b": FAILED}), Restart(2, 2)
    )
    assert again.archive == (("b", "b~2"),)


def test_an_archived_task_moves_no_more_and_a_retry_leaves_it_alone() -> None:
    answer = decided(V2, state(OrderStatus.FAILURE, a=SUCCEEDED, b=FAILED), Restart(1, 2))
    failed_again = state(OrderStatus.FAILURE, **{**answer.state.tasks, "b": FAILED})
    for event in (
        OperatorAction(Operator.REDELIVER, "b~1"),
        OperatorAction(Operator.SKIP, "b~1"),
        Claimed("b~1"),
    ):
        refusal = decide(V2, failed_again, event)
        assert isinstance(refusal, Refusal), event
        assert "archived" in refusal.reason
    retried = decided(V2, failed_again, OperatorAction(Operator.RETRY))
    assert [(c.task_key, c.new) for c in retried.changes] == [("b", PENDING)]


def test_restart_from_start_runs_everything_again_and_cancels_live_tasks() -> None:
    unhealthy = state(OrderStatus.UNHEALTHY, a=SUCCEEDED, b=TIMED_OUT)
    answer = decided(V1, unhealthy, Restart(1, 1, from_start=True))
    assert answer.archive == (("a", "a~1"), ("b", "b~1"))
    assert answer.state.tasks["a"] is PENDING
    live = state(OrderStatus.UNHEALTHY, a=SUCCEEDED, b=TIMED_OUT, c=WAITING)
    moved = decided(V2, live, Restart(1, 2, from_start=True))
    assert [(c.task_key, c.new) for c in moved.changes] == [("c", CANCELLED)]


def test_restart_refuses_orders_that_did_not_stop_and_histories_the_version_cannot_hold() -> None:
    for status in (OrderStatus.IN_PROGRESS, OrderStatus.SUCCESS, OrderStatus.CREATED):
        refusal = decide(V2, state(status, a=SUCCEEDED), Restart(1, 2))
        assert isinstance(refusal, Refusal)
        assert status.value in refusal.reason
    other_kind = FlowDefinition(
        "f", "F", (Stage("s", ("a",), (connector("a", "b"), connector("b"))),)
    )
    refusal = decide(
        other_kind, state(OrderStatus.FAILURE, a=SUCCEEDED, b=FAILED), Restart(1, 2, previous=V1)
    )
    assert isinstance(refusal, Refusal)
    assert "'a'" in refusal.reason
    assert "from" in refusal.reason
    # b succeeded, but in the new version it follows x, which has never run
    reordered = FlowDefinition(
        "f",
        "F",
        (Stage("s", ("x",), (definition("x", "b"), connector("b", "a"), definition("a"))),),
    )
    refusal = decide(reordered, state(OrderStatus.FAILURE, a=FAILED, b=SUCCEEDED), Restart(1, 2))
    assert isinstance(refusal, Refusal)
    assert "'b'" in refusal.reason
    fresh = decided(
        reordered,
        state(OrderStatus.FAILURE, a=FAILED, b=SUCCEEDED),
        Restart(1, 2, from_start=True),
    )
    assert [ref.task_key for ref in fresh.start] == ["x"]
