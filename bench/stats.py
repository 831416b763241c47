"""Small statistics for the report: percentiles and the latency of matched 201s and arrivals."""

from __future__ import annotations

import math
from typing import Any


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def percentiles(values: list[float]) -> dict[str, Any]:
    """count, p50, p95, p99, max and min (milliseconds in, milliseconds out, 2 decimals)."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    figures = {
        "p50": percentile(ordered, 0.50),
        "p95": percentile(ordered, 0.95),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1],
        "min": ordered[0],
    }
    return {"count": len(ordered), **{key: round(value, 2) for key, value in figures.items()}}


def latency(created: dict[str, float], arrivals: dict[str, float]) -> dict[str, Any]:
    """From each order's 201 (monotonic, load generator) to its delivery (monotonic, receiver).

    A negative value means the delivery arrived before the client had read the 201: the engine
    in the API's own process can be that quick. They count as they are.
    """
    values = [
        (arrivals[order_id] - at) * 1000 for order_id, at in created.items() if order_id in arrivals
    ]
    figures = percentiles(values)
    figures["missing"] = len(created) - len(values)
    figures["negative"] = sum(1 for value in values if value < 0)
    return figures


def thirds(samples: list[int]) -> tuple[float, float] | None:
    """Mean of the first and of the last third of a series (None if too short)."""
    if len(samples) < 6:
        return None
    third = len(samples) // 3
    return sum(samples[:third]) / third, sum(samples[-third:]) / third
