"""Retry decisions (SPEC §3.4): whether a failed attempt gets another, and after how long.

Everything here is deterministic: the caller passes the jitter (``random.random()``) and the
current time, so the engine's choices can be replayed in tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

from ordermill.flows.model import RetryPolicy
from ordermill.flows.status import TaskStatus

DEFAULT_RETRY = RetryPolicy(max_attempts=1)
"""The policy of handlers that name no default of their own: a single attempt."""

_DELTA_SECONDS = re.compile(r"[0-9]{1,12}")
_RETRYABLE_STATUSES = frozenset({408, 425, 429})


class FailureKind(StrEnum):
    RETRYABLE = "retryable"  # another attempt may succeed: connection error, 5xx, 408/425/429
    TIMEOUT = "timeout"  # the attempt ran past its timeoutDuration; worth another attempt
    PERMANENT = "permanent"  # no attempt can help: other 4xx, 3xx, a refused target


@dataclass(frozen=True)
class RetryDecision:
    """Retry after ``delay_ms``, or end the task with ``final_status``."""

    retry: bool
    delay_ms: int  # meaningful when ``retry``; 0 otherwise
    final_status: TaskStatus | None  # FAILED or TIMED_OUT when not retrying


def decide_retry(
    policy: RetryPolicy,
    attempt: int,
    kind: FailureKind,
    *,
    retry_after_ms: int | None = None,
    jitter: float = 0.5,
) -> RetryDecision:
    """Decide what follows attempt number ``attempt`` (1-based) that failed as ``kind``.

    A PERMANENT failure ends the task FAILED at once. When the attempts are used up the task
    ends FAILED, or TIMED_OUT when the last attempt timed out. Otherwise the next attempt
    waits the jittered backoff; a server's ``Retry-After`` lengthens that wait, but only up
    to ``policy.max_interval_ms``, so a server cannot park a task for longer than its policy
    allows.
    """
    if kind is FailureKind.PERMANENT:
        return RetryDecision(retry=False, delay_ms=0, final_status=TaskStatus.FAILED)
    if attempt >= policy.max_attempts:
        final = TaskStatus.TIMED_OUT if kind is FailureKind.TIMEOUT else TaskStatus.FAILED
        return RetryDecision(retry=False, delay_ms=0, final_status=final)
    delay = backoff_delay_ms(policy, attempt, jitter)
    if retry_after_ms is not None:
        delay = max(delay, min(max(retry_after_ms, 0), policy.max_interval_ms))
    return RetryDecision(retry=True, delay_ms=delay, final_status=None)


def backoff_delay_ms(policy: RetryPolicy, attempt: int, jitter: float) -> int:
    """The wait after attempt ``attempt``, with "equal jitter".

    The exponential delay ``initial * coefficient ** (attempt - 1)``, capped at the policy's
    maximum, is scaled by ``0.5 + jitter / 2``: half of it is guaranteed, so retries never
    bunch up at zero, and the other half spreads retrying clients apart.
    """
    exponent = max(attempt, 1) - 1
    try:
        delay = policy.initial_interval_ms * policy.backoff_coefficient**exponent
    except OverflowError:
        delay = float(policy.max_interval_ms)
    delay = min(delay, float(policy.max_interval_ms))
    spread = 0.5 + min(max(jitter, 0.0), 1.0) / 2
    return round(delay * spread)


def classify_http_status(status: int) -> FailureKind | None:
    """How a connector's HTTP answer counts: None for 2xx, else RETRYABLE or PERMANENT.

    408, 425, 429 and 5xx are worth another attempt; 1xx, 3xx (redirects are never followed)
    and every other 4xx are not.
    """
    if 200 <= status <= 299:
        return None
    if status in _RETRYABLE_STATUSES or 500 <= status <= 599:
        return FailureKind.RETRYABLE
    return FailureKind.PERMANENT


def parse_retry_after(value: str | None, now: datetime) -> int | None:
    """A ``Retry-After`` header as milliseconds from ``now``; None when absent or malformed.

    Both forms of RFC 9110 are read: delta-seconds (``"120"``) and an HTTP-date. A date in
    the past gives 0. A naive ``now`` or date is taken as UTC.
    """
    if value is None:
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        return int(text) * 1000
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return max(round((when - now).total_seconds() * 1000), 0)


def retry_horizon_ms(policy: RetryPolicy, timeout_ms: int) -> int:
    """An upper bound on how long one delivery can take: every attempt running to its timeout,
    with the longest gap (``max_interval_ms``, which also caps Retry-After) between them."""
    attempts = max(1, policy.max_attempts)
    return attempts * timeout_ms + (attempts - 1) * policy.max_interval_ms
