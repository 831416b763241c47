"""JSON encoding for the hot paths: orjson, falling back to the standard library for the few
values orjson refuses (integers beyond 64 bits, which clients may put in order data)."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    """Compact UTF-8 JSON; key order kept unless ``sort_keys``."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except TypeError:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
        return text.encode()


def dumps_text(value: Any) -> str:
    return dumps(value).decode()


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises json.JSONDecodeError (a ValueError) for text that is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # big integers orjson refuses; real errors raise here
