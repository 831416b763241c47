"""ordermill.testing: the public fakes handler authors test with behave as documented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from pydantic import ValidationError

from ordermill.errors import PermanentError, RetryableError
from ordermill.handlers.base import Succeeded, Waiting
from ordermill.handlers.wait import Wait, WaitPayload
from ordermill.testing import EPOCH, FakeClock, RecordingHandler, RecordingMailer, make_context
from ordermill.testing import sample_order as sample


def test_the_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock()

    assert clock.now() == clock.now() == EPOCH
    assert clock.advance(minutes=5) == EPOCH + timedelta(minutes=5)
    assert clock.advance(timedelta(seconds=1)) == EPOCH + timedelta(minutes=5, seconds=1)
    clock.set(datetime(2030, 1, 1, tzinfo=UTC))
    assert clock.now() == datetime(2030, 1, 1, tzinfo=UTC)


def test_the_fake_clock_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        FakeClock(datetime(2026, 1, 1))


async def test_the_recording_handler_answers_from_its_script_and_records_contexts() -> None:
    later = Waiting(until=EPOCH + timedelta(hours=1))
    handler = RecordingHandler([Succeeded({"n": 1}), RetryableError("busy"), later])
    contexts = [make_context(handler, {"any": "thing"}, attempt=n) for n in (1, 2, 3, 4)]

    first = await handler.run(contexts[0])
    with pytest.raises(RetryableError, match="busy"):
        await handler.run(contexts[1])
    third = await handler.run(contexts[2])
    fourth = await handler.run(contexts[3])
    await handler.close()

    assert (first, third, fourth) == (Succeeded({"n": 1}), later, Succeeded())
    assert [ctx.attempt for ctx in handler.contexts] == [1, 2, 3, 4]
    assert handler.contexts[0].payload.model_dump() == {"any": "thing"}
    assert handler.closed


def test_make_context_validates_the_payload_with_the_handlers_model() -> None:
    ctx = make_context(Wait, {"durationMs": 5})

    assert ctx.payload == WaitPayload(durationMs=5)
    assert ctx.timeout_seconds == Wait.default_timeout_ms / 1000
    assert (ctx.order_id, ctx.task_key, ctx.delivery_id) == ("ord_test", "task-1", "dlv_test")
    assert ctx.order == sample()
    assert ctx.links is not None
    with pytest.raises(ValidationError):
        make_context(Wait, {"durationMs": 5, "until": "deadline"})


def test_make_context_takes_any_field_and_a_clock() -> None:
    clock = FakeClock(datetime(2027, 5, 1, tzinfo=UTC))

    ctx = make_context(order=sample("X-1"), clock=clock, attempt=3, timeout_seconds=2.5)

    assert (ctx.now, ctx.attempt, ctx.timeout_seconds) == (clock.now(), 3, 2.5)
    assert ctx.order["thirdPartyOrderId"] == "X-1"
    assert ctx.payload is None


async def test_the_recording_mailer_keeps_messages_and_raises_scripted_errors() -> None:
    mailer = RecordingMailer([PermanentError("550 no such user")])

    message = EmailMessage()
    with pytest.raises(PermanentError):
        await mailer.send(message, ["a@example.com"], 1.0)
    sent = await mailer.send(message, ["a@example.com"], 1.0)

    assert mailer.sent == [(message, ["a@example.com"])]
    assert sent.refused == {}
