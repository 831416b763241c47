"""The invariant checker on hand-made databases: it passes a correct run and names each fault."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from ordermill.storage import tables as t
from tests.support.invariants import Violation, check_database, report, sync_engine
from tests.support.postgres import PostgresServer

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _task(key: str, nxt: list[str], join: str = "all") -> dict[str, Any]:
    return {
        "key": key,
        "handlerKey": "wait",
        "payload": {"durationMs": 1},
        "next": nxt,
        "join": join,
    }


# Stage one: a fans out to b and c; d joins both (all), e joins either (any). Stage two: f.
FLOW = {
    "key": "diamond",
    "name": "Diamond and tail",
    "stages": [
        {
            "key": "one",
            "initialTaskDefinitionKeys": ["a"],
            "taskDefinitions": [
                _task("a", ["b", "c"]),
                _task("b", ["d", "e"]),
                _task("c", ["d", "e"]),
                _task("d", []),
                _task("e", [], join="any"),
            ],
        },
        {"key": "two", "initialTaskDefinitionKeys": ["f"], "taskDefinitions": [_task("f", [])]},
    ],
}


class HandMade:
    """A database written row by row; each event one millisecond after the one before."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = sync_engine(url)
        t.metadata.create_all(self.engine)
        self.clock = T0
        self.task_ids: dict[tuple[str, str], int] = {}
        with self.engine.begin() as conn:
            conn.execute(sqlalchemy.insert(t.spaces).values(key="acme", name="acme", created_at=T0))
            conn.execute(
                sqlalchemy.insert(t.flows).values(
                    id=1,
                    space_key="acme",
                    key="diamond",
                    name="Diamond and tail",
                    current_version=1,
                    created_at=T0,
                    updated_at=T0,
                )
            )
            conn.execute(
                sqlalchemy.insert(t.flow_versions).values(
                    flow_id=1, version=1, content_hash="0" * 64, definition=FLOW, created_at=T0
                )
            )

    def _insert(self, table: sqlalchemy.Table, **values: Any) -> Any:
        with self.engine.begin() as conn:
            result = conn.execute(sqlalchemy.insert(table).values(**values))
            return result.inserted_primary_key[0]

    def order(self, order_id: str, status: str) -> None:
        self._insert(
            t.orders,
            id=order_id,
            space_key="acme",
            flow_id=1,
            flow_key="diamond",
            flow_version=1,
            third_party_order_id=order_id,
            status=status,
            body={},
            body_hash="0" * 64,
            value=0.0,
            created_at=T0,
            updated_at=T0,
        )

    def task(self, order_id: str, key: str, status: str = "SUCCEEDED") -> None:
        stage = 1 if key == "f" else 0
        self.task_ids[(order_id, key)] = self._insert(
            t.tasks,
            order_id=order_id,
            stage_index=stage,
            stage_key=("one", "two")[stage],
            task_key=key,
            handler_key="wait",
            status=status,
            attempts=1,
            budget_base=0,
            delivery_id=f"dlv_{order_id}_{key}",
            created_at=T0,
            updated_at=T0,
        )

    def event(self, order_id: str, type_: str, task_key: str | None = None, **data: Any) -> None:
        self.clock += timedelta(milliseconds=1)
        self._insert(
            t.events,
            order_id=order_id,
            at=self.clock,
            type=type_,
            task_key=task_key,
            data=data or None,
        )

    def attempt(self, order_id: str, key: str, number: int, outcome: str = "succeeded") -> None:
        self._insert(
            t.attempts,
            task_id=self.task_ids[(order_id, key)],
            number=number,
            started_at=T0,
            ended_at=T0,
            outcome=outcome,
        )

    def run_task(self, order_id: str, key: str, status: str = "SUCCEEDED") -> None:
        """Queue, run and (unless told otherwise) succeed one task, each in its own step."""
        self.task(order_id, key, status)
        self.event(order_id, "task.queued", key)
        self.event(order_id, "task.running", key)
        if status == "SUCCEEDED":
            self.attempt(order_id, key, 1)
            self.event(order_id, "task.succeeded", key)

    def succeeded_order(self, order_id: str) -> None:
        """A correct history: a; b, c; e after b alone; d after both; then stage two."""
        self.order(order_id, "SUCCESS")
        self.event(order_id, "order.created")
        for key in ("a", "b", "e", "c", "d", "f"):
            self.run_task(order_id, key)
        self.event(order_id, "order.status", **{"from": "IN_PROGRESS", "to": "SUCCESS"})

    def check(self, **options: Any) -> list[Violation]:
        return check_database(self.url, **options)

    def close(self) -> None:
        self.engine.dispose()


