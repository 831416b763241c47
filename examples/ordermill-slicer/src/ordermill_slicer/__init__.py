"""An example ordermill handler: estimate how long an order's 3D-printed items take to print.

Each item tagged for printing carries its volume in ``data.volumeCm3``; the estimate is a setup
time per item plus the volume times a print rate, for every unit of the order line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ordermill.errors import PermanentError
from ordermill.flows.model import RetryPolicy
from ordermill.handlers.base import Outcome, Succeeded, TaskContext

__all__ = ["PrintTimeEstimate", "PrintTimePayload"]


class PrintTimePayload(BaseModel):
    """The task definition's payload; ordermill publishes its JSON Schema at /api/handlers."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    minutes_per_cm3: float = Field(
        default=12.0, gt=0, alias="minutesPerCm3", description="Print rate of the machine."
    )
    setup_minutes: float = Field(
        default=10.0, ge=0, alias="setupMinutes", description="Preparation time per item."
    )
    tag: str = Field(default="3dprint", description="Items with this tag are printed.")


def _items(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from _items(item.get("items") or [])


class PrintTimeEstimate:
    """``slicer-estimate``: adds ``printMinutes`` (and a per-item breakdown) to the task result."""

    key: ClassVar[str] = "slicer-estimate"
    payload_model: ClassVar[type[BaseModel]] = PrintTimePayload
    default_timeout_ms: ClassVar[int] = 5_000
    default_retry: ClassVar[RetryPolicy] = RetryPolicy(max_attempts=1)

    async def run(self, ctx: TaskContext) -> Outcome:
        payload: PrintTimePayload = ctx.payload
        breakdown: list[dict[str, Any]] = []
        total = 0.0
        for line in ctx.order.get("orderLines") or []:
            units = float(line.get("amountOfUnits") or 1)
            for item in _items(line.get("items") or []):
                if payload.tag not in (item.get("tags") or []):
                    continue
                volume = (item.get("data") or {}).get("volumeCm3")
                if not isinstance(volume, int | float):
                    # Retrying cannot help: the order itself lacks what we need.
                    raise PermanentError(
                        f"item {item.get('id')!r} of order line {line.get('orderId')!r} is "
                        f"tagged {payload.tag!r} but has no numeric data.volumeCm3"
                    )
                minutes = (payload.setup_minutes + volume * payload.minutes_per_cm3) * units
                breakdown.append({"itemId": item.get("id"), "minutes": round(minutes, 1)})
                total += minutes
        return Succeeded({"printMinutes": round(total, 1), "items": breakdown})

    async def close(self) -> None:
        """Nothing to release; a handler holding a client session would close it here."""
