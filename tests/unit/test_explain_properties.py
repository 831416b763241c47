"""explain over random flows in random reachable states (driven through the lifecycle core, as
its own property tests do), with random times: it never fails, names every unfinished task
exactly once, and never promises a finish before now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import event, given, settings
from hypothesis import strategies as st

from ordermill.flows.explain import OrderFacts, Pause, TaskFacts, Waits, explain
from ordermill.flows.lifecycle import ARCHIVE_MARK, Operator, OperatorAction, OrderState
from ordermill.flows.model import FlowDefinition
from ordermill.flows.status import OrderStatus, TaskStatus
from tests.unit.test_lifecycle import Checker, events_for
from tests.unit.test_planner import random_flows

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
OFFSETS = st.integers(-30 * 86_400, 30 * 86_400).map(lambda s: timedelta(seconds=s))
AGES = st.integers(0, 30 * 86_400).map(lambda s: timedelta(seconds=s))


@st.composite
def reached_states(draw: st.DrawFn, flow: FlowDefinition) -> OrderState:
    """A state the lifecycle core reaches from a start through random events."""
    checker = Checker(flow, OrderState(OrderStatus.CREATED))
    if draw(st.integers(0, 9)):
        checker.step(OperatorAction(Operator.START))
    for _ in range(draw(st.integers(0, 40))):
        checker.step(draw(events_for(flow)))
    return checker.state


@st.composite
def facts_of(draw: st.DrawFn, state: OrderState) -> OrderFacts:
    """The order's facts as storage would read them, with random times around NOW."""
    tasks = []
    for key, status in sorted(state.tasks.items()):
        due = draw(st.none() | OFFSETS.map(lambda d: NOW + d))
        held = status in (TaskStatus.PENDING, TaskStatus.WAITING) and state.paused
        tasks.append(
            TaskFacts(
                key,
                status,
                NOW - draw(AGES),
                due_at=None if held else due,
                held_due_at=due if held else None,
                wake=draw(st.sampled_from([None, "fire", "timeout"])),
                error=draw(st.none() | st.just("the connector answered 503")),
                lease_owner=draw(st.none() | st.just("vm:1:abc")),
                lease_expires_at=draw(st.none() | OFFSETS.map(lambda d: NOW + d)),
                asks_question=draw(st.booleans()),
                assignees=tuple(draw(st.lists(st.just("ops@example.com"), max_size=2))),
                last_progress=draw(st.none() | st.just("queued")),
                last_progress_at=draw(st.none() | AGES.map(lambda d: NOW - d)),
            )
        )
    deadlines = draw(st.lists(OFFSETS.map(lambda d: (NOW + d).isoformat()), max_size=3))
    body = {"orderLines": [{"title": f"line {n}", "deadline": d} for n, d in enumerate(deadlines)]}
    pause = (
        Pause(NOW - draw(AGES), "ops", draw(st.none() | st.just("stock"))) if state.paused else None
    )
    return OrderFacts(state.status, tuple(tasks), body, pause)


@settings(max_examples=300, deadline=None, database=None)
@given(random_flows(), st.data())
def test_explain_names_each_unfinished_task_once_and_finishes_no_earlier_than_now(
    flow: FlowDefinition, data: st.DataObject
) -> None:
    state = data.draw(reached_states(flow))
    facts = data.draw(facts_of(state))

    explanation = explain(flow, facts, NOW)

    event(f"order {state.status.value}{', paused' if state.paused else ''}")
    event("archived tasks" if any(ARCHIVE_MARK in key for key in state.tasks) else "no archive")
    event("late" if explanation.late_by is not None else "not late")

    named = [wait.task_key for wait in explanation.tasks]
    assert len(named) == len(set(named)), f"a task is named twice: {named}"
    live = {key for key, status in state.tasks.items() if status.is_active}
    if state.status in (OrderStatus.SUCCESS, OrderStatus.CANCELLED):
        assert not live
        assert named == []
        assert explanation.earliest_finish is None
    else:
        assert live <= set(named), f"unnamed: {live - set(named)}"
        for wait in explanation.tasks:
            known = wait.task_key in state.tasks
            assert known or wait.status == "NOT_STARTED"
            if not known:
                assert wait.waits is Waits.PREDECESSORS or state.status is OrderStatus.CREATED
            assert wait.words
        flow_keys = {d.key for stage in flow.all_stages for d in stage.task_definitions}
        missing = flow_keys - set(state.tasks)
        assert {w.task_key for w in explanation.tasks if w.status == "NOT_STARTED"} == missing
    assert explanation.earliest_finish is None or explanation.earliest_finish >= NOW
    if explanation.late_by is not None:
        assert explanation.late_by > timedelta(0)
        assert explanation.earliest_finish == explanation.deadline + explanation.late_by
    assert explanation.sentence
    assert all(ARCHIVE_MARK not in key for key in [*named, *explanation.critical_path])
