"""Flow validation (SPEC §2.2): every rule, every problem at once, never a crash."""

from __future__ import annotations

import copy
import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ordermill.errors import InvalidFlow, Problem
from ordermill.flows import (
    FlowDefinition,
    Join,
    RetryPolicy,
    Stage,
    TaskDefinition,
    flow_json_schema,
    parse_flow,
    validate_flow,
)
from ordermill.flows.schema import FLOW_JSON_SCHEMA
from ordermill.flows.validation import KEY_PATTERN

T0 = "/stages/0/taskDefinitions/0"
T1 = "/stages/0/taskDefinitions/1"
KEY_RULE = (
    "is not a valid key: use 1 to 128 letters, digits, '.', '_' or '-', "
    "starting with a letter or a digit"
)


class FakeCatalog:
    """Two handlers: consume-rest-api (payload.uri must be an https URL) and wait."""

    def has_handler(self, key: str) -> bool:
        return key in self.handler_keys()

    def handler_keys(self) -> list[str]:
        return ["wait", "consume-rest-api"]

    def validate_payload(self, key: str, payload: object) -> list[Problem]:
        if key != "consume-rest-api":
            return []
        uri = payload.get("uri") if isinstance(payload, dict) else None
        if isinstance(uri, str) and uri.startswith("https://"):
            return []
        return [Problem("/uri", "must be an https URL")]


CATALOG = FakeCatalog()


def task(key: str, handler: str = "wait", **fields: Any) -> dict[str, Any]:
    return {"key": key, "handlerKey": handler, "payload": {}, "next": [], **fields}


def stage(key: str, *tasks: dict[str, Any], initial: list[str] | None = None) -> dict[str, Any]:
    return {
        "key": key,
        "initialTaskDefinitionKeys": [tasks[0]["key"]] if initial is None else initial,
        "taskDefinitions": list(tasks),
    }


def document(*stages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "key": "flow-1",
        "name": "Test flow",
        "stages": list(stages) or [stage("stage-1", task("task-1"))],
        **fields,
    }


def problems(doc: object) -> list[tuple[str, str]]:
    return [(p.pointer, p.message) for p in validate_flow(doc, CATALOG)]


def pointers(doc: object) -> list[str]:
    return [p.pointer for p in validate_flow(doc, CATALOG)]


SPEC_EXAMPLE = {
    "key": "made-to-order",
    "name": "Made to order (EU)",
    "spaceKey": "acme",
    "stages": [
        {
            "key": "stage-1",
            "initialTaskDefinitionKeys": ["task-1"],
            "taskDefinitions": [
                {
                    "key": "task-1",
                    "handlerKey": "consume-rest-api",
                    "payload": {"uri": "https://erp.example.com/orders", "sendsFeedback": False},
                    "timeoutDuration": 1000,
                    "next": [],
                }
            ],
        }
    ],
}

# The example flow of reference/make-your-own-connector.txt, which has no key and no name.
REFERENCE_STAGES = [
    {
        "key": "stage-1",
        "taskDefinitions": [
            {
                "key": "task-1",
                "handlerKey": "consume-rest-api",
                "payload": {"uri": "https://<your_endpoint_url>", "sendsFeedback": False},
                "timeoutDuration": 1000,
                "next": [],
            }
        ],
        "initialTaskDefinitionKeys": ["task-1"],
    }
]


def test_spec_example_parses_to_its_definition() -> None:
    assert parse_flow(SPEC_EXAMPLE, CATALOG) == FlowDefinition(
        key="made-to-order",
        name="Made to order (EU)",
        space_key="acme",
        stages=(
            Stage(
                key="stage-1",
                initial_task_keys=("task-1",),
                task_definitions=(
                    TaskDefinition(
                        key="task-1",
                        handler_key="consume-rest-api",
                        payload={"uri": "https://erp.example.com/orders", "sendsFeedback": False},
                        timeout_ms=1000,
                    ),
                ),
            ),
        ),
    )


