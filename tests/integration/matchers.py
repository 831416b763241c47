"""Values that compare equal to a whole family of values, so tests can assert whole documents.

`assert body == {"id": ORDER_ID, "createdAt": INSTANT, ...}` states every field of a response,
including the ones that differ from run to run (ids, timestamps), without ignoring them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any


class Matches:
    """Equal to any string that fully matches ``pattern``."""

    def __init__(self, pattern: str, label: str | None = None) -> None:
        self.pattern = re.compile(pattern)
        self.label = label or f"Matches({pattern!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.pattern.fullmatch(other) is not None

    def __hash__(self) -> int:
        return hash(self.pattern.pattern)

    def __repr__(self) -> str:
        return self.label


class _Instant:
    """Equal to an ISO 8601 UTC instant as the API writes it (``2026-01-01T00:00:00.000Z``)."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str):
            return False
        try:
            parsed = datetime.fromisoformat(other.replace("Z", "+00:00"))
        except ValueError:
            return False
        return parsed.tzinfo is not None and parsed.utcoffset() is not None

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "INSTANT"


INSTANT: Any = _Instant()
ORDER_ID: Any = Matches(r"ord_[0-9a-z]{26}", "ORDER_ID")
DELIVERY_ID: Any = Matches(r"dlv_[0-9a-z]{26}", "DELIVERY_ID")
SHA256_HEX: Any = Matches(r"[0-9a-f]{64}", "SHA256_HEX")
