"""Retry decisions (SPEC §3.4): classification, backoff with jitter, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordermill.flows import (
    FailureKind,
    RetryDecision,
    RetryPolicy,
    TaskStatus,
    classify_http_status,
    decide_retry,
)
from ordermill.flows.retry import DEFAULT_RETRY, backoff_delay_ms, parse_retry_after

RETRYABLE = FailureKind.RETRYABLE
TIMEOUT = FailureKind.TIMEOUT
PERMANENT = FailureKind.PERMANENT
POLICY = RetryPolicy(
    max_attempts=5, initial_interval_ms=1000, backoff_coefficient=2.0, max_interval_ms=300_000
)
CAPPED = RetryPolicy(
    max_attempts=10, initial_interval_ms=1000, backoff_coefficient=2.0, max_interval_ms=5000
)
NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def retry_in(delay_ms: int) -> RetryDecision:
    return RetryDecision(retry=True, delay_ms=delay_ms, final_status=None)


def give_up(status: TaskStatus) -> RetryDecision:
    return RetryDecision(retry=False, delay_ms=0, final_status=status)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (100, PERMANENT),
        (101, PERMANENT),
        (200, None),
        (201, None),
        (202, None),
        (204, None),
        (299, None),
        (301, PERMANENT),
        (302, PERMANENT),
        (304, PERMANENT),
        (307, PERMANENT),
        (308, PERMANENT),
        (400, PERMANENT),
        (401, PERMANENT),
        (403, PERMANENT),
        (404, PERMANENT),
        (408, RETRYABLE),
        (409, PERMANENT),
        (410, PERMANENT),
        (422, PERMANENT),
        (425, RETRYABLE),
        (429, RETRYABLE),
        (451, PERMANENT),
        (500, RETRYABLE),
        (502, RETRYABLE),
        (503, RETRYABLE),
        (504, RETRYABLE),
        (599, RETRYABLE),
        (600, PERMANENT),
    ],
)
def test_http_status_classification(status: int, kind: FailureKind | None) -> None:
    assert classify_http_status(status) == kind


@pytest.mark.parametrize(
    ("policy", "attempt", "kind", "jitter", "retry_after_ms", "decision"),
    [
        (POLICY, 1, PERMANENT, 0.5, None, give_up(TaskStatus.FAILED)),
        (POLICY, 1, RETRYABLE, 0.5, None, retry_in(750)),
        (POLICY, 1, RETRYABLE, 0.0, None, retry_in(500)),
        (POLICY, 2, RETRYABLE, 0.0, None, retry_in(1000)),
        (POLICY, 3, TIMEOUT, 0.5, None, retry_in(3000)),
        (POLICY, 4, RETRYABLE, 0.999, None, retry_in(7996)),
        (POLICY, 5, RETRYABLE, 0.5, None, give_up(TaskStatus.FAILED)),
        (POLICY, 5, TIMEOUT, 0.5, None, give_up(TaskStatus.TIMED_OUT)),
        (POLICY, 9, TIMEOUT, 0.5, None, give_up(TaskStatus.TIMED_OUT)),
        (CAPPED, 4, RETRYABLE, 0.5, None, retry_in(3750)),
        (CAPPED, 9, RETRYABLE, 0.0, None, retry_in(2500)),
        (POLICY, 1, RETRYABLE, 0.5, 10_000, retry_in(10_000)),
        (POLICY, 3, RETRYABLE, 0.5, 100, retry_in(3000)),
        (POLICY, 1, RETRYABLE, 0.5, -5, retry_in(750)),
        (CAPPED, 1, RETRYABLE, 0.5, 60_000, retry_in(5000)),
        (POLICY, 1, PERMANENT, 0.5, 10_000, give_up(TaskStatus.FAILED)),
        (DEFAULT_RETRY, 1, RETRYABLE, 0.5, None, give_up(TaskStatus.FAILED)),
        (DEFAULT_RETRY, 1, TIMEOUT, 0.5, None, give_up(TaskStatus.TIMED_OUT)),
    ],
)
def test_retry_decisions(
    policy: RetryPolicy,
    attempt: int,
    kind: FailureKind,
    jitter: float,
    retry_after_ms: int | None,
    decision: RetryDecision,
) -> None:
    assert (
        decide_retry(policy, attempt, kind, retry_after_ms=retry_after_ms, jitter=jitter)
        == decision
    )


def test_default_retry_is_a_single_attempt() -> None:
    assert RetryPolicy(max_attempts=1) == DEFAULT_RETRY


def test_backoff_of_a_huge_attempt_number_is_the_maximum_interval() -> None:
    policy = RetryPolicy(max_attempts=100, backoff_coefficient=10.0, max_interval_ms=86_400_000)
    assert backoff_delay_ms(policy, 5000, 0.5) == 64_800_000


@settings(max_examples=200, database=None)
@given(
    attempt=st.integers(-3, 200),
    jitter=st.floats(-1, 2),
    coefficient=st.floats(1.0, 10.0),
    initial=st.integers(0, 86_400_000),
)
def test_backoff_stays_between_half_and_all_of_the_capped_delay(
    attempt: int, jitter: float, coefficient: float, initial: int
) -> None:
    policy = RetryPolicy(100, initial, coefficient, max(initial, 60_000))
    full = min(policy.max_interval_ms, initial * coefficient ** (max(attempt, 1) - 1))
    assert full / 2 - 1 <= backoff_delay_ms(policy, attempt, jitter) <= full + 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120_000),
        (" 5 ", 5000),
        ("0", 0),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("9" * 40, None),
        ("Thu, 01 Jan 2026 12:00:30 GMT", 30_000),
        ("Thu, 01 Jan 2026 11:00:00 GMT", 0),
        ("Thu, 01 Jan 2026 13:00:00 +0100", 0),
        ("Thu, 32 Jan 2026 12:00:30 GMT", None),
    ],
)
def test_retry_after_parsing(value: str | None, expected: int | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_date_against_a_naive_now_is_read_as_utc() -> None:
    naive = NOW.replace(tzinfo=None) - timedelta(seconds=10)
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", naive) == 40_000


@settings(max_examples=300, database=None)
@given(st.text(max_size=40) | st.from_regex(r"[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4}.*"))
def test_retry_after_parsing_never_raises_nor_goes_negative(value: str) -> None:
    parsed = parse_retry_after(value, NOW)
    assert parsed is None or parsed >= 0