def test_reference_example_is_valid_once_wrapped_with_key_and_name() -> None:
    wrapped = {"key": "my-connector", "name": "My own connector", "stages": REFERENCE_STAGES}
    assert problems(wrapped) == []


def test_the_bare_reference_document_needs_only_the_key_it_is_saved_under() -> None:
    bare = {"stages": REFERENCE_STAGES}
    assert problems(bare) == [("/key", "required field 'key' is missing")]
    assert validate_flow(bare, CATALOG, saved_under="seed-flow") == []
    flow = parse_flow(bare, CATALOG, saved_under="seed-flow")
    assert (flow.key, flow.name) == ("seed-flow", "seed-flow")


def test_a_missing_name_defaults_to_the_key_even_a_short_one() -> None:
    flow = parse_flow({"key": "seed", "stages": REFERENCE_STAGES}, CATALOG)
    assert (flow.key, flow.name) == ("seed", "seed")
    assert parse_flow({"key": "seed", "name": None, "stages": REFERENCE_STAGES}, CATALOG) == flow


def test_a_name_that_is_given_is_checked_whatever_the_key_source() -> None:
    bare = {"name": "abc", "stages": REFERENCE_STAGES}
    assert [
        (p.pointer, p.message) for p in validate_flow(bare, CATALOG, saved_under="seed-flow")
    ] == [("/name", "must have at least 5 characters")]
    assert problems({**bare, "key": "seed-flow"}) == [("/name", "must have at least 5 characters")]


def test_a_document_key_must_be_the_key_it_is_saved_under_and_both_are_checked() -> None:
    doc = {"key": "own-key", "stages": REFERENCE_STAGES}
    assert parse_flow(doc, CATALOG, saved_under="own-key").key == "own-key"
    assert [(p.pointer, p.message) for p in validate_flow(doc, CATALOG, saved_under="other")] == [
        ("/key", "must be 'other', the key it is saved under")
    ]
    bad_default = validate_flow({"stages": REFERENCE_STAGES}, CATALOG, saved_under="no spaces")
    assert [(p.pointer, p.message) for p in bad_default] == [
        (
            "/key",
            "'no spaces' is not a valid key: use 1 to 128 letters, digits, '.', '_' or '-', "
            "starting with a letter or a digit",
        )
    ]


def test_wire_form_of_a_parsed_flow_parses_to_the_same_flow() -> None:
    doc = document(
        stage(
            "s1",
            task("a", next=["b", "c"], retry={"maxAttempts": 3}, description="first"),
            task("b", next=["d"], timeoutDuration=5),
            task("c", next=["d"]),
            task("d", join="any"),
        ),
        stage("s2", task("e", "consume-rest-api", payload={"uri": "https://x.example"})),
    )
    flow = parse_flow(doc, CATALOG)
    assert parse_flow(flow.to_wire(), CATALOG) == flow


def test_missing_payload_and_next_default_to_empty_and_null_optionals_mean_absent() -> None:
    doc = document(
        stage(
            "s1",
            {
                "key": "a",
                "handlerKey": "wait",
                "timeoutDuration": None,
                "retry": None,
                "join": None,
                "description": None,
            },
        ),
        spaceKey=None,
    )
    flow = parse_flow(doc, CATALOG)
    assert flow.stages[0].task_definitions == (TaskDefinition(key="a", handler_key="wait"),)
    assert flow.space_key is None


def test_parse_flow_raises_invalid_flow_listing_every_problem() -> None:
    doc = document(stage("s1", task("a", next=["zz"]), task("b", "nope")))
    with pytest.raises(InvalidFlow) as raised:
        parse_flow(doc, CATALOG)
    assert raised.value.problems == validate_flow(doc, CATALOG)
    assert [p.pointer for p in raised.value.problems] == [
        f"{T1}/handlerKey",
        f"{T0}/next/0",
        T1,
    ]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (None, "must be an object, not null"),
        ([], "must be an object, not an array"),
        ("flow", "must be an object, not a string"),
        (3.5, "must be an object, not a number"),
    ],
)
def test_document_that_is_not_an_object_is_one_problem_at_the_root(
    doc: object, message: str
) -> None:
    assert problems(doc) == [("", message)]


