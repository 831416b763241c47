"""Log lines are redacted, bounded in size, and written without holding the caller."""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from collections.abc import Iterator

import pytest
import structlog

from ordermill.logs import (
    MAX_EXCEPTION_CHARS,
    MAX_VALUE_CHARS,
    REDACTED,
    Redactor,
    configure_logging,
    flush_logs,
)
from tests.support.logstate import logging_restored


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        ("Authorization: Bearer abc.def", "Authorization: ", "abc.def"),
        ("(b'authorization', b'Basic dXNlcjpwYXNz')", "b'authorization'", "dXNlcjpwYXNz"),
        ("sent Bearer%20tok123 twice", "Bearer%20", "tok123"),
        ("key om_AbCdEf0123456789_-x in text", "om_", "AbCdEf0123456789"),
        ("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=", "whsec_", "MfKQ9r8GKYqrTwjUPD8"),
        ("webhook-signature: v1,K5oZfzN95Z9UVu1EsfQm", "webhook-signature", "K5oZfzN95Z9U"),
        ("sig v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=", "v1,", "K5oZfzN95Z9U"),
        ("POST /api/feedback/0a1b2c3d4e5f HTTP/1.1", "/api/feedback/", "0a1b2c3d4e5f"),
        ("GET /signin/link/Zm9vYmFyYmF6-_q HTTP/1.1", "/signin/link/", "Zm9vYmFyYmF6-_q"),
        ("GET /x?expires=1&signature=abc-_def&y=1", "expires=1&signature=", "abc-_def"),
        ("Cookie: ordermill_session=abc.def; other=1", "Cookie: ", "abc.def"),
        ("set ordermill_session=abc.def for", "ordermill_session=", "abc.def"),
    ],
)
def test_secrets_are_redacted_in_text_and_their_kind_stays(text: str, kept: str, gone: str) -> None:
    redacted = Redactor().text(text)

    assert gone not in redacted
    assert kept in redacted
    assert REDACTED in redacted


def test_secret_fields_known_values_and_nested_values_are_redacted() -> None:
    redactor = Redactor(["the-admin-key-1", "short"])
    event = {
        "event": "failed with the-admin-key-1",
        "headers": {"Authorization": "x", "Accept": "json", "nested": [{"cookie": "c"}]},
        "webhook_signature": "v1,abc",
        "password": "p",
        "count": 3,
    }

    out = redactor(None, "error", event)

    assert out == {
        "event": f"failed with {REDACTED}",
        "headers": {"Authorization": REDACTED, "Accept": "json", "nested": [{"cookie": REDACTED}]},
        "webhook_signature": REDACTED,
        "password": REDACTED,
        "count": 3,
    }
    assert redactor.text("a short word") == "a short word"  # too short to be a secret


class BlockedStderr(io.StringIO):
    """A stderr whose every write waits, as a full pipe would."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate

    def write(self, text: str) -> int:
        self.gate.wait(10)
        return super().write(text)


@contextlib.contextmanager
def blocked_stderr() -> Iterator[BlockedStderr]:
    """Logging configured onto a stderr that blocks until the test opens its gate."""
    gate = threading.Event()
    blocked = BlockedStderr(gate)
    try:
        with logging_restored(), contextlib.redirect_stderr(blocked):
            configure_logging("INFO", "json")
            yield blocked
            gate.set()
    finally:
        gate.set()


def recurse(depth: int) -> None:
    if depth == 0:
        raise RuntimeError("x" * 100_000)
    recurse(depth - 1)


def test_a_huge_exception_is_bounded_and_logging_it_does_not_wait_for_stderr() -> None:
    log = structlog.get_logger("ordermill.test")
    with blocked_stderr() as stderr:
        started = time.monotonic()
        for _ in range(20):
            try:
                recurse(300)
            except RuntimeError:
                log.exception("exploded", detail="y" * 100_000)
        elapsed = time.monotonic() - started
        stderr.gate.set()
        flush_logs()
    lines = [json.loads(line) for line in stderr.getvalue().splitlines()]
    assert elapsed < 2.0  # 20 tracebacks of 300 frames, formatted; not one write waited on
    assert len(lines) == 20
    for line in lines:
        assert len(line["exception"]) <= MAX_EXCEPTION_CHARS + 100
        assert line["exception"].startswith("Traceback (most recent call last)")
        assert line["exception"].endswith("x" * 100)  # the end, with the message, is kept
        assert "characters left out" in line["exception"]
        assert len(line["detail"]) <= MAX_VALUE_CHARS + 100