def _rules(violations: list[Violation]) -> list[tuple[str, str | None]]:
    return [(v.rule, v.order_id) for v in violations]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[HandMade]:
    made = HandMade(f"sqlite+aiosqlite:///{tmp_path}/run.db")
    yield made
    made.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HandMade]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/run.db"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.create_database()
    made = HandMade(url)
    yield made
    made.close()
    if request.param == "postgres":
        server.drop_database(url.rsplit("/", 1)[-1])


def test_a_correct_run_has_no_violation(any_db: HandMade) -> None:
    any_db.succeeded_order("ord_ok1")
    any_db.succeeded_order("ord_ok2")
    assert any_db.check(deliveries=[("dlv_ord_ok1_a", "dlv_ord_ok1_a")] * 3) == []


def test_the_stuck_join_is_named_with_its_order(any_db: HandMade) -> None:
    """a, b, c succeeded and d was never queued: IN_PROGRESS with no live work."""
    any_db.succeeded_order("ord_ok")
    any_db.order("ord_stuck", "IN_PROGRESS")
    for key in ("a", "b", "e", "c"):
        any_db.run_task("ord_stuck", key)
    violations = any_db.check()
    assert _rules(violations) == [("not-final", "ord_stuck")]
    assert "IN_PROGRESS with no live work" in violations[0].detail
    assert "d=" not in violations[0].detail
    last = r"last events: .* task\.running c, \d+ task\.succeeded c$"
    assert re.search(last, violations[0].detail)
    assert "ord_stuck" in report(violations)


def test_live_work_is_not_final(db: HandMade) -> None:
    db.order("ord_busy", "IN_PROGRESS")
    db.run_task("ord_busy", "a", status="RUNNING")
    assert _rules(db.check()) == [("not-final", "ord_busy")]


def test_an_unhealthy_order_at_rest_is_settled_and_outside_waits_are_opt_in(db: HandMade) -> None:
    db.order("ord_late", "UNHEALTHY")
    db.run_task("ord_late", "a", status="TIMED_OUT")
    db.order("ord_asks", "IN_PROGRESS")
    db.run_task("ord_asks", "a", status="WAITING")
    assert _rules(db.check()) == [("not-final", "ord_asks")]
    assert db.check(outside_waits=True) == []


def test_a_status_the_tasks_do_not_support(db: HandMade) -> None:
    db.order("ord_lies", "SUCCESS")
    db.run_task("ord_lies", "a")
    db.run_task("ord_lies", "b", status="FAILED")
    violations = db.check()
    assert _rules(violations) == [("status-mismatch", "ord_lies")]
    assert "tasks say FAILURE" in violations[0].detail


def test_a_second_success_in_the_timeline(db: HandMade) -> None:
    db.succeeded_order("ord_twice")
    db.event("ord_twice", "task.succeeded", "b")
    assert _rules(db.check()) == [("double-success", "ord_twice")]


def test_a_second_succeeded_attempt(db: HandMade) -> None:
    db.succeeded_order("ord_twice")
    db.attempt("ord_twice", "c", 2)
    assert _rules(db.check()) == [("double-success", "ord_twice")]


def test_a_redelivery_allows_one_more_success(db: HandMade) -> None:
    db.succeeded_order("ord_again")
    db.event("ord_again", "task.redelivery_requested", "b")
    db.attempt("ord_again", "b", 2)
    db.event("ord_again", "task.succeeded", "b")
    assert db.check() == []


def test_succeeded_without_its_event(db: HandMade) -> None:
    db.order("ord_quiet", "IN_PROGRESS")
    db.task("ord_quiet", "a", "SUCCEEDED")
    db.event("ord_quiet", "task.queued", "a")
    assert _rules(db.check()) == [("not-final", "ord_quiet"), ("success-unrecorded", "ord_quiet")]


def test_a_join_all_queued_before_its_second_predecessor_succeeded(db: HandMade) -> None:
    db.order("ord_early", "IN_PROGRESS")
    for key in ("a", "b", "e"):
        db.run_task("ord_early", key)
    db.run_task("ord_early", "d", status="PENDING")
    db.run_task("ord_early", "c", status="RUNNING")
    violations = db.check()
    assert _rules(violations) == [("not-final", "ord_early"), ("join-early", "ord_early")]
    assert "task 'd' (join all)" in violations[1].detail
    assert "['b']" in violations[1].detail


