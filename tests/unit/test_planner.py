"""The planner (SPEC §3.3): examples, then random valid flows run in random completion orders."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from ordermill.errors import Problem
from ordermill.flows import (
    FlowDefinition,
    Join,
    OrderStatus,
    Plan,
    Stage,
    TaskDefinition,
    TaskRef,
    TaskStatus,
    derive_order_status,
    parse_flow,
    plan,
    validate_flow,
)

PENDING = TaskStatus.PENDING
SUCCEEDED = TaskStatus.SUCCEEDED
FAILED = TaskStatus.FAILED
TIMED_OUT = TaskStatus.TIMED_OUT


def definition(key: str, *next_keys: str, join: Join = Join.ALL) -> TaskDefinition:
    return TaskDefinition(key=key, handler_key="wait", next=next_keys, join=join)


# s1: a → b, a → c, b → d (all), c → d (all), b → e (any), c → e (any); f is initial and
#     also listed by a. s2: g → h.
FLOW = FlowDefinition(
    key="diamond",
    name="Diamond then a line",
    stages=(
        Stage(
            key="s1",
            initial_task_keys=("a", "f"),
            task_definitions=(
                definition("a", "b", "c", "f"),
                definition("b", "d", "e"),
                definition("c", "d", "e"),
                definition("d"),
                definition("e", join=Join.ANY),
                definition("f"),
            ),
        ),
        Stage(key="s2", initial_task_keys=("g",), task_definitions=(definition("g", "h"),)),
    ),
)
S1_DONE = dict.fromkeys("abcdef", SUCCEEDED)


def refs(stage_index: int, stage_key: str, *keys: str) -> tuple[TaskRef, ...]:
    return tuple(TaskRef(stage_index, stage_key, key) for key in keys)


def test_order_not_started_is_created_and_starts_nothing() -> None:
    assert plan(FLOW, {}, started=False) == Plan((), OrderStatus.CREATED, 0, None)


def test_cancelled_order_starts_nothing_whatever_is_runnable() -> None:
    assert plan(FLOW, {"a": SUCCEEDED}, cancelled=True) == Plan((), OrderStatus.CANCELLED, 0, None)


def test_starting_an_order_starts_every_initial_task_of_the_first_stage() -> None:
    assert plan(FLOW, {}) == Plan(refs(0, "s1", "a", "f"), OrderStatus.IN_PROGRESS, 0, "s1")


def test_plan_is_idempotent_once_its_tasks_exist() -> None:
    assert plan(FLOW, {"a": PENDING, "f": PENDING}) == Plan((), OrderStatus.IN_PROGRESS, 0, None)


def test_success_starts_the_next_tasks_but_not_those_already_there() -> None:
    result = plan(FLOW, {"a": SUCCEEDED, "f": TaskStatus.RUNNING})
    assert result == Plan(refs(0, "s1", "b", "c"), OrderStatus.IN_PROGRESS, 0, None)


def test_join_all_waits_for_every_predecessor_and_join_any_for_one() -> None:
    statuses = {"a": SUCCEEDED, "f": SUCCEEDED, "b": SUCCEEDED, "c": TaskStatus.WAITING}
    assert plan(FLOW, statuses).start == refs(0, "s1", "e")
    assert plan(FLOW, {**statuses, "c": SUCCEEDED, "e": PENDING}).start == refs(0, "s1", "d")


def test_next_stage_starts_only_when_every_task_of_the_stage_succeeded() -> None:
    assert plan(FLOW, {**S1_DONE, "e": PENDING}).start == ()
    assert plan(FLOW, S1_DONE) == Plan(refs(1, "s2", "g"), OrderStatus.IN_PROGRESS, 1, "s2")


def test_order_succeeds_when_every_stage_succeeded() -> None:
    done = {**S1_DONE, "g": SUCCEEDED, "h": SUCCEEDED}
    assert plan(FLOW, done) == Plan((), OrderStatus.SUCCESS, None, None)


def test_failed_task_fails_the_order_and_nothing_new_starts() -> None:
    statuses = {"a": SUCCEEDED, "f": FAILED}
    assert plan(FLOW, statuses) == Plan((), OrderStatus.FAILURE, 0, None)


def test_failure_outranks_a_timeout() -> None:
    assert plan(FLOW, {"a": TIMED_OUT, "f": FAILED}).order_status is OrderStatus.FAILURE


def test_timed_out_task_makes_the_order_unhealthy_and_holds_back_only_its_successors() -> None:
    statuses = {"a": SUCCEEDED, "f": SUCCEEDED, "b": TIMED_OUT, "c": SUCCEEDED}
    assert plan(FLOW, statuses) == Plan(refs(0, "s1", "e"), OrderStatus.UNHEALTHY, 0, None)


def test_late_success_of_a_timed_out_task_resumes_the_flow() -> None:
    statuses = {"a": SUCCEEDED, "f": SUCCEEDED, "b": SUCCEEDED, "c": SUCCEEDED, "e": SUCCEEDED}
    assert plan(FLOW, statuses) == Plan(refs(0, "s1", "d"), OrderStatus.IN_PROGRESS, 0, None)


def test_unknown_task_keys_and_tasks_of_later_stages_do_not_confuse_the_plan() -> None:
    statuses = {"zz": FAILED, "g": PENDING, "a": PENDING, "f": PENDING}
    assert plan(FLOW, statuses) == Plan((), OrderStatus.IN_PROGRESS, 0, None)


def test_derive_order_status_is_the_status_of_the_plan() -> None:
    assert derive_order_status(FLOW, {"b": TIMED_OUT}) is OrderStatus.UNHEALTHY
    assert derive_order_status(FLOW, {}, started=False) is OrderStatus.CREATED


class WaitOnlyCatalog:
    def has_handler(self, key: str) -> bool:
        return key == "wait"

    def handler_keys(self) -> list[str]:
        return ["wait"]

    def validate_payload(self, key: str, payload: object) -> list[Problem]:
        return []


@st.composite
def random_flows(draw: st.DrawFn) -> FlowDefinition:
    """Random stages of random DAGs: links only run forward in a hidden order, every task
    without a predecessor is initial, a few with one are too, joins and order are random."""
    stages = []
    for s in range(draw(st.integers(1, 3))):
        keys = [f"s{s}.t{i}" for i in range(draw(st.integers(1, 6)))]
        links: dict[str, list[str]] = {key: [] for key in keys}
        for j, later in enumerate(keys):
            for earlier in keys[:j]:
                if draw(st.booleans()):
                    links[earlier].append(later)
        linked = {target for targets in links.values() for target in targets}
        initial = [k for k in keys if k not in linked or draw(st.integers(0, 4)) == 0]
        definitions = tuple(
            definition(key, *draw(st.permutations(links[key])), join=draw(st.sampled_from(Join)))
            for key in draw(st.permutations(keys))
        )
        stages.append(Stage(f"stage-{s}", tuple(draw(st.permutations(initial))), definitions))
    return FlowDefinition("random", "Random flow", tuple(stages))


def check_and_apply(flow: FlowDefinition, statuses: dict[str, TaskStatus], result: Plan) -> None:
    """Assert the plan's starts respect the semantics, then create them as PENDING."""
    for ref in result.start:
        stage = flow.stages[ref.stage_index]
        assert ref.task_key not in statuses, "a task started twice"
        assert ref.stage_key == stage.key
        assert ref.stage_index == result.stage_index
        earlier = [d.key for s in flow.stages[: ref.stage_index] for d in s.task_definitions]
        assert all(statuses.get(key) == SUCCEEDED for key in earlier)
        if ref.task_key not in stage.initial_task_keys:
            before = stage.predecessors(ref.task_key)
            succeeded = [key for key in before if statuses.get(key) == SUCCEEDED]
            if stage.task_definition(ref.task_key).join is Join.ALL:
                assert before
                assert succeeded == list(before)
            else:
                assert succeeded
    if result.stage_started is not None:
        stage = flow.stages[result.stage_index or 0]
        assert result.stage_started == stage.key
        assert not any(d.key in statuses for d in stage.task_definitions)
    statuses.update(dict.fromkeys((ref.task_key for ref in result.start), PENDING))


