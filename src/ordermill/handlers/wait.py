"""``wait``: a durable timer. The due time lives in the task row, so it survives restarts.

The handler only computes when to wake up; the engine's timer loop (any worker) ends the wait.
A time already past completes the task at once and says so in the timeline.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ordermill.errors import PermanentError
from ordermill.flows.model import RetryPolicy
from ordermill.flows.order import earliest_deadline, parse_instant
from ordermill.handlers.base import Outcome, Succeeded, TaskContext, Waiting

DEADLINE = "deadline"
MAX_MS = 31_536_000_000 * 10  # ten years: anything longer is a typo


class WaitPayload(BaseModel):
    """Payload of a ``wait`` task definition: ``durationMs``, or ``until`` with ``offsetMs``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    duration_ms: int | None = Field(
        default=None, alias="durationMs", ge=0, le=MAX_MS, description="Wait this long."
    )
    until: str | None = Field(
        default=None,
        description='An ISO 8601 instant, or "deadline": the earliest order-line deadline.',
        examples=["2026-10-01T00:00:00Z", DEADLINE],
    )
    offset_ms: int | None = Field(
        default=None,
        alias="offsetMs",
        ge=-MAX_MS,
        le=MAX_MS,
        description="Added to `until`; -172800000 wakes two days before it.",
    )

    @field_validator("until")
    @classmethod
    def _check_until(cls, until: str | None, info: ValidationInfo) -> str | None:
        if until is None:
            return None
        if info.data.get("duration_ms") is not None:
            raise ValueError("give either durationMs or until, not both")
        if until != DEADLINE:
            try:
                parse_instant(until)
            except ValueError as exc:
                raise ValueError(
                    f'must be "deadline" or an ISO 8601 instant such as 2026-10-01T00:00:00Z, '
                    f"not {until!r}"
                ) from exc
        return until

    @field_validator("offset_ms")
    @classmethod
    def _check_offset(cls, offset: int | None, info: ValidationInfo) -> int | None:
        # An invalid `until` is missing from info.data; its own problem says what to fix.
        if offset is not None and "until" in info.data and info.data["until"] is None:
            raise ValueError("offsetMs shifts `until`; it needs `until` (use durationMs alone)")
        return offset

    @model_validator(mode="after")
    def _one_of(self) -> WaitPayload:
        if self.duration_ms is None and self.until is None:
            raise ValueError('give durationMs (milliseconds) or until (an instant or "deadline")')
        return self


def wake_time(payload: WaitPayload, order: dict[str, Any], now: datetime) -> datetime:
    """When the wait ends, from the payload, the order's deadlines and the current time."""
    if payload.duration_ms is not None:
        return now + timedelta(milliseconds=payload.duration_ms)
    assert payload.until is not None
    if payload.until == DEADLINE:
        deadline = earliest_deadline(order)
        if deadline is None:
            raise PermanentError(
                'until is "deadline", but no order line of this order has a deadline; '
                "give the order lines a deadline or wait for a fixed instant"
            )
        base = deadline
    else:
        base = parse_instant(payload.until)
    return base + timedelta(milliseconds=payload.offset_ms or 0)


class Wait:
    """Waits for a duration or until an instant; never touches the outside world."""

    key: ClassVar[str] = "wait"
    payload_model: ClassVar[type[BaseModel]] = WaitPayload
    # A wait has no outside world to bound; timeoutDuration does not shorten it.
    default_timeout_ms: ClassVar[int] = 60_000
    default_retry: ClassVar[RetryPolicy] = RetryPolicy(max_attempts=1)

    async def run(self, ctx: TaskContext) -> Outcome:
        until = wake_time(ctx.payload, ctx.order, ctx.now)
        stamp = until.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if until <= ctx.now:
            if ctx.payload.duration_ms is not None:
                note = "durationMs is 0: nothing to wait for"
            else:
                note = f"{stamp} had already passed when the task ran: nothing to wait for"
            return Succeeded({"until": stamp, "message": note})
        return Waiting(until=until, fire=True, result={"until": stamp})

    async def close(self) -> None:
        """Nothing to release."""
