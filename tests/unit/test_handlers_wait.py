"""wait: when a timer wakes up, and what the handler tells the engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ordermill.errors import PermanentError
from ordermill.handlers.base import Succeeded, Waiting
from ordermill.handlers.wait import Wait, WaitPayload, wake_time
from ordermill.testing import EPOCH, FakeClock, make_context, sample_order

NOW = datetime(2026, 9, 23, 12, 0, tzinfo=UTC)


def lines(*deadlines: str | None) -> dict[str, object]:
    order = sample_order()
    template = order["orderLines"][0]
    order["orderLines"] = [{**template, "deadline": deadline} for deadline in deadlines]
    return order


def payload(**fields: object) -> WaitPayload:
    return WaitPayload.model_validate(fields)


def test_a_duration_counts_from_now() -> None:
    assert wake_time(payload(durationMs=90_000), sample_order(), NOW) == NOW + timedelta(seconds=90)


def test_an_instant_with_an_offset_keeps_its_time_zone_meaning() -> None:
    until = wake_time(payload(until="2026-10-01T02:00:00+02:00", offsetMs=-3_600_000), {}, NOW)

    assert until == datetime(2026, 9, 30, 23, 0, tzinfo=UTC)


def test_an_instant_without_a_zone_means_utc() -> None:
    assert wake_time(payload(until="2026-10-01T00:00:00"), {}, NOW) == datetime(
        2026, 10, 1, tzinfo=UTC
    )


def test_deadline_is_the_earliest_line_deadline_minus_the_offset() -> None:
    order = lines("2026-10-05T00:00:00Z", None, "2026-10-03T12:00:00.000Z")

    until = wake_time(payload(until="deadline", offsetMs=-172_800_000), order, NOW)

    assert until == datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def test_deadline_on_an_order_without_deadlines_is_a_permanent_error() -> None:
    with pytest.raises(PermanentError, match="no order line of this order has a deadline"):
        wake_time(payload(until="deadline"), lines(None, None), NOW)


async def test_a_future_time_is_a_durable_timer() -> None:
    ctx = make_context(Wait, {"durationMs": 1500})

    outcome = await Wait().run(ctx)

    assert outcome == Waiting(
        until=EPOCH + timedelta(milliseconds=1500),
        fire=True,
        result={"until": "2026-09-23T12:00:01.500Z"},
    )


async def test_a_time_already_past_succeeds_at_once_with_a_message() -> None:
    clock = FakeClock()
    clock.advance(days=30)
    ctx = make_context(Wait, {"until": "deadline", "offsetMs": -1000}, clock=clock)

    outcome = await Wait().run(ctx)

    assert outcome == Succeeded(
        {
            "until": "2026-09-30T23:59:59.000Z",
            "message": "2026-09-30T23:59:59.000Z had already passed when the task ran: "
            "nothing to wait for",
        }
    )


async def test_a_zero_duration_does_not_wait() -> None:
    outcome = await Wait().run(make_context(Wait, {"durationMs": 0}))

    assert outcome == Succeeded(
        {"until": "2026-09-23T12:00:00.000Z", "message": "durationMs is 0: nothing to wait for"}
    )
