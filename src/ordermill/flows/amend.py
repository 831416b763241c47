"""Amending an order's content: RFC 7396 JSON Merge Patch and the JSON pointers it changed.

Pure functions on decoded JSON. Their input comes from the bounded JSON parser, so it nests at
most a bounded number of levels and recursion here cannot exhaust the stack.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

AMENDABLE = ("addresses", "data", "orderLines")
FIXED = ("spaceKey", "flowKey", "thirdPartyOrderId")
MAX_DIFF_ENTRIES = 200  # the timeline keeps at most this many changed values per amendment


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with ``patch`` applied (RFC 7396): objects merge, ``null`` removes a member,
    anything else (arrays included) replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def changes(old: Any, new: Any, at: str = "") -> list[dict[str, Any]]:
    """Where ``new`` differs from ``old``: ``{"pointer", "old", "new"}`` per smallest changed
    value (a member or array element), with ``old``/``new`` left out where absent."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[dict[str, Any]] = []
        for name in [*old, *(n for n in new if n not in old)]:
            pointer = f"{at}/{_escape(name)}"
            if name not in new:
                found.append({"pointer": pointer, "old": old[name]})
            elif name not in old:
                found.append({"pointer": pointer, "new": new[name]})
            else:
                found += changes(old[name], new[name], pointer)
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        found = []
        for index, (before, after) in enumerate(zip(old, new, strict=True)):
            found += changes(before, after, f"{at}/{index}")
        return found
    return [{"pointer": at, "old": old, "new": new}]


def patch_hash(patch: Any) -> str:
    """A stable hash of a patch, to tell a repeated amendment from a different one."""
    canonical = json.dumps(patch, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