def active(statuses: Mapping[str, TaskStatus]) -> list[str]:
    return sorted(key for key, status in statuses.items() if status.is_active)


def run_to_the_end(
    flow: FlowDefinition, statuses: dict[str, TaskStatus], data: st.DataObject
) -> Plan:
    """Plan, create, complete one random active task with success, until nothing is active."""
    while True:
        result = plan(flow, statuses)
        check_and_apply(flow, statuses, result)
        if not active(statuses):
            return result
        statuses[data.draw(st.sampled_from(active(statuses)))] = SUCCEEDED


def advance(flow: FlowDefinition, statuses: dict[str, TaskStatus], data: st.DataObject) -> str:
    """Run a random number of steps short of the end; returns a random active task."""
    total = sum(len(stage.task_definitions) for stage in flow.stages)
    for _ in range(data.draw(st.integers(0, total - 1))):
        check_and_apply(flow, statuses, plan(flow, statuses))
        statuses[data.draw(st.sampled_from(active(statuses)))] = SUCCEEDED
    check_and_apply(flow, statuses, plan(flow, statuses))
    return data.draw(st.sampled_from(active(statuses)))


def all_keys(flow: FlowDefinition) -> set[str]:
    return {d.key for stage in flow.stages for d in stage.task_definitions}


SIMULATION = settings(max_examples=120, deadline=None, database=None)


