"""Identifiers: 26 characters of Crockford's base32, time first, so later ids sort after."""

from __future__ import annotations

import time

from ordermill.storage.ids import new_id

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _value(encoded: str) -> int:
    value = 0
    for char in encoded:
        value = value * 32 + ALPHABET.index(char)
    return value


def test_an_id_is_the_prefix_and_26_base32_characters_of_its_milliseconds_and_random_bits() -> None:
    before = int(time.time() * 1000)
    made = new_id("ord_")
    after = int(time.time() * 1000)
    assert made.startswith("ord_")
    encoded = made.removeprefix("ord_")
    assert len(encoded) == 26
    assert set(encoded) <= set(ALPHABET)
    value = _value(encoded)
    assert value < 2**128
    assert before <= value >> 80 <= after


def test_ids_made_later_sort_after_and_differ() -> None:
    first = new_id("t_")
    time.sleep(0.002)
    later = [new_id("t_") for _ in range(200)]
    assert all(first < made for made in later)
    assert len(set(later)) == len(later)