def test_every_missing_required_field_is_reported_where_it_belongs() -> None:
    assert problems({}) == [
        ("/key", "required field 'key' is missing"),
        ("/stages", "required field 'stages' is missing"),
    ]
    assert problems(document({"taskDefinitions": [{}]})) == [
        ("/stages/0/key", "required field 'key' is missing"),
        (
            "/stages/0/initialTaskDefinitionKeys",
            "required field 'initialTaskDefinitionKeys' is missing",
        ),
        (f"{T0}/key", "required field 'key' is missing"),
        (f"{T0}/handlerKey", "required field 'handlerKey' is missing"),
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("handlerKey", None, "must be a string, not null"),
        ("payload", [], "must be an object, not an array"),
        ("next", "b", "must be an array, not a string"),
        ("timeoutDuration", "1000", "must be an integer, not a string"),
        ("timeoutDuration", 1000.0, "must be an integer, not a number"),
        ("timeoutDuration", True, "must be an integer, not a boolean"),
        ("retry", 3, "must be an object, not an integer"),
        ("join", False, "must be 'all' or 'any', not a boolean"),
        ("description", {}, "must be a string, not an object"),
    ],
)
def test_task_definition_field_of_the_wrong_type_is_reported(
    field: str, value: object, message: str
) -> None:
    doc = document(stage("s1", {**task("a"), field: value}, initial=["a"]))
    assert problems(doc) == [(f"{T0}/{field}", message)]


def test_task_definition_key_of_the_wrong_type_leaves_links_to_it_unresolved() -> None:
    doc = document(stage("s1", task(7), initial=["7"]))  # type: ignore[arg-type]
    assert problems(doc) == [
        (f"{T0}/key", "must be a string, not an integer"),
        ("/stages/0/initialTaskDefinitionKeys/0", "this stage has no task definition '7'"),
    ]


def test_wrong_types_of_flow_and_stage_fields_are_reported() -> None:
    assert problems({"key": 1, "name": [], "spaceKey": {}, "stages": {}}) == [
        ("/key", "must be a string, not an integer"),
        ("/name", "must be a string, not an array"),
        ("/spaceKey", "must be a string, not an object"),
        ("/stages", "must be an array, not an object"),
    ]
    assert problems(
        document({"key": "s", "initialTaskDefinitionKeys": "a", "taskDefinitions": None})
    ) == [
        ("/stages/0/initialTaskDefinitionKeys", "must be an array, not a string"),
        ("/stages/0/taskDefinitions", "must be an array, not null"),
    ]


def test_non_string_entries_of_key_lists_are_reported() -> None:
    doc = document(stage("s1", task("a", next=[None]), initial=["a", 1]))
    assert problems(doc) == [
        (
            "/stages/0/initialTaskDefinitionKeys/1",
            "must be a task definition key (a string), not an integer",
        ),
        (f"{T0}/next/0", "must be a task definition key (a string), not null"),
    ]


@pytest.mark.parametrize("name", ["abcd", "  abc   ", ""])
def test_name_needs_five_characters_besides_surrounding_spaces(name: str) -> None:
    assert problems(document(name=name)) == [("/name", "must have at least 5 characters")]


def test_name_of_exactly_five_characters_is_valid() -> None:
    assert problems(document(name="abcde")) == []


def test_name_longer_than_two_hundred_characters_is_rejected() -> None:
    assert problems(document(name="x" * 201)) == [("/name", "must have at most 200 characters")]


