"""What the operator reads: causes in one line, times in words, curl without secrets, and the
text an order is found by."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, timedelta

import pytest

from ordermill.storage.search import MAX_TEXT, searchable_text
from ordermill.ui.present import CAUSE_LENGTH, ago, as_curl, cause_line

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("error", "body", "expected"),
    [
        (
            {"class": "PermanentError", "message": "the connector answered 400", "statusCode": 400},
            '{"type": "about:blank", "message": "Unknown material code"}',
            "book-erp: the connector answered 400 — Unknown material code",
        ),
        (
            {"class": "PermanentError", "message": "the connector answered 422", "statusCode": 422},
            '{"title": "Unprocessable", "detail": "no SKU"}',
            "book-erp: the connector answered 422 — no SKU",
        ),
        (
            {"class": "RetryableError", "message": "the connector answered 503", "statusCode": 503},
            "Service Unavailable\n<html>…</html>",
            "book-erp: the connector answered 503 — Service Unavailable",
        ),
        (
            {"class": "PermanentError", "message": "the connector answered 400", "statusCode": 400},
            None,
            "book-erp: the connector answered 400 — the connector answered 400",
        ),
        (
            {"class": "AttemptTimeout", "message": "no answer within 5 s"},
            None,
            "book-erp: the connector did not answer in time",
        ),
        (
            {"class": "ConfirmationRejected", "message": "wrong colour"},
            None,
            "book-erp: wrong colour",
        ),
        (None, None, "book-erp: failed"),
    ],
)
def test_a_cause_is_one_line_naming_the_task_and_the_answer(
    error: object, body: str | None, expected: str
) -> None:
    assert cause_line("book-erp", error, body) == expected


def test_a_long_cause_is_cut_to_one_short_line() -> None:
    error = {"class": "PermanentError", "message": "x", "statusCode": 400}
    line = cause_line("t", error, "word " * 500)
    assert len(line) == CAUSE_LENGTH
    assert line.endswith("…")
    assert "\n" not in line


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(seconds=-5), "just now"),
        (timedelta(minutes=-3), "3 min ago"),
        (timedelta(hours=-2, minutes=-10), "2 h ago"),
        (timedelta(days=-1), "1 day ago"),
        (timedelta(days=-5), "5 days ago"),
        (timedelta(minutes=30), "in 30 min"),
        (timedelta(hours=20), "in 20 h"),
    ],
)
def test_times_read_relative_to_now(delta: timedelta, words: str) -> None:
    assert ago(NOW + delta, NOW) == words
    assert ago(None, NOW) == "—"


def test_curl_repeats_the_request_without_its_signature() -> None:
    request = {
        "method": "POST",
        "url": "https://erp.example.com/orders?x=1&y=2",
        "headers": {
            "Content-Type": "application/json",
            "webhook-id": "dlv_1",
            "webhook-signature": "v1,abcdefghij…",
        },
        "body": '{"order": {"note": "it\'s $HOME"}}',
        "responseHeaders": {"Set-Cookie": "no"},
    }
    command = as_curl(request)
    assert command is not None
    assert shlex.split(command) == [
        "curl",
        "-X",
        "POST",
        "https://erp.example.com/orders?x=1&y=2",
        "-H",
        "Content-Type: application/json",
        "-H",
        "webhook-id: dlv_1",
        "--data-binary",
        '{"order": {"note": "it\'s $HOME"}}',
    ]
    assert as_curl({"notified": ["a@example.com"]}) is None


def test_an_order_is_found_by_its_ids_and_every_text_in_its_body() -> None:
    body = {
        "thirdPartyOrderId": "WEB-1",
        "data": {"customerReference": "ACME-PO-4471", "deep": [[{"mail": "Jo@Example.com"}]]},
        "addresses": [{"data": {"city": "Gent\x00"}}],
        "orderLines": [{"amountOfUnits": 2, "title": "WEB-1"}],
    }
    text = searchable_text("ord_ABC", body)
    assert text.split("\n") == ["ord_abc", "web-1", "acme-po-4471", "jo@example.com", "gent"]
    assert len(searchable_text("ord_x", {"data": {"n": "y" * 10_000}})) == MAX_TEXT