@SIMULATION
@given(random_flows())
def test_random_valid_flows_validate_and_survive_the_wire(flow: FlowDefinition) -> None:
    assert validate_flow(flow.to_wire(), WaitOnlyCatalog()) == []
    assert parse_flow(flow.to_wire(), WaitOnlyCatalog()) == flow


@SIMULATION
@given(random_flows(), st.data())
def test_every_random_completion_order_ends_in_success(
    flow: FlowDefinition, data: st.DataObject
) -> None:
    statuses: dict[str, TaskStatus] = {}
    assert run_to_the_end(flow, statuses, data) == Plan((), OrderStatus.SUCCESS, None, None)
    assert set(statuses) == all_keys(flow)


@SIMULATION
@given(random_flows(), st.data())
def test_after_a_failure_the_order_fails_and_nothing_ever_starts(
    flow: FlowDefinition, data: st.DataObject
) -> None:
    statuses: dict[str, TaskStatus] = {}
    statuses[advance(flow, statuses, data)] = FAILED
    while True:
        result = plan(flow, statuses)
        assert (result.order_status, result.start) == (OrderStatus.FAILURE, ())
        if not active(statuses):
            break
        statuses[data.draw(st.sampled_from(active(statuses)))] = data.draw(
            st.sampled_from([SUCCEEDED, FAILED])
        )


@SIMULATION
@given(random_flows(), st.data())
def test_a_timeout_holds_back_its_successors_until_it_succeeds_late(
    flow: FlowDefinition, data: st.DataObject
) -> None:
    statuses: dict[str, TaskStatus] = {}
    late = advance(flow, statuses, data)
    statuses[late] = TIMED_OUT
    stage_index = flow.stage_index_of(late)
    stage = flow.stages[stage_index]
    waiting_on_it = {
        d.key
        for d in stage.task_definitions
        if d.join is Join.ALL and late in stage.predecessors(d.key)
    }
    while True:
        result = plan(flow, statuses)
        assert result.order_status is OrderStatus.UNHEALTHY
        assert result.stage_index == stage_index
        assert not waiting_on_it & {ref.task_key for ref in result.start}
        check_and_apply(flow, statuses, result)
        if not active(statuses):
            break
        statuses[data.draw(st.sampled_from(active(statuses)))] = SUCCEEDED
    statuses[late] = SUCCEEDED
    assert run_to_the_end(flow, statuses, data).order_status is OrderStatus.SUCCESS
    assert set(statuses) == all_keys(flow)
