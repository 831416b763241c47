"""The failure stage in the lifecycle core and in flow validation."""

from __future__ import annotations

from typing import Any

from ordermill.flows.lifecycle import (
    AttemptEnded,
    Claimed,
    Decision,
    Event,
    Operator,
    OperatorAction,
    OrderState,
    Outcome,
    Replan,
    decide,
)
from ordermill.flows.model import (
    FailureStage,
    FailureTrigger,
    FlowDefinition,
    Stage,
    TaskDefinition,
)
from ordermill.flows.status import OrderStatus, TaskStatus
from ordermill.flows.validation import parse_flow, validate_flow
from ordermill.flows.wire import flow_from_wire
from tests.unit.test_flow_validation import CATALOG

PENDING, RUNNING, SUCCEEDED = TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.SUCCEEDED
FAILED, TIMED_OUT = TaskStatus.FAILED, TaskStatus.TIMED_OUT


def task(key: str, *next_: str) -> TaskDefinition:
    return TaskDefinition(key=key, handler_key="wait", payload={}, next=next_)


def flow(on: frozenset[FailureTrigger] = frozenset({FailureTrigger.FAILURE})) -> FlowDefinition:
    return FlowDefinition(
        "f",
        "Failing",
        (Stage("make", ("a",), (task("a", "b"), task("b"))),),
        failure_stage=FailureStage(Stage("tell", ("n1",), (task("n1", "n2"), task("n2"))), on),
    )


def run(definition: FlowDefinition, state: OrderState, event: Event) -> Decision:
    decision = decide(definition, state, event)
    assert isinstance(decision, Decision), decision
    return decision


def finish(definition: FlowDefinition, state: OrderState, key: str, outcome: Outcome) -> Decision:
    state = run(definition, state, Claimed(key)).state
    return run(definition, state, AttemptEnded(key, outcome))


def types(decision: Decision) -> list[str]:
    return [event.type for event in decision.events]


def test_a_failure_starts_the_failure_stage_and_keeps_the_order_failed() -> None:
    definition = flow()
    state = OrderState(OrderStatus.IN_PROGRESS, {"a": RUNNING})
    failed = run(definition, state, AttemptEnded("a", Outcome.PERMANENT))
    assert failed.state.status is OrderStatus.FAILURE
    assert [ref.task_key for ref in failed.start] == ["n1"]
    assert failed.start[0].stage_index == 1
    started = [e for e in failed.events if e.type == "stage.started"]
    assert len(started) == 1
    assert started[0].data == {
        "stage": "tell",
        "failureStage": True,
        "trigger": {"event": "order.failed", "taskKey": "a"},
    }
    # The failure stage runs to its end; the order stays FAILURE throughout.
    state = failed.state
    one = finish(definition, state, "n1", Outcome.SUCCEEDED)
    assert [ref.task_key for ref in one.start] == ["n2"]
    assert one.state.status is OrderStatus.FAILURE
    two = finish(definition, one.state, "n2", Outcome.PERMANENT)
    assert two.state.status is OrderStatus.FAILURE
    assert not two.start
    assert "order.status" not in types(two)


def test_a_failure_stage_runs_once_per_failure_and_again_after_a_retry_fails() -> None:
    definition = flow()
    state = OrderState(OrderStatus.FAILURE, {"a": FAILED, "n1": SUCCEEDED, "n2": SUCCEEDED})
    retried = run(definition, state, OperatorAction(Operator.RETRY))
    assert retried.state.status is OrderStatus.IN_PROGRESS
    # the retry re-runs the failed ordinary task only, not the failure stage
    assert {c.task_key for c in retried.changes} == {"a"}
    assert retried.state.task("n1") is SUCCEEDED
    # it succeeds this time: the failure stage does not run
    ok = finish(definition, retried.state, "a", Outcome.SUCCEEDED)
    assert ok.state.task("n1") is SUCCEEDED
    assert [ref.task_key for ref in ok.start] == ["b"]
    # it fails again: the failure stage runs again from its initial task, then its successor
    again = finish(definition, ok.state, "b", Outcome.PERMANENT)
    assert again.state.status is OrderStatus.FAILURE
    assert [(c.task_key, c.new) for c in again.changes if c.task_key == "n1"] == [("n1", PENDING)]
    assert "stage.restarted" in types(again)
    after = finish(definition, again.state, "n1", Outcome.SUCCEEDED)
    assert after.state.task("n2") is PENDING
    done = finish(definition, after.state, "n2", Outcome.SUCCEEDED)
    assert done.state.status is OrderStatus.FAILURE
    assert not done.start
    assert all(c.new is not PENDING for c in done.changes)


