"""Which committed timeline events are logged at INFO, and with which fields."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from ordermill.storage import eventlog
from ordermill.storage.eventlog import log_committed


def event(type_: str, data: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    return {
        "order_id": "ord_1",
        "at": None,
        "type": type_,
        "task_key": fields.get("task_key"),
        "actor": fields.get("actor"),
        "data": data,
    }


def test_ends_without_success_are_info_and_the_rest_is_debug_or_silent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = [
        event("task.queued", None, task_key="a"),
        event("task.failed", {"attempt": 2, "error": "the connector answered 400"}, task_key="a"),
        event("task.failed", {"by": "feedback", "message": "out of stock"}, task_key="b"),
        event("task.failed", {"by": "confirmation", "error": "no"}, task_key="c", actor="admin"),
        event("task.timed_out", {"error": "no answer came in time"}, task_key="d"),
        event("task.succeeded", {"attempt": 1}, task_key="e"),
        event("order.status", {"from": "IN_PROGRESS", "to": "FAILURE"}, actor="engine"),
        event("order.status", {"from": "FAILURE", "to": "CANCELLED"}, actor="admin"),
        event("order.status", {"from": "IN_PROGRESS", "to": "SUCCESS"}, actor="engine"),
    ]

    with capture_logs() as logs:
        # A logger bound afresh: the module's own may be cached by an earlier test's set-up.
        monkeypatch.setattr(eventlog, "log", structlog.get_logger("ordermill.orders"))
        log_committed(events)

    order = {"order_id": "ord_1"}
    assert logs == [
        {
            **order,
            "task_key": "a",
            "attempt": 2,
            "error": "the connector answered 400",
            "event": "task failed",
            "log_level": "info",
        },
        {
            **order,
            "task_key": "b",
            "by": "feedback",
            "error": "out of stock",
            "event": "task failed",
            "log_level": "info",
        },
        {
            **order,
            "task_key": "c",
            "by": "confirmation",
            "error": "no",
            "actor": "admin",
            "event": "task failed",
            "log_level": "info",
        },
        {
            **order,
            "task_key": "d",
            "error": "no answer came in time",
            "event": "task timed out",
            "log_level": "info",
        },
        {
            **order,
            "status": "FAILURE",
            "previous": "IN_PROGRESS",
            "actor": "engine",
            "event": "order status",
            "log_level": "info",
        },
        {
            **order,
            "status": "CANCELLED",
            "previous": "FAILURE",
            "actor": "admin",
            "event": "order status",
            "log_level": "info",
        },
        {
            **order,
            "status": "SUCCESS",
            "previous": "IN_PROGRESS",
            "actor": "engine",
            "event": "order status",
            "log_level": "debug",
        },
    ]