def test_a_join_any_queued_before_any_predecessor_succeeded(db: HandMade) -> None:
    db.order("ord_any", "IN_PROGRESS")
    db.run_task("ord_any", "a")
    db.run_task("ord_any", "e", status="PENDING")
    db.run_task("ord_any", "b", status="RUNNING")
    violations = db.check()
    assert _rules(violations) == [("not-final", "ord_any"), ("join-early", "ord_any")]
    assert "join any" in violations[1].detail


def test_a_success_in_the_same_transaction_counts_as_before(db: HandMade) -> None:
    """The completion that satisfies a join writes the join's task.queued with the same `at`."""
    db.order("ord_same", "IN_PROGRESS")
    for key in ("a", "b", "e"):
        db.run_task("ord_same", key)
    db.run_task("ord_same", "c", status="RUNNING")
    db.task("ord_same", "d", "PENDING")
    db.event("ord_same", "task.queued", "d")
    db.clock -= timedelta(milliseconds=1)  # the same transaction: the same `at`, a larger id
    db.event("ord_same", "task.succeeded", "c")
    assert _rules(db.check()) == [("not-final", "ord_same")]


def test_a_later_stage_queued_before_the_earlier_one_ended(db: HandMade) -> None:
    db.order("ord_jump", "IN_PROGRESS")
    for key in ("a", "b", "e", "c"):
        db.run_task("ord_jump", key)
    db.run_task("ord_jump", "f", status="PENDING")
    db.run_task("ord_jump", "d", status="RUNNING")
    violations = db.check()
    assert _rules(violations) == [("not-final", "ord_jump"), ("stage-order", "ord_jump")]
    assert "['d']" in violations[1].detail


def test_work_started_after_the_cancellation(db: HandMade) -> None:
    db.order("ord_gone", "CANCELLED")
    db.run_task("ord_gone", "a")
    db.event("ord_gone", "order.status", **{"from": "IN_PROGRESS", "to": "CANCELLED"})
    db.run_task("ord_gone", "b", status="CANCELLED")
    assert _rules(db.check()) == [("after-cancel", "ord_gone")]


def test_a_reconciled_order_is_a_violation(db: HandMade) -> None:
    db.succeeded_order("ord_fixed")
    db.event("ord_fixed", "order.reconciled", reason="no live work")
    violations = db.check()
    assert _rules(violations) == [("reconciled", "ord_fixed")]


def test_task_rows_that_do_not_match_the_timeline(db: HandMade) -> None:
    db.order("ord_odd", "IN_PROGRESS")
    db.run_task("ord_odd", "a")
    db.event("ord_odd", "task.queued", "a")
    db.task("ord_odd", "b", "PENDING")
    db.task("ord_odd", "zz", "PENDING")
    assert sorted(_rules(db.check())) == [
        ("not-final", "ord_odd"),
        ("not-queued", "ord_odd"),
        ("queued-twice", "ord_odd"),
        ("unknown-task", "ord_odd"),
    ]


def test_delivery_ids_must_travel_as_their_own_webhook_id(db: HandMade) -> None:
    db.succeeded_order("ord_hooks")
    deliveries = [
        ("dlv_ord_hooks_a", "dlv_ord_hooks_a"),
        ("dlv_ord_hooks_b", "dlv_ord_hooks_b"),
        ("dlv_ord_hooks_b", "dlv_other"),
        ("dlv_ord_hooks_c", "dlv_wrong"),
        ("dlv_nobody", "dlv_nobody"),
    ]
    violations = db.check(deliveries=deliveries)
    assert _rules(violations) == [
        ("delivery-ids", "ord_hooks"),
        ("delivery-ids", "ord_hooks"),
        ("delivery-ids", None),
    ]
    assert "dlv_ord_hooks_b came as ['dlv_ord_hooks_b', 'dlv_other']" in violations[0].detail


def test_report_counts_per_rule() -> None:
    violations = [
        Violation("not-final", "ord_1", "x"),
        Violation("not-final", "ord_2", "y"),
        Violation("reconciled", "ord_3", "z"),
    ]
    text = report(violations)
    assert text.splitlines()[:3] == [
        "3 invariant violation(s):",
        "  not-final: 2 (ord_1, ord_2)",
        "  reconciled: 1 (ord_3)",
    ]
