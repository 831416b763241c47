"""Identifiers: time-ordered, unguessable, URL-safe."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower case


def new_id(prefix: str) -> str:
    """A sortable id: 48 bits of milliseconds then 80 random bits, in base32 (26 characters).

    Ids made later sort after earlier ones, so "newest first" needs no extra column.
    """
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return prefix + "".join(reversed(chars))