def test_the_failure_stage_does_not_run_twice_while_the_order_stays_failed() -> None:
    definition = flow()
    state = OrderState(OrderStatus.FAILURE, {"a": FAILED, "n1": SUCCEEDED, "n2": SUCCEEDED})
    refusal = decide(definition, state, Replan())
    assert not isinstance(refusal, Decision)


def test_unhealthy_starts_it_only_when_the_flow_says_so() -> None:
    state = OrderState(OrderStatus.IN_PROGRESS, {"a": RUNNING})
    plain = run(flow(), state, AttemptEnded("a", Outcome.TIMED_OUT))
    assert plain.state.status is OrderStatus.UNHEALTHY
    assert not plain.start
    both = frozenset({FailureTrigger.FAILURE, FailureTrigger.UNHEALTHY})
    told = run(flow(both), state, AttemptEnded("a", Outcome.TIMED_OUT))
    assert told.state.status is OrderStatus.UNHEALTHY
    assert [ref.task_key for ref in told.start] == ["n1"]
    started = next(e for e in told.events if e.type == "stage.started")
    assert started.data is not None
    assert started.data["trigger"] == {"event": "order.unhealthy", "taskKey": "a"}


def test_a_succeeding_order_never_starts_it() -> None:
    definition = flow()
    state = OrderState(OrderStatus.IN_PROGRESS, {"a": SUCCEEDED, "b": RUNNING})
    done = run(definition, state, AttemptEnded("b", Outcome.SUCCEEDED))
    assert done.state.status is OrderStatus.SUCCESS
    assert not done.start


def document(failure: Any) -> dict[str, Any]:
    return {
        "key": "made",
        "name": "Made to order",
        "stages": [
            {
                "key": "make",
                "initialTaskDefinitionKeys": ["a"],
                "taskDefinitions": [{"key": "a", "handlerKey": "wait", "payload": {}}],
            }
        ],
        "failureStage": failure,
    }


def pointers(doc: dict[str, Any]) -> dict[str, str]:
    return {p.pointer: p.message for p in validate_flow(doc, CATALOG)}


def test_validation_points_into_the_failure_stage() -> None:
    problems = pointers(
        document(
            {
                "key": "make",
                "initialTaskDefinitionKeys": ["a", "x"],
                "taskDefinitions": [
                    {"key": "a", "handlerKey": "wait"},
                    {"key": "x", "handlerKey": "nope", "nxt": []},
                ],
                "on": ["FAILURE", "SUCCESS"],
            }
        )
    )
    assert "duplicate stage key" in problems["/failureStage/key"]
    assert "duplicate task definition key" in problems["/failureStage/taskDefinitions/0/key"]
    assert "unknown handler" in problems["/failureStage/taskDefinitions/1/handlerKey"]
    assert "next" in problems["/failureStage/taskDefinitions/1/nxt"]
    assert "UNHEALTHY" in problems["/failureStage/on/1"]


def test_next_never_crosses_into_the_failure_stage() -> None:
    doc = document(
        {
            "key": "tell",
            "initialTaskDefinitionKeys": ["n1"],
            "taskDefinitions": [{"key": "n1", "handlerKey": "wait"}],
        }
    )
    doc["stages"][0]["taskDefinitions"][0]["next"] = ["n1"]
    problems = pointers(doc)
    assert "(/failureStage)" in problems["/stages/0/taskDefinitions/0/next/0"]


def test_a_valid_failure_stage_round_trips_through_the_wire() -> None:
    doc = document(
        {
            "key": "tell",
            "initialTaskDefinitionKeys": ["n1"],
            "taskDefinitions": [{"key": "n1", "handlerKey": "wait", "next": []}],
            "on": ["UNHEALTHY", "FAILURE"],
        }
    )
    assert pointers(doc) == {}
    parsed = parse_flow(doc, CATALOG)
    assert parsed.failure_stage is not None
    assert parsed.failure_stage.on == {FailureTrigger.FAILURE, FailureTrigger.UNHEALTHY}
    assert flow_from_wire(parsed.to_wire()) == parsed
    assert parsed.to_wire()["failureStage"]["on"] == ["FAILURE", "UNHEALTHY"]
    plain = document(doc["failureStage"] | {"on": None})
    assert "on" not in parse_flow(plain, CATALOG).to_wire()["failureStage"]
    assert parse_flow(plain, CATALOG).content_hash() != parsed.content_hash()
