"""Public fakes for people who write handlers: a clock you move by hand, a handler that records
what it was given and answers from a script, a mailer that keeps what it was asked to send,
and ``make_context`` to build a TaskContext.

::

    from ordermill.testing import make_context

    async def test_estimate():
        handler = PrintTime()
        ctx = make_context(handler, {"minutesPerCm3": 10})
        outcome = await handler.run(ctx)
        assert outcome == Succeeded({"printMinutes": 125})
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ordermill.errors import HandlerError
from ordermill.flows.examples import reference_order
from ordermill.flows.model import RetryPolicy
from ordermill.handlers.base import Handler, Outcome, Succeeded, TaskContext
from ordermill.handlers.mailer import Sent
from ordermill.links import LinkSigner

EPOCH = datetime(2026, 9, 23, 12, 0, tzinfo=UTC)
BASE_URL = "https://ordermill.test"


class FakeClock:
    """A Clock that stands still until the test moves it."""

    def __init__(self, start: datetime = EPOCH) -> None:
        if start.tzinfo is None:
            raise ValueError("give the fake clock an aware datetime, e.g. datetime(…, tzinfo=UTC)")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**parts)``; returns the new time."""
        self._now += delta if delta is not None else timedelta(**parts)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment


class AnyPayload(BaseModel):
    """Accepts any payload object (RecordingHandler's default payload model)."""

    model_config = ConfigDict(extra="allow")


class RecordingHandler:
    """A handler that records every context it runs with and answers from a script.

    Each run takes the next scripted item: an Outcome is returned, a HandlerError raised. With
    the script used up it returns ``Succeeded()``. Subclass it to change ``key`` or
    ``payload_model``.
    """

    key: ClassVar[str] = "recording"
    payload_model: ClassVar[type[BaseModel]] = AnyPayload
    default_timeout_ms: ClassVar[int] = 1000
    default_retry: ClassVar[RetryPolicy] = RetryPolicy(max_attempts=1)

    def __init__(self, script: Iterable[Outcome | HandlerError] = ()) -> None:
        self.script = list(script)
        self.contexts: list[TaskContext] = []
        self.closed = False

    async def run(self, ctx: TaskContext) -> Outcome:
        self.contexts.append(ctx)
        if not self.script:
            return Succeeded()
        step = self.script.pop(0)
        if isinstance(step, HandlerError):
            raise step
        return step

    async def close(self) -> None:
        self.closed = True


class RecordingMailer:
    """A Mailer that keeps what it was asked to send; scripted HandlerErrors are raised first."""

    def __init__(self, script: Iterable[HandlerError] = ()) -> None:
        self.script = list(script)
        self.sent: list[tuple[EmailMessage, list[str]]] = []

    async def send(
        self, message: EmailMessage, recipients: Sequence[str], time_limit: float
    ) -> Sent:
        if self.script:
            raise self.script.pop(0)
        self.sent.append((message, list(recipients)))
        return Sent("2.0.0 OK: queued", {})

    async def close(self) -> None:
        """Nothing to release."""


def sample_order(third_party_id: str = "WEB-1001", **fields: Any) -> dict[str, Any]:
    """An order as stored (the connector's order shape, SPEC §4.1), with ``fields`` replaced."""
    order = reference_order(third_party_id)
    order.update(fields)
    return order


def make_context(
    handler: Handler | type[Handler] | None = None,
    payload: Any = None,
    *,
    order: dict[str, Any] | None = None,
    clock: FakeClock | None = None,
    **fields: Any,
) -> TaskContext:
    """A TaskContext for one attempt, as the engine would build it.

    ``payload`` is validated with the handler's ``payload_model`` (a pydantic ValidationError
    shows what the flow validator would report); any TaskContext field can be set by name.
    """
    if handler is not None and payload is not None and not isinstance(payload, BaseModel):
        payload = handler.payload_model.model_validate(payload)
    values: dict[str, Any] = {
        "order_id": "ord_test",
        "space_key": "acme",
        "flow_key": "made-to-order",
        "flow_version": 1,
        "stage_key": "stage-1",
        "task_key": "task-1",
        "attempt": 1,
        "delivery_id": "dlv_test",
        "delivery_epoch": (clock or FakeClock()).now(),
        "update_url": f"{BASE_URL}/api/feedback/test-token",
        "order": sample_order() if order is None else order,
        "payload": payload,
        "timeout_seconds": (handler.default_timeout_ms / 1000) if handler is not None else 30.0,
        "now": (clock or FakeClock()).now(),
        "links": LinkSigner("test-secret", BASE_URL),
    }
    values.update(fields)
    return TaskContext(**values)
