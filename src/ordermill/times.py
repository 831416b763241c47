"""How ordermill writes instants: UTC, milliseconds, ``Z`` (``2026-09-23T14:23:17.580Z``)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache


@lru_cache(maxsize=1024)  # a unit writes its one ``now`` many times (order, tasks, events)
def iso(value: datetime | None) -> str | None:
    """The instant in ordermill's one wire format, or None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
