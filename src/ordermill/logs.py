"""Structured logging (structlog): JSON lines in production, readable lines on a terminal.

Whatever the format, a log line never carries a secret and never stalls the event loop:

- exceptions are rendered as plain tracebacks, without local variables (which would hold ASGI
  scopes, headers and handler contexts), in the ``exception`` field of both formats;
- every value and the traceback pass through ``redact``, which removes API keys, bearer tokens,
  cookies, webhook signatures and secrets, feedback tokens in paths and signed-link signatures;
- each value is bounded in size (a traceback keeps its start and its end);
- lines are written to stderr by a background thread; the caller only queues them.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import re
import sys
import traceback
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from ordermill.config import Settings

REDACTED = "[redacted]"
MAX_VALUE_CHARS = 4_096
MAX_EXCEPTION_CHARS = 16_384
QUEUE_LINES = 10_000

# Keys whose values are secret whatever they hold (compared lower-case, "_" read as "-").
SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "webhook-signature",
        "x-api-key",
        "api-key",
        "admin-key",
        "password",
        "secret",
        "secrets",
        "signing-secrets",
        "signature",
        "csrf",
        "token",
        "feedback-token",
    }
)
_HEADER_NAMES = r"(?:proxy-)?authorization|(?:set-)?cookie|webhook-signature|x-api-key"
# (pattern, replacement): each keeps what says what was there and drops the secret itself.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A header in any rendering: "Authorization: x", ('authorization', 'x'), (b'cookie', b'x').
    (
        re.compile(rf"(?i)(\b(?:{_HEADER_NAMES})['\"]?\s*(?:[:=]|,)\s*b?['\"]?)[^'\"\r\n]+"),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(?i)\b(bearer|basic)(\s+|%20)[^\s'\",;)\]}>]+"), rf"\1\2{REDACTED}"),
    (re.compile(r"\bom_[A-Za-z0-9_-]+"), f"om_{REDACTED}"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+"), f"whsec_{REDACTED}"),
    (re.compile(r"\bv1,[A-Za-z0-9+/=]{16,}"), f"v1,{REDACTED}"),
    (re.compile(r"(/api/feedback/)[^/?#\s'\"]+"), rf"\1{REDACTED}"),
    (re.compile(r"(/signin/link/)[^/?#\s'\"]+"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)([?&;](?:signature|csrf|token|key)=)[^&\s'\"#]*"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)\b(ordermill_[a-z]*session=)[^;\s'\"]*"), rf"\1{REDACTED}"),
)


class Redactor:
    """Removes secrets from strings and event dicts: known values and recognisable shapes."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Short values would redact ordinary words; real secrets are long.
        self.secrets = tuple(sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True))

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        for pattern, replacement in _PATTERNS:
            value = pattern.sub(replacement, value)
        return value

    def value(self, value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return self.text(_bounded(value, MAX_VALUE_CHARS))
        if isinstance(value, bytes | bytearray):
            return self.text(_bounded(bytes(value).decode("utf-8", "replace"), MAX_VALUE_CHARS))
        if depth > 8:
            return "…"
        if isinstance(value, Mapping):
            return {
                k: REDACTED if _is_secret_key(k) else self.value(v, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(item, depth + 1) for item in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        return self.text(_bounded(repr(value), MAX_VALUE_CHARS))

    def __call__(self, logger: Any, method: str, event_dict: Any) -> Any:
        for key in list(event_dict):
            if key == "exception":
                event_dict[key] = self.text(event_dict[key])
            elif _is_secret_key(key):
                event_dict[key] = REDACTED
            else:
                event_dict[key] = self.value(event_dict[key])
        return event_dict


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and key.lower().replace("_", "-") in SECRET_KEYS


def _bounded(text: str, limit: int) -> str:
    """``text`` itself, or its start and end around a note of how much was left out."""
    if len(text) <= limit:
        return text
    head = limit // 4
    tail = limit - head
    return f"{text[:head]}\n… {len(text) - limit} characters left out …\n{text[-tail:]}"


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _exc_info(value: Any) -> ExcInfo | None:
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if isinstance(value, tuple) and len(value) == 3 and value[1] is not None:
        return value
    if value:
        current = sys.exc_info()
        return None if current[1] is None else current
    return None


def render_exception(logger: Any, method: str, event_dict: Any) -> Any:
    """Turn ``exc_info`` into an ``exception`` text: a plain traceback, no locals, bounded."""
    info = _exc_info(event_dict.pop("exc_info", None))
    if info is not None:
        text = "".join(traceback.format_exception(*info)).rstrip("\n")
        event_dict["exception"] = _bounded(text, MAX_EXCEPTION_CHARS)
    return event_dict


class _FormattingQueueHandler(logging.handlers.QueueHandler):
    """Formats a record in the caller (bounded work) and hands the line to the writer thread.

    When the writer cannot keep up (stderr blocked), lines are dropped rather than waited for.
    """

    dropped = 0

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        line = self.format(record)
        return logging.makeLogRecord({"msg": line, "levelno": record.levelno})

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            type(self).dropped += 1


class _StderrWriter(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each line to the ``sys.stderr`` of the moment, which tools and tests may swap."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


_listener: logging.handlers.QueueListener | None = None


def flush_logs() -> None:
    """Wait until every queued line has been written."""
    if _listener is not None:
        _listener.queue.join()  # type: ignore[attr-defined]


def _stop_listener() -> None:
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


def configure_logging(
    level: str = "INFO", fmt: str = "console", *, secrets: Iterable[str] = ()
) -> None:
    """Route structlog and the standard library's logging through one renderer on stderr.

    ``secrets`` are values (the admin key, the SMTP password) removed from every line verbatim.
    """
    global _listener
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            render_exception,
            Redactor(secrets),
            renderer,
        ],
    )
    _stop_listener()
    lines: queue.Queue[logging.LogRecord] = queue.Queue(QUEUE_LINES)
    handler = _FormattingQueueHandler(lines)
    handler.setFormatter(formatter)
    writer = _StderrWriter()
    _listener = logging.handlers.QueueListener(lines, writer)
    _listener.start()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # One line per HTTP request is noise at our volumes; uvicorn's errors are kept. Should the
    # access log be switched on, its paths pass through the same redaction.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def configure_logging_for(settings: Settings) -> None:
    """``configure_logging`` with the settings' level, format and secret values."""
    values = (
        settings.admin_key,
        settings.secret_key,
        settings.smtp_password,
        settings.s3_secret_access_key,
        settings.oidc_client_secret,
    )
    configure_logging(
        settings.log_level,
        settings.log_format,
        secrets=[value.get_secret_value() for value in values if value is not None],
    )


atexit.register(_stop_listener)
