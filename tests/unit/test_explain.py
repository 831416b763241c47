"""explain: what an order waits for, derived from its facts and the planner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ordermill.flows.explain import OrderFacts, Pause, TaskFacts, Waits, duration, explain
from ordermill.flows.model import FlowDefinition, Stage, TaskDefinition
from ordermill.flows.status import OrderStatus, TaskStatus

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
PENDING, RUNNING, WAITING = TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.WAITING
SUCCEEDED, FAILED = TaskStatus.SUCCEEDED, TaskStatus.FAILED


def task(
    key: str, handler: str = "consume-rest-api", *next_: str, **payload: object
) -> TaskDefinition:
    return TaskDefinition(key, handler, dict(payload), next=next_)


# book-erp → cure (a 3 h wait) → notify, then a second stage with ship
FLOW = FlowDefinition(
    "made-to-order",
    "Made to order",
    (
        Stage(
            "make",
            ("book-erp",),
            (
                task("book-erp", "consume-rest-api", "cure"),
                task("cure", "wait", "notify", durationMs=3 * 3600 * 1000),
                task("notify"),
            ),
        ),
        Stage("ship", ("ship",), (task("ship"),)),
    ),
)


def body(*deadlines: str) -> dict[str, object]:
    return {"orderLines": [{"title": f"line {n}", "deadline": d} for n, d in enumerate(deadlines)]}


def test_feedback_waited_on_for_two_days_against_a_deadline_in_four_hours() -> None:
    since = NOW - timedelta(days=2, hours=3)
    facts = OrderFacts(
        OrderStatus.IN_PROGRESS,
        (
            TaskFacts(
                "book-erp",
                WAITING,
                since,
                due_at=NOW + timedelta(days=5),
                last_progress="queued at the ERP",
                last_progress_at=NOW - timedelta(hours=1),
            ),
        ),
        body("2026-12-08T00:00:00Z", "2026-12-07T16:00:00Z"),
    )

    answer = explain(FLOW, facts, NOW)

    assert answer.sentence == (
        "Waiting 2 d 3 h for the connector's feedback on book-erp; "
        "the deadline of line 2 is in 4 h."
    )
    first = answer.tasks[0]
    assert (first.task_key, first.waits, first.since) == ("book-erp", Waits.FEEDBACK, since)
    assert "last progress: “queued at the ERP”" in first.words
    assert first.detail["lastProgress"] == "queued at the ERP"
    waiting = {wait.task_key: (wait.waits, wait.on) for wait in answer.tasks[1:]}
    assert waiting == {
        "cure": (Waits.PREDECESSORS, ("book-erp",)),
        "notify": (Waits.PREDECESSORS, ("cure",)),
        "ship": (Waits.PREDECESSORS, ("book-erp", "cure", "notify")),
    }
    assert answer.critical_path == ("book-erp", "cure", "notify", "ship")
    # feedback may come at once; the cure takes 3 h at least: the 4 h deadline can be met
    assert answer.earliest_finish == NOW + timedelta(hours=3)
    assert answer.late_by is None
    assert answer.deadline_line == 2


def test_a_timer_past_the_deadline_is_reported_as_a_miss_with_its_size() -> None:
    facts = OrderFacts(
        OrderStatus.IN_PROGRESS,
        (
            TaskFacts("book-erp", SUCCEEDED, NOW - timedelta(hours=1)),
            TaskFacts(
                "cure",
                WAITING,
                NOW - timedelta(minutes=30),
                due_at=NOW + timedelta(hours=3),
                wake="fire",
            ),
        ),
        body("2026-12-07T13:00:00Z"),
    )

    answer = explain(FLOW, facts, NOW)

    cure = answer.tasks[0]
    assert (cure.waits, cure.until) == (Waits.TIMER, NOW + timedelta(hours=3))
    assert answer.earliest_finish == NOW + timedelta(hours=3)
    assert answer.late_by == timedelta(hours=2)
    assert answer.critical_path == ("cure", "notify", "ship")
    assert answer.sentence == (
        "Waiting 30 min for a timer on cure; the deadline of line 1 is in 1 h, "
        "which the order misses by at least 2 h."
    )


def test_a_paused_order_says_who_paused_it_since_when_and_why() -> None:
    pause = Pause(NOW - timedelta(hours=5), "ui:jo", "material out")
    facts = OrderFacts(
        OrderStatus.IN_PROGRESS,
        (
            TaskFacts("book-erp", SUCCEEDED, NOW),
            TaskFacts("cure", WAITING, NOW, held_due_at=NOW - timedelta(hours=1), wake="fire"),
        ),
        body(),
        pause,
    )

    answer = explain(FLOW, facts, NOW)

    cure = answer.tasks[0]
    assert cure.waits is Waits.PAUSED
    assert cure.detail == {"by": "ui:jo", "reason": "material out", "pausedAt": pause.at}
    assert "paused by ui:jo" in cure.words
    assert "fires then" in cure.words
    assert answer.sentence == "Paused for 5 h (material out)."


def test_retries_leases_failures_and_ended_orders() -> None:
    retry_at = NOW + timedelta(minutes=2)
    facts = OrderFacts(
        OrderStatus.IN_PROGRESS,
        (TaskFacts("book-erp", PENDING, NOW, due_at=retry_at, error="the connector answered 503"),),
    )
    [retry, *_] = explain(FLOW, facts, NOW).tasks
    assert (retry.waits, retry.until) == (Waits.RETRY, retry_at)
    assert "after the connector answered 503" in retry.words

    leased = OrderFacts(
        OrderStatus.IN_PROGRESS,
        (TaskFacts("book-erp", RUNNING, NOW - timedelta(seconds=4), lease_owner="vm:1:a"),),
    )
    [lease, *_] = explain(FLOW, leased, NOW).tasks
    assert lease.waits is Waits.LEASE
    assert lease.detail["worker"] == "vm:1:a"

    failed = OrderFacts(OrderStatus.FAILURE, (TaskFacts("book-erp", FAILED, NOW, error="404"),))
    answer = explain(FLOW, failed, NOW)
    assert answer.tasks[0].waits is Waits.OPERATOR
    assert answer.earliest_finish is None
    assert answer.sentence.startswith("Waiting for an operator: book-erp failed (404)")

    done = explain(FLOW, OrderFacts(OrderStatus.SUCCESS, ()), NOW)
    assert done.tasks == ()
    assert done.sentence == "The order ended as SUCCESS; it waits for nothing."


def test_durations_read_in_at_most_two_units() -> None:
    assert duration(timedelta(days=2, hours=3, minutes=5)) == "2 d 3 h"
    assert duration(timedelta(minutes=4, seconds=1)) == "4 min 1 s"
    assert duration(timedelta(0)) == "0 s"
