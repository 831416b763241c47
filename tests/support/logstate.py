"""Leave logging as a test found it, after the test configured ordermill's logging."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import structlog

from ordermill.logs import flush_logs


@contextlib.contextmanager
def logging_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    structlog_config = structlog.get_config()
    try:
        yield
    finally:
        flush_logs()
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**structlog_config)
