"""Pure facts about an order body in the connector's order shape."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def order_value(body: Mapping[str, Any]) -> float:
    """Σ amountOfUnits × valuePerUnit over the order lines."""
    total = 0.0
    for line in body.get("orderLines") or ():
        total += float(line.get("amountOfUnits") or 0) * float(line.get("valuePerUnit") or 0)
    return round(total, 6)


def parse_instant(value: str) -> datetime:
    """An ISO 8601 instant; a missing zone means UTC."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def earliest_deadline(body: Mapping[str, Any]) -> datetime | None:
    """The earliest order-line deadline, or None when no line has one."""
    deadlines = [
        parse_instant(line["deadline"])
        for line in body.get("orderLines") or ()
        if isinstance(line.get("deadline"), str)
    ]
    return min(deadlines) if deadlines else None