@pytest.mark.parametrize("key", ["", "-a", ".a", "a b", "a/b", "é", "a" * 129, "a\n"])
def test_malformed_keys_are_rejected_for_flow_space_stage_and_task(key: str) -> None:
    shown = f"'{key}'" if len(key) <= 60 else f"'{key[:60]}…'"
    doc = document(stage(key, task(key)), key=key, spaceKey=key)
    assert problems(doc) == [
        ("/key", f"{shown} {KEY_RULE}"),
        ("/spaceKey", f"{shown} {KEY_RULE}"),
        ("/stages/0/key", f"{shown} {KEY_RULE}"),
        (f"{T0}/key", f"{shown} {KEY_RULE}"),
    ]


@pytest.mark.parametrize("key", ["a", "0", "A.b_c-1", "a" * 128])
def test_well_formed_keys_are_accepted(key: str) -> None:
    assert problems(document(stage(key, task(key)), key=key, spaceKey=key)) == []


def test_duplicate_stage_key_is_reported_with_where_the_first_is() -> None:
    doc = document(stage("s1", task("a")), stage("s1", task("b")))
    assert problems(doc) == [
        (
            "/stages/1/key",
            "duplicate stage key 's1', already used at /stages/0/key; give each stage its own key",
        )
    ]


def test_task_definition_keys_are_unique_across_the_whole_flow() -> None:
    doc = document(stage("s1", task("a"), task("a")), stage("s2", task("a")))
    message = (
        "duplicate task definition key 'a', already used at /stages/0/taskDefinitions/0/key; "
        "task definition keys must be unique across the whole flow"
    )
    assert problems(doc) == [
        (f"{T1}/key", message),
        ("/stages/1/taskDefinitions/0/key", message),
    ]


def test_stage_without_initial_task_definitions_is_rejected() -> None:
    doc = document(stage("s1", task("a"), initial=[]))
    assert problems(doc) == [
        (
            "/stages/0/initialTaskDefinitionKeys",
            "name at least one task definition of this stage to start it with",
        )
    ]


def test_unknown_keys_in_initial_and_next_are_reported_with_a_close_match() -> None:
    doc = document(stage("s1", task("task-1", next=["task-2"]), initial=["task-1", "tsk-1"]))
    assert problems(doc) == [
        (
            "/stages/0/initialTaskDefinitionKeys/1",
            "this stage has no task definition 'tsk-1'; did you mean 'task-1'?",
        ),
        (f"{T0}/next/0", "this stage has no task definition 'task-2'; did you mean 'task-1'?"),
    ]


def test_links_to_another_stage_are_rejected_because_next_never_crosses_stages() -> None:
    doc = document(
        stage("s1", task("a", next=["b"]), initial=["a", "b"]),
        stage("s2", task("b")),
    )
    assert problems(doc) == [
        (
            "/stages/0/initialTaskDefinitionKeys/1",
            "'b' belongs to stage 's2' (/stages/1): a stage starts only its own task definitions",
        ),
        (f"{T0}/next/0", "'b' belongs to stage 's2' (/stages/1): next never crosses stages"),
    ]


def test_a_key_listed_twice_in_next_or_initial_is_reported_at_the_repeat() -> None:
    doc = document(stage("s1", task("a", next=["b", "b"]), task("b"), initial=["a", "a"]))
    assert problems(doc) == [
        ("/stages/0/initialTaskDefinitionKeys/1", "'a' is listed twice; remove the repeat"),
        (f"{T0}/next/1", "'b' is listed twice; remove the repeat"),
    ]


def test_cycle_is_reported_at_the_link_that_closes_it_naming_the_cycle() -> None:
    doc = document(stage("s1", task("a", next=["b"]), task("b", next=["c"]), task("c", next=["a"])))
    assert problems(doc) == [
        (
            "/stages/0/taskDefinitions/2/next/0",
            "this link closes the cycle a → b → c → a; "
            "the next links of a stage must not loop, remove one of them",
        )
    ]


def test_task_definition_listing_itself_in_next_is_a_cycle() -> None:
    doc = document(stage("s1", task("a", next=["a"])))
    assert pointers(doc) == [f"{T0}/next/0"]
    assert "a → a" in problems(doc)[0][1]


