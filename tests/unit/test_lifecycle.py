"""The lifecycle core: one event at a time, against the transition table and the planner.

The property tests drive random valid flows (fan-out, joins of both kinds, several stages,
waits, feedback tasks) with random event sequences, duplicates, early and late feedback, lost
leases, timeouts and operator actions included, and check the invariants after every step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from ordermill.flows.lifecycle import (
    ARCHIVE_MARK,
    AttemptEnded,
    Claimed,
    ConfirmationAnswered,
    Decision,
    Event,
    FeedbackKind,
    FeedbackReceived,
    Note,
    Operator,
    OperatorAction,
    OrderState,
    Outcome,
    Refusal,
    Restart,
    TaskChange,
    TimelineEvent,
    TimerFired,
    WaitTimedOut,
    decide,
)
from ordermill.flows.model import FlowDefinition, Join, Stage, TaskDefinition
from ordermill.flows.status import OrderStatus, TaskStatus, can_transition
from tests.unit.test_planner import random_flows

PENDING, RUNNING, WAITING = TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.WAITING
SUCCEEDED, FAILED, TIMED_OUT = TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.TIMED_OUT
CANCELLED = TaskStatus.CANCELLED


def definition(key: str, *next_: str, join: Join = Join.ALL) -> TaskDefinition:
    return TaskDefinition(key=key, handler_key="wait", payload={}, next=next_, join=join)


# a → [b, c] → d (join all), then a second stage with e
JOIN = FlowDefinition(
    "join",
    "Join",
    (
        Stage(
            "make",
            ("a",),
            (
                definition("a", "b", "c"),
                definition("b", "d"),
                definition("c", "d"),
                definition("d"),
            ),
        ),
        Stage("ship", ("e",), (definition("e"),)),
    ),
)


def state(status: OrderStatus = OrderStatus.IN_PROGRESS, **tasks: TaskStatus) -> OrderState:
    return OrderState(status, tasks)


def decided(flow: FlowDefinition, current: OrderState, event: Event) -> Decision:
    answer = decide(flow, current, event)
    assert isinstance(answer, Decision), answer
    return answer


def test_the_second_predecessor_to_end_starts_the_join_whatever_path_ended_it() -> None:
    current = state(a=SUCCEEDED, b=RUNNING, c=WAITING)

    by_timer = decided(JOIN, current, TimerFired("c"))
    assert by_timer.start == ()
    then = decided(JOIN, by_timer.state, AttemptEnded("b", Outcome.SUCCEEDED))

    assert [ref.task_key for ref in then.start] == ["d"]
    assert then.state.tasks["d"] is PENDING
    assert TimelineEvent("task.queued", task_key="d") in then.events


def test_the_last_task_of_a_stage_opens_the_next_and_the_last_of_all_ends_the_order() -> None:
    current = state(a=SUCCEEDED, b=SUCCEEDED, c=SUCCEEDED, d=RUNNING)
    opened = decided(JOIN, current, AttemptEnded("d", Outcome.SUCCEEDED))
    assert [ref.task_key for ref in opened.start] == ["e"]
    assert TimelineEvent("stage.started", data={"stage": "ship"}) in opened.events

    ended = decided(
        JOIN, decided(JOIN, opened.state, Claimed("e")).state, AttemptEnded("e", Outcome.SUCCEEDED)
    )
    assert ended.state.status is OrderStatus.SUCCESS
    assert ended.events[-1] == TimelineEvent(
        "order.status", data={"from": "IN_PROGRESS", "to": "SUCCESS"}
    )


def test_events_that_do_not_apply_are_refused_with_a_reason() -> None:
    current = state(a=SUCCEEDED, b=RUNNING, c=WAITING)
    refusals = {
        TimerFired("b"): "task 'b' is RUNNING, not WAITING",
        AttemptEnded("c", Outcome.SUCCEEDED): "task 'c' is WAITING, not RUNNING",
        Claimed("a"): "task 'a' is SUCCEEDED, not PENDING",
        TimerFired("zz"): "the order has no task 'zz'",
        OperatorAction(
            Operator.START
        ): "only CREATED orders can be started; this one is IN_PROGRESS",
        OperatorAction(Operator.RETRY): "the order has no failed or timed-out task to retry",
        OperatorAction(
            Operator.REDELIVER, "b"
        ): "task 'b' has not ended; only ended tasks are redelivered",
        ConfirmationAnswered("a", confirmed=True): "task 'a' is SUCCEEDED; it takes no answer",
    }
    for event, reason in refusals.items():
        assert decide(JOIN, current, event) == Refusal(reason)
    assert str(Refusal("no").error()) == "no"


def test_feedback_is_held_while_the_attempt_runs_and_a_repeat_is_a_duplicate() -> None:
    running = state(a=RUNNING)
    early = decided(JOIN, running, FeedbackReceived("a", FeedbackKind.SUCCESS))
    assert (early.note, early.changes, early.state) == (Note.HELD, (), running)

    ended = decided(JOIN, running, FeedbackReceived("a", FeedbackKind.SUCCESS, held=True))
    assert ended.state.tasks["a"] is SUCCEEDED
    again = decided(JOIN, ended.state, FeedbackReceived("a", FeedbackKind.SUCCESS))
    assert again.note is Note.DUPLICATE
    assert again.changes == ()
    assert decide(JOIN, ended.state, FeedbackReceived("a", FeedbackKind.FAILURE)) == Refusal(
        "the task already ended as SUCCEEDED"
    )
    heartbeat = decided(JOIN, state(a=WAITING), FeedbackReceived("a", FeedbackKind.PROGRESS))
    assert (heartbeat.note, heartbeat.extend_wait) == (Note.RECORDED, "a")


def test_a_timed_out_wait_makes_the_order_unhealthy_and_a_late_answer_moves_it_on() -> None:
    timed_out = decided(JOIN, state(a=WAITING), WaitTimedOut("a"))
    assert timed_out.state.status is OrderStatus.UNHEALTHY
    answered = decided(JOIN, timed_out.state, ConfirmationAnswered("a", confirmed=True))
    assert answered.state.status is OrderStatus.IN_PROGRESS
    assert sorted(ref.task_key for ref in answered.start) == ["b", "c"]


def test_operator_actions() -> None:
    started = decided(JOIN, state(OrderStatus.CREATED), OperatorAction(Operator.START))
    assert [e.type for e in started.events] == [
        "order.status",
        "order.started",
        "stage.started",
        "task.queued",
    ]
    failed = state(OrderStatus.FAILURE, a=SUCCEEDED, b=FAILED, c=SUCCEEDED)
    retried = decided(JOIN, failed, OperatorAction(Operator.RETRY))
    assert retried.state.status is OrderStatus.IN_PROGRESS
    assert retried.state.tasks["b"] is PENDING
    cancelled = decided(JOIN, retried.state, OperatorAction(Operator.CANCEL))
    assert cancelled.state.status is OrderStatus.CANCELLED
    assert cancelled.state.tasks["b"] is CANCELLED
    assert cancelled.start == ()
    assert isinstance(decide(JOIN, cancelled.state, OperatorAction(Operator.CANCEL)), Refusal)
    redelivered = decided(
        JOIN,
        state(OrderStatus.SUCCESS, a=SUCCEEDED, b=SUCCEEDED, c=SUCCEEDED, d=SUCCEEDED, e=SUCCEEDED),
        OperatorAction(Operator.REDELIVER, "c"),
    )
    assert redelivered.state.status is OrderStatus.IN_PROGRESS
    assert redelivered.state.tasks["c"] is PENDING


def test_retrying_one_task_leaves_the_other_failed_tasks_as_they_are() -> None:
    failed = state(OrderStatus.FAILURE, a=SUCCEEDED, b=FAILED, c=FAILED)

    one = decided(JOIN, failed, OperatorAction(Operator.RETRY, "b"))

    assert one.changes == (TaskChange("b", FAILED, PENDING),)
    assert one.state.tasks["c"] is FAILED
    assert one.state.status is OrderStatus.FAILURE  # c still fails the order
    assert one.events[0] == TimelineEvent("order.retried", data={"tasks": ["b"]})
    assert decide(JOIN, failed, OperatorAction(Operator.RETRY, "a")) == Refusal(
        "task 'a' has not failed or timed out"
    )
    alone = decided(
        JOIN, state(OrderStatus.FAILURE, a=SUCCEEDED, b=FAILED), OperatorAction(Operator.RETRY, "b")
    )
    assert alone.state.status is OrderStatus.IN_PROGRESS


# --- properties over random flows and random events ----------------------------------------


EVENT_KINDS: tuple[Callable[[str], Event], ...] = (
    Claimed,
    *(lambda key, o=o: AttemptEnded(key, o) for o in Outcome),  # type: ignore[misc]
    *(lambda key, k=k: FeedbackReceived(key, k) for k in FeedbackKind),  # type: ignore[misc]
    lambda key: FeedbackReceived(key, FeedbackKind.SUCCESS, held=True),
    TimerFired,
    WaitTimedOut,
    lambda key: ConfirmationAnswered(key, confirmed=True),
    lambda key: ConfirmationAnswered(key, confirmed=False),
    lambda key: OperatorAction(Operator.REDELIVER, key),
    lambda key: OperatorAction(Operator.RETRY, key),
    lambda key: OperatorAction(Operator.SKIP, key, reason="booked by phone"),
)
OPERATOR: tuple[Event, ...] = (
    *(
        OperatorAction(action, reason="why")
        for action in (
            Operator.START,
            Operator.RETRY,
            Operator.CANCEL,
            Operator.PAUSE,
            Operator.RESUME,
        )
    ),
    Restart(1, 1),  # onto the same definition: what succeeded is kept
    Restart(1, 1, from_start=True),
)
RESTARTABLE = (OrderStatus.FAILURE, OrderStatus.UNHEALTHY, OrderStatus.CANCELLED)


@st.composite
def events_for(draw: st.DrawFn, flow: FlowDefinition) -> Event:
    keys = [d.key for stage in flow.stages for d in stage.task_definitions]
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(OPERATOR))
    return draw(st.sampled_from(EVENT_KINDS))(draw(st.sampled_from(keys)))


class Checker:
    """Applies decisions and asserts the invariants after each one."""

    def __init__(self, flow: FlowDefinition, current: OrderState) -> None:
        self.flow = flow
        self.state = current
        self.successes: Counter[str] = Counter()

    def step(self, event: Event) -> None:
        before = self.state
        answer = decide(self.flow, before, event)
        if isinstance(event, Restart) and event.from_start and before.status in RESTARTABLE:
            assert isinstance(answer, Decision), "a restart from the start is never refused"
        if isinstance(answer, Refusal):
            assert answer.reason
            return
        if before.paused and answer.state.paused:
            # (an attempt in flight whose lease was lost is taken over: it is not new work)
            started = [c for c in answer.changes if c.old is PENDING and c.new is RUNNING]
            assert not started, "a paused order started a task"
            assert not isinstance(event, (TimerFired, WaitTimedOut)), "a paused timer fired"
        for change in answer.changes:
            assert before.tasks[change.task_key] is change.old
            assert can_transition(change.old, change.new), change
            if change.new is PENDING and change.old.is_ended:
                self.successes[change.task_key] = 0  # an operator ran it again
            if change.new is SUCCEEDED:
                self.successes[change.task_key] += 1
                assert self.successes[change.task_key] == 1, "a task succeeded twice"
        if before.status is OrderStatus.CANCELLED and not isinstance(event, Restart):
            assert answer.start == ()
            assert answer.changes == ()
            assert answer.state.tasks == before.tasks
            assert answer.state.status is OrderStatus.CANCELLED
        after_changes = {**before.tasks, **{c.task_key: c.new for c in answer.changes}}
        for key, archived in answer.archive:
            assert ARCHIVE_MARK in archived
            assert archived not in after_changes
            after_changes[archived] = after_changes.pop(key)
            assert not after_changes[archived].is_active, "an archived task still runs"
            self.successes[key] = 0  # it runs again under the new version
        for ref in answer.start:
            assert ref.task_key not in after_changes, "a task was queued twice"
            earlier = [
                d.key for s in self.flow.stages[: ref.stage_index] for d in s.task_definitions
            ]
            assert all(after_changes.get(key) is SUCCEEDED for key in earlier), "stage out of order"
            stage = self.flow.stages[ref.stage_index]
            if ref.task_key not in stage.initial_task_keys:
                before_keys = stage.predecessors(ref.task_key)
                done = [key for key in before_keys if after_changes.get(key) is SUCCEEDED]
                if stage.task_definition(ref.task_key).join is Join.ALL:
                    assert done == list(before_keys), "a join started early"
                else:
                    assert done, "a join: any started with no predecessor done"
        assert set(answer.state.tasks) == set(after_changes) | {r.task_key for r in answer.start}
        self.state = answer.state

    def settle(self) -> None:
        """The engine does all it can while the outside world is silent: claim and succeed."""
        for _ in range(10_000):
            if self.state.paused:
                self.step(OperatorAction(Operator.RESUME))  # an operator lets it go on
            runnable = sorted(k for k, s in self.state.tasks.items() if s in (PENDING, RUNNING))
            if not runnable or self.state.status is OrderStatus.CANCELLED:
                break
            key = runnable[0]
            if self.state.tasks[key] is PENDING:
                self.step(Claimed(key))
            else:
                self.step(AttemptEnded(key, Outcome.SUCCEEDED))
        else:  # pragma: no cover
            raise AssertionError("the engine never settled")

    def assert_ended_or_waiting_outside(self) -> None:
        statuses = set(self.state.tasks.values())
        status = self.state.status
        if status in (OrderStatus.SUCCESS, OrderStatus.CANCELLED, OrderStatus.CREATED):
            return
        assert not statuses & {PENDING, RUNNING}
        named = {
            OrderStatus.FAILURE: FAILED,  # an operator's retry
            OrderStatus.UNHEALTHY: TIMED_OUT,  # a late answer or a retry
            OrderStatus.IN_PROGRESS: WAITING,  # feedback, a confirmation or a timer
        }
        assert named[status] in statuses, f"{status} with nothing to wait on: {self.state}"


SIMULATION = settings(max_examples=200, deadline=None, database=None)


@SIMULATION
@given(random_flows(), st.data())
def test_random_events_keep_every_invariant_and_every_order_ends_or_waits_outside(
    flow: FlowDefinition, data: st.DataObject
) -> None:
    checker = Checker(flow, OrderState(OrderStatus.CREATED))
    checker.step(OperatorAction(Operator.START))
    for _ in range(data.draw(st.integers(0, 60))):
        event = data.draw(events_for(flow))
        checker.step(event)
        if data.draw(st.integers(0, 4)) == 0:
            checker.step(event)  # the same event again
    checker.settle()
    checker.assert_ended_or_waiting_outside()


@SIMULATION
@given(random_flows(), st.data())
def test_without_failures_every_order_succeeds_whatever_path_ends_each_task(
    flow: FlowDefinition, data: st.DataObject
) -> None:
    checker = Checker(flow, OrderState(OrderStatus.CREATED))
    checker.step(OperatorAction(Operator.START))
    for _ in range(10_000):
        live = sorted(k for k, s in checker.state.tasks.items() if s.is_active)
        if not live:
            break
        key = data.draw(st.sampled_from(live))
        match checker.state.tasks[key]:
            case TaskStatus.PENDING:
                checker.step(Claimed(key))
            case TaskStatus.RUNNING:
                outcome = data.draw(
                    st.sampled_from([Outcome.SUCCEEDED, Outcome.WAITING, Outcome.LOST])
                )
                checker.step(AttemptEnded(key, outcome))
            case _:
                ender = data.draw(
                    st.sampled_from(
                        [
                            TimerFired(key),
                            FeedbackReceived(key, FeedbackKind.SUCCESS),
                            ConfirmationAnswered(key, confirmed=True),
                        ]
                    )
                )
                checker.step(ender)
    assert checker.state.status is OrderStatus.SUCCESS
    assert set(checker.state.tasks) == {d.key for s in flow.stages for d in s.task_definitions}
