"""Timeline events an operator should find in the logs, logged once their transaction commits.

At INFO: every task that ended for good without success (``task failed``, ``task timed out``)
and every order that became ``FAILURE``, ``UNHEALTHY`` or ``CANCELLED`` (``order status``), each
with ``order_id`` and ``task_key``. Whichever process commits the change logs it: a worker for
attempts and timers, the API for feedback, confirmations and operator actions. Other order
status changes are logged at DEBUG. Their data is the timeline's, which never holds secrets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import structlog

log = structlog.get_logger("ordermill.orders")

_TASK_ENDS = {"task.failed": "task failed", "task.timed_out": "task timed out"}
_NEEDS_ATTENTION = ("FAILURE", "UNHEALTHY", "CANCELLED")


def log_committed(events: Iterable[Mapping[str, Any]]) -> None:
    """Log the events of a committed transaction that an operator should see."""
    for event in events:
        data = event["data"] or {}
        fields = {"order_id": event["order_id"], "task_key": event["task_key"]}
        if event["type"] in _TASK_ENDS:
            details = {
                "attempt": data.get("attempt"),
                "by": data.get("by"),
                "error": data.get("error") or data.get("message"),
                "actor": event["actor"],
            }
            fields.update({k: v for k, v in details.items() if v is not None})
            log.info(_TASK_ENDS[event["type"]], **fields)
        elif event["type"] == "order.status":
            fields = {"order_id": event["order_id"], "status": data["to"], "previous": data["from"]}
            if event["actor"] is not None:
                fields["actor"] = event["actor"]
            if data["to"] in _NEEDS_ATTENTION:
                log.info("order status", **fields)
            else:
                log.debug("order status", **fields)