def test_task_definition_no_initial_key_reaches_is_reported() -> None:
    doc = document(stage("s1", task("a"), task("b", next=["c"]), task("c")))
    message = (
        "can never start: add it to initialTaskDefinitionKeys "
        "or to the next list of a task definition that runs"
    )
    assert problems(doc) == [
        (T1, f"task definition 'b' {message}"),
        ("/stages/0/taskDefinitions/2", f"task definition 'c' {message}"),
    ]


def test_unknown_handler_lists_the_registered_ones_and_skips_the_payload() -> None:
    doc = document(stage("s1", task("a", "consume-rest", payload={"uri": 1})))
    assert problems(doc) == [
        (
            f"{T0}/handlerKey",
            "unknown handler 'consume-rest'; did you mean 'consume-rest-api'? "
            "registered handlers: consume-rest-api, wait",
        )
    ]


def test_payload_problems_are_reported_under_the_payload_pointer() -> None:
    doc = document(
        stage(
            "s1",
            task("a", "consume-rest-api", payload={"uri": "http://x.example"}),
            {"key": "b", "handlerKey": "consume-rest-api"},
            initial=["a", "b"],
        )
    )
    assert problems(doc) == [
        (f"{T0}/payload/uri", "must be an https URL"),
        (f"{T1}/payload/uri", "must be an https URL"),
    ]


def nested(levels: int) -> dict[str, Any]:
    """A payload whose objects nest ``levels`` deep, counting the payload itself."""
    payload: dict[str, Any] = {}
    for _ in range(levels - 1):
        payload = {"a": payload}
    return payload


def test_payload_may_nest_thirty_two_levels_deep_and_no_more() -> None:
    assert problems(document(stage("s1", task("a", payload=nested(32))))) == []
    assert problems(document(stage("s1", task("a", payload=nested(33))))) == [
        (f"{T0}/payload", "must not nest more than 32 levels deep")
    ]
    assert pointers(document(stage("s1", task("a", payload=nested(900))))) == [f"{T0}/payload"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (1, None),
        (2_592_000_000, None),
        (0, "must be between 1 and 2592000000 milliseconds (30 days), not 0"),
        (2_592_000_001, "must be between 1 and 2592000000 milliseconds (30 days), not 2592000001"),
        (-5, "must be between 1 and 2592000000 milliseconds (30 days), not -5"),
    ],
)
def test_timeout_duration_is_bounded_to_thirty_days(value: int, problem: str | None) -> None:
    expected = [] if problem is None else [(f"{T0}/timeoutDuration", problem)]
    assert problems(document(stage("s1", task("a", timeoutDuration=value)))) == expected


def test_retry_is_parsed_with_defaults_for_the_fields_left_out() -> None:
    doc = document(stage("s1", task("a", retry={"maxAttempts": 5, "backoffCoefficient": 3})))
    definition = parse_flow(doc, CATALOG).stages[0].task_definitions[0]
    assert definition.retry == RetryPolicy(max_attempts=5, backoff_coefficient=3.0)


