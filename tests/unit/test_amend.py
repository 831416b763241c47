"""Amendments: RFC 7396 merge patches, the changed pointers, and the lifecycle core's answer."""

from __future__ import annotations

from ordermill.flows.amend import changes, merge_patch, patch_hash
from ordermill.flows.lifecycle import Amended, Decision, OrderState, Refusal, decide
from ordermill.flows.model import FlowDefinition, OnAmend, Stage, TaskDefinition
from ordermill.flows.status import OrderStatus, TaskStatus


def test_merge_patch_follows_rfc_7396_examples() -> None:
    # RFC 7396 appendix A, a selection.
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": ["b"]}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "c"}, {"a": ["b"]}) == {"a": ["b"]}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch([1, 2], {"a": "b", "c": None}) == {"a": "b"}
    assert merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


def test_changes_name_the_smallest_changed_values_with_escaped_pointers() -> None:
    old = {"data": {"a/b": 1, "k~": 2, "same": 3}, "lines": [{"n": 1}, {"n": 2}]}
    new = {"data": {"a/b": 9, "same": 3, "new": 4}, "lines": [{"n": 1}, {"n": 5}]}
    assert changes(old, new) == [
        {"pointer": "/data/a~1b", "old": 1, "new": 9},
        {"pointer": "/data/k~0", "old": 2},
        {"pointer": "/data/new", "new": 4},
        {"pointer": "/lines/1/n", "old": 2, "new": 5},
    ]
    assert changes({"l": [1]}, {"l": [1, 2]}) == [{"pointer": "/l", "old": [1], "new": [1, 2]}]
    assert changes(old, old) == []
    assert patch_hash({"a": 1, "b": 2}) == patch_hash({"b": 2, "a": 1})


def flow() -> FlowDefinition:
    def task(key: str, *next_: str, on_amend: OnAmend = OnAmend.IGNORE) -> TaskDefinition:
        return TaskDefinition(key, "wait", {}, next=next_, on_amend=on_amend)

    return FlowDefinition(
        "f",
        "Amendable",
        (
            Stage(
                "s",
                ("a",),
                (task("a", "b", on_amend=OnAmend.RESEND), task("b", "c"), task("c")),
            ),
        ),
    )


def test_an_amendment_resends_succeeded_resend_tasks_and_holds_what_follows() -> None:
    state = OrderState(
        OrderStatus.IN_PROGRESS,
        {"a": TaskStatus.SUCCEEDED, "b": TaskStatus.SUCCEEDED, "c": TaskStatus.WAITING},
    )
    decision = decide(flow(), state, Amended(2, ("/data/x",), {"reason": "r"}))
    assert isinstance(decision, Decision)
    assert [(c.task_key, c.new) for c in decision.changes] == [("a", TaskStatus.PENDING)]
    assert decision.state.status is OrderStatus.IN_PROGRESS
    (event,) = decision.events
    assert event.type == "order.amended"
    assert event.data == {"reason": "r", "revision": 2, "changed": ["/data/x"], "resend": ["a"]}


def test_an_amendment_of_an_ended_order_is_refused_and_changes_nothing() -> None:
    for status in (OrderStatus.SUCCESS, OrderStatus.CANCELLED):
        state = OrderState(status, {"a": TaskStatus.SUCCEEDED})
        assert isinstance(decide(flow(), state, Amended(2, ())), Refusal)
    created = decide(flow(), OrderState(OrderStatus.CREATED), Amended(2, ("/data",)))
    assert isinstance(created, Decision)
    assert not created.changes
    assert not created.start
