"""Identifiers: time-ordered, unguessable, URL-safe."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower case
_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]  # 10 bits: two characters


def new_id(prefix: str) -> str:
    """A sortable id: 48 bits of milliseconds then 80 random bits, in base32 (26 characters).

    Ids made later sort after earlier ones, so "newest first" needs no extra column.
    """
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    pairs = []
    for _ in range(13):
        pairs.append(_PAIRS[value & 1023])
        value >>= 10
    pairs.reverse()
    return prefix + "".join(pairs)