@pytest.mark.parametrize(
    ("retry", "expected"),
    [
        ({}, [("/maxAttempts", "required field 'maxAttempts' is missing")]),
        ({"maxAttempts": 0}, [("/maxAttempts", "must be between 1 and 100, not 0")]),
        ({"maxAttempts": 101}, [("/maxAttempts", "must be between 1 and 100, not 101")]),
        ({"maxAttempts": 2.0}, [("/maxAttempts", "must be an integer, not a number")]),
        (
            {"maxAttempts": 2, "initialIntervalMs": -1},
            [("/initialIntervalMs", "must be between 0 and 86400000 milliseconds (1 day), not -1")],
        ),
        (
            {"maxAttempts": 2, "backoffCoefficient": 0.5},
            [("/backoffCoefficient", "must be between 1.0 and 10.0, not 0.5")],
        ),
        (
            {"maxAttempts": 2, "backoffCoefficient": math.inf},
            [("/backoffCoefficient", "must be between 1.0 and 10.0, not inf")],
        ),
        (
            {"maxAttempts": 2, "backoffCoefficient": "2"},
            [("/backoffCoefficient", "must be a number, not a string")],
        ),
        (
            {"maxAttempts": 2, "initialIntervalMs": 5000, "maxIntervalMs": 10},
            [("/maxIntervalMs", "must be at least initialIntervalMs (5000)")],
        ),
        (
            {"maxAttempts": 2, "initialIntervalMs": 400_000},
            [("/initialIntervalMs", "must be at most maxIntervalMs (by default 300000)")],
        ),
        (
            {"maxAttempts": 2, "maxIntervalMs": 10},
            [("/maxIntervalMs", "must be at least initialIntervalMs (1000)")],
        ),
        ({"maxAttempts": 2, "initialIntervalMs": 0, "maxIntervalMs": 0}, []),
    ],
)
def test_retry_policy_rules(retry: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    doc = document(stage("s1", task("a", retry=retry)))
    assert problems(doc) == [(f"{T0}/retry{at}", message) for at, message in expected]


def test_join_must_be_all_or_any() -> None:
    doc = document(stage("s1", task("a", join="al")))
    assert problems(doc) == [(f"{T0}/join", "must be 'all' or 'any', not 'al'")]
    any_doc = document(stage("s1", task("a", next=["b"]), task("b", join="any")))
    assert parse_flow(any_doc, CATALOG).stages[0].task_definitions[1].join is Join.ANY


def test_description_is_at_most_a_thousand_characters() -> None:
    assert problems(document(stage("s1", task("a", description="x" * 1000)))) == []
    assert problems(document(stage("s1", task("a", description="x" * 1001)))) == [
        (f"{T0}/description", "must have at most 1000 characters, not 1001")
    ]


def test_unknown_fields_are_errors_at_every_level_with_a_suggestion() -> None:
    doc = document(
        {**stage("s1", task("a", nxt=["b"], retry={"maxAttempts": 2, "maxAtempts": 3})), "kee": 1},
        stagez=[],
    )
    assert problems(doc) == [
        ("/stagez", "unknown field 'stagez'; did you mean 'stages'?"),
        ("/stages/0/kee", "unknown field 'kee'; did you mean 'key'?"),
        (f"{T0}/nxt", "unknown field 'nxt'; did you mean 'next'?"),
        (f"{T0}/retry/maxAtempts", "unknown field 'maxAtempts'; did you mean 'maxAttempts'?"),
    ]


def test_unknown_field_without_a_close_match_lists_the_known_ones_and_escapes_its_pointer() -> None:
    assert problems(document(**{"x/y~z": 1})) == [
        (
            "/x~1y~0z",
            "unknown field 'x/y~z'; remove it "
            "(known fields: key, name, spaceKey, stages, failureStage)",
        )
    ]


def test_flow_needs_a_stage_and_a_stage_needs_a_task_definition() -> None:
    assert problems({"key": "f", "name": "Test flow", "stages": []}) == [
        ("/stages", "a flow needs at least one stage")
    ]
    doc = document({"key": "s1", "initialTaskDefinitionKeys": ["a"], "taskDefinitions": []})
    assert problems(doc) == [
        ("/stages/0/taskDefinitions", "a stage needs at least one task definition"),
        ("/stages/0/initialTaskDefinitionKeys/0", "this stage has no task definition 'a'"),
    ]


def test_flow_size_is_bounded_to_a_hundred_stages_and_five_hundred_task_definitions() -> None:
    stages = [stage(f"s{i}", task(f"t{i}")) for i in range(101)]
    assert problems(document(*stages)) == [("/stages", "a flow has at most 100 stages, not 101")]
    tasks = [task(f"t{i}") for i in range(501)]
    assert problems(document(stage("s1", *tasks, initial=[t["key"] for t in tasks]))) == [
        ("/stages", "a flow has at most 500 task definitions, not 501")
    ]
    tasks = [task(f"t{i}") for i in range(500)]
    assert problems(document(stage("s1", *tasks, initial=[t["key"] for t in tasks]))) == []


def test_all_problems_are_reported_at_once() -> None:
    doc = document(
        stage(
            "s1",
            task("a", next=["b", "c"], timeoutDuration=0),
            task("b", "mail", join="every"),
            task("c", nxt=[]),
        ),
        name="abc",
    )
    assert pointers(doc) == [
        "/name",
        f"{T0}/timeoutDuration",
        f"{T1}/handlerKey",
        f"{T1}/join",
        "/stages/0/taskDefinitions/2/nxt",
    ]


def test_validation_does_not_change_or_keep_the_document() -> None:
    doc = document(stage("s1", task("a", payload={"nested": {"x": [1]}})))
    before = copy.deepcopy(doc)
    flow = parse_flow(doc, CATALOG)
    assert doc == before
    doc["stages"][0]["taskDefinitions"][0]["payload"]["nested"]["x"].append(2)
    assert flow.stages[0].task_definitions[0].payload == {"nested": {"x": [1]}}


FIELD_NAMES = [
    *("key", "name", "spaceKey", "stages", "initialTaskDefinitionKeys", "taskDefinitions"),
    *("handlerKey", "payload", "timeoutDuration", "next", "retry", "join", "description"),
    *("maxAttempts", "initialIntervalMs", "backoffCoefficient", "maxIntervalMs", "uri"),
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
    | st.sampled_from(["a", "b", "wait", "consume-rest-api", "all", "any", "https://x"])
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=4), inner, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, database=None)
@given(JSONISH)
def test_validation_never_raises_on_arbitrary_json(value: object) -> None:
    found = validate_flow(value, CATALOG)
    assert all(isinstance(p, Problem) for p in found)
    assert all(p.pointer == "" or p.pointer.startswith("/") for p in found)


