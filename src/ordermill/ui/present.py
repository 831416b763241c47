"""How values read on the pages: dates, money, JSON, links, and errors in plain words."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ordermill.flows.status import OrderStatus, TaskStatus

# Orders whose page keeps refreshing: something can still change without an operator.
LIVE_ORDER_STATUSES = frozenset({OrderStatus.IN_PROGRESS, OrderStatus.UNHEALTHY})

_ERRORS = {
    "RetryableError": "The connector could not be reached or answered with a server error "
    "(5xx, 408, 425 or 429). ordermill tries again with a growing pause.",
    "AttemptTimeout": "The connector did not answer within the task's timeoutDuration.",
    "PermanentError": "The connector refused the order (a 4xx answer or a redirect). Another "
    "attempt cannot help: fix the cause on the connector's side, then press Retry.",
    "TargetRefused": "The connector's address is not allowed: it resolves to a private or "
    "reserved network. Allow the network (ORDERMILL_CONNECTOR_ALLOW_NETWORKS) or use a public "
    "address.",
    "WaitTimeout": "No answer came in time. A late answer can still complete the task.",
}


def explain_error(error: Any) -> str | None:
    """A sentence saying what went wrong and what to do, from a task's or attempt's error."""
    if not error:
        return None
    if isinstance(error, str):
        return _ERRORS.get(error)
    if isinstance(error, dict):
        return _ERRORS.get(str(error.get("class", "")))
    return None


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def money(value: float | None) -> str:
    return "—" if value is None else f"€ {value:,.2f}"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def compact(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    return text if len(text) <= 300 else text[:297] + "…"


def link_url(value: Any) -> str | None:
    """The URL if it is safe to put in an href (http or https only; never javascript:)."""
    if isinstance(value, str) and value.lower().startswith(("https://", "http://")):
        return value
    return None


def is_overdue(deadline: datetime | None, status: OrderStatus) -> bool:
    if deadline is None or status in (OrderStatus.SUCCESS, OrderStatus.CANCELLED):
        return False
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=UTC)
    return deadline < datetime.now(UTC)


def status_word(status: OrderStatus | TaskStatus | str) -> str:
    value = status.value if isinstance(status, OrderStatus | TaskStatus) else str(status)
    return value.replace("_", " ").lower()


def status_class(status: OrderStatus | TaskStatus | str) -> str:
    value = status.value if isinstance(status, OrderStatus | TaskStatus) else str(status)
    return "status-" + value.lower().replace("_", "-")


def excerpt(value: str | None, limit: int = 600) -> str:
    if not value:
        return ""
    return value if len(value) <= limit else value[:limit] + "…"


def ago(value: datetime | None, now: datetime) -> str:
    """A time relative to ``now`` in words: "just now", "3 min ago", "in 2 h", "5 days ago"."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    seconds = (value - now).total_seconds()
    span = abs(seconds)
    if span < 45:
        return "just now" if seconds <= 0 else "in a few seconds"
    for size, unit in ((86_400, "day"), (3_600, "h"), (60, "min")):
        if span >= size or unit == "min":
            amount = max(1, round(span / size))
            word = f"{amount} {unit}{'s' if unit == 'day' and amount != 1 else ''}"
            return f"{word} ago" if seconds < 0 else f"in {word}"
    return when(value)


# Headers that authenticate a delivery: never put into a command someone may paste elsewhere.
_SECRET_HEADERS = frozenset({"webhook-signature", "authorization", "cookie"})


def as_curl(request: Any) -> str | None:
    """A logged connector request as a ``curl`` command, without its signature."""
    if not isinstance(request, dict) or not isinstance(request.get("url"), str):
        return None
    parts = ["curl", "-X", str(request.get("method") or "POST"), shlex.quote(request["url"])]
    headers = request.get("headers")
    for name, value in headers.items() if isinstance(headers, dict) else ():
        if str(name).lower() not in _SECRET_HEADERS:
            parts += ["-H", shlex.quote(f"{name}: {value}")]
    body = request.get("body")
    if isinstance(body, str):
        parts += ["--data-binary", shlex.quote(body)]
    return " ".join(parts)


COUNT_CAP = 10_000
"""The list's counts per status stop here (``ui.reads.status_counts``); past it a chip says
"10,000+"."""


def count_label(count: int) -> str:
    """A chip's count: exact up to the cap, "10,000+" past it."""
    return f"{COUNT_CAP:,}+" if count > COUNT_CAP else f"{count:,}"


def total_label(counts: Mapping[Any, int]) -> str:
    """The "All" chip: the sum, with a "+" when a status passed the cap."""
    total = sum(counts.values())
    return f"{total:,}+" if any(n > COUNT_CAP for n in counts.values()) else f"{total:,}"


FILTERS: dict[str, Callable[..., Any]] = {
    "ago": ago,
    "as_curl": as_curl,
    "when": when,
    "iso": iso,
    "money": money,
    "pretty": pretty,
    "compact": compact,
    "link_url": link_url,
    "status_word": status_word,
    "status_class": status_class,
    "explain_error": explain_error,
    "excerpt": excerpt,
    "count_label": count_label,
}


CAUSE_LENGTH = 160
_REASON_KEYS = ("message", "detail", "error", "title", "reason")


def _reason(body: str | None) -> str | None:
    """The gist of a connector's answer: a message field of a JSON body, or its first line."""
    if not body or not body.strip():
        return None
    text = body.strip()
    if text.startswith("{") and len(text) < 65_536:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            for key in _REASON_KEYS:
                value = parsed.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip()
                if isinstance(value, dict) and isinstance(value.get("message"), str):
                    return str(value["message"]).strip()
    return text.splitlines()[0].strip()


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= CAUSE_LENGTH else flat[: CAUSE_LENGTH - 1] + "…"


def cause_line(task_key: str, error: Any, response_body: str | None) -> str:
    """One line saying which task failed and why, such as
    ``book-erp: the connector answered 400 — Unknown material code``."""
    detail = error if isinstance(error, dict) else {}
    message = str(detail.get("message") or (error if isinstance(error, str) else "") or "")
    code = detail.get("statusCode")
    if isinstance(code, int):
        reason = _reason(response_body) or message
        said = f"the connector answered {code}"
        return _shorten(f"{task_key}: {said} — {reason}" if reason else f"{task_key}: {said}")
    if detail.get("class") == "AttemptTimeout":
        return _shorten(f"{task_key}: the connector did not answer in time")
    return _shorten(f"{task_key}: {message or 'failed'}")