def _replace_at(doc: Any, path: list[Any], value: object) -> Any:
    if not path:
        return value
    head, *rest = path
    if isinstance(doc, dict) and doc:
        key = list(doc)[head % len(doc)]
        return {**doc, key: _replace_at(doc[key], rest, value)}
    if isinstance(doc, list) and doc:
        index = head % len(doc)
        return [*doc[:index], _replace_at(doc[index], rest, value), *doc[index + 1 :]]
    return value


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(path=st.lists(st.integers(0, 9), max_size=6), value=JSONISH)
def test_validation_never_raises_on_a_valid_flow_with_a_part_replaced(
    path: list[int], value: object
) -> None:
    doc = document(
        stage("s1", task("a", next=["b"], retry={"maxAttempts": 2}), task("b", join="any")),
        stage("s2", task("c", "consume-rest-api", payload={"uri": "https://x"})),
    )
    found = validate_flow(_replace_at(doc, path, value), CATALOG)
    assert all(isinstance(p, Problem) for p in found)


def test_json_schema_carries_the_validators_bounds() -> None:
    defs = FLOW_JSON_SCHEMA["$defs"]
    assert FLOW_JSON_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert re.fullmatch(defs["key"]["pattern"][1:-1], "A.b_c-1")
    assert defs["key"]["pattern"] == f"^{KEY_PATTERN.pattern}$"
    assert defs["taskDefinition"]["additionalProperties"] is False
    assert set(defs["taskDefinition"]["properties"]) == {
        *("key", "handlerKey", "payload", "timeoutDuration", "next"),
        *("retry", "join", "description", "onAmend"),
    }
    assert defs["taskDefinition"]["properties"]["timeoutDuration"]["anyOf"][0]["maximum"] == (
        2_592_000_000
    )


def test_flow_json_schema_returns_a_copy_the_caller_may_change() -> None:
    schema = flow_json_schema()
    schema["$defs"]["key"]["pattern"] = "changed"
    assert flow_json_schema() == FLOW_JSON_SCHEMA
    assert FLOW_JSON_SCHEMA["$defs"]["key"]["pattern"] != "changed"
