"""The bounded parser for request bodies: what it keeps, and each limit exactly at its edge."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordermill.errors import InvalidInput
from ordermill.jsoncodec import (
    MAX_DEPTH,
    MAX_NUMBER_CHARS,
    MAX_STRING_CHARS,
    _parse_carefully,
    dumps,
    loads,
    parse_untrusted,
)

TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]))
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**38), max_value=10**38)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=30,
)


def problem_of(text: str) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        parse_untrusted(text)
    [problem] = caught.value.problems
    return problem.as_dict()


@given(VALUES)
def test_json_within_the_limits_reads_back_exactly(value: Any) -> None:
    assert parse_untrusted(json.dumps(value)) == value
    assert parse_untrusted(json.dumps(value, ensure_ascii=False).encode()) == value


# JSON values that break a limit or come close to one, put where a value goes ...
HOSTILE_VALUES = [
    '{"a":1,"a":2}',
    '{"a" :1,"a": 2}',
    '{"\\u0061":1,"a":2}',
    '{"a":{"a":1},"b":{"a":1}}',
    '"\\u0000"',
    '{"k\\u0000":1}',
    '"x\\\\u0000"',
    "1e999",
    "-1e400",
    "1e308",
    "9" * (MAX_NUMBER_CHARS + 1),
    "9" * MAX_NUMBER_CHARS,
    "1" * 25,
    "-" + "1" * 19,
    "1.5e-10",
    "-1234567890123.1234567890123e-12345678901",  # too long, yet no run of 19 digits
    "[" * (MAX_DEPTH - 3) + "]" * (MAX_DEPTH - 3),
    "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
]
# ... and pieces spliced anywhere, which mostly make the text invalid.
SPLICES = st.sampled_from(["NaN", "Infinity", "[", "]", "{", "}", ",", ":", '"', '\\"', "\x00"])
RAW = "\x01raw-{}\x01"
WITH_HOSTILE = st.recursive(
    VALUES | st.integers(0, len(HOSTILE_VALUES) - 1).map(RAW.format),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=10,
)


def outcome(parse: Any, text: str) -> tuple[str, Any]:
    try:
        return "parsed", parse(text)
    except InvalidInput as refused:
        return "refused", [problem.as_dict() for problem in refused.problems]


@settings(max_examples=400)
@given(
    WITH_HOSTILE,
    st.sampled_from([0, 1, 2, MAX_DEPTH - 2, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1]),
    st.lists(st.tuples(st.integers(0, 10_000), SPLICES), max_size=2),
)
def test_the_usual_path_answers_as_the_careful_scan_would(
    value: Any, depth: int, splices: list[tuple[int, str]]
) -> None:
    """Most bodies are vouched for without the token scan; whatever the text, the answer (the
    document, or the refusal and its pointer) is the one the careful scan gives."""
    text = "[" * depth + json.dumps(value, ensure_ascii=False) + "]" * depth
    for n, raw in enumerate(HOSTILE_VALUES):
        text = text.replace(json.dumps(RAW.format(n), ensure_ascii=False), raw)
    for at, piece in splices:
        at %= len(text) + 1
        text = text[:at] + piece + text[at:]
    assert outcome(parse_untrusted, text) == outcome(_parse_carefully, text)


@pytest.mark.parametrize("raw", HOSTILE_VALUES)
@pytest.mark.parametrize("where", ["{}", '{{"a": [1, {{"b": {}}}]}}', "[" * 60 + "{}" + "]" * 60])
def test_each_hostile_value_is_answered_as_the_careful_scan_would(raw: str, where: str) -> None:
    text = where.format(raw)
    assert outcome(parse_untrusted, text) == outcome(_parse_carefully, text)


def test_nesting_is_allowed_up_to_the_limit_and_refused_past_it() -> None:
    assert parse_untrusted("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    deeper = '{"a": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}"
    assert problem_of(deeper) == {
        "pointer": "/a" + "/0" * (MAX_DEPTH - 1),
        "message": f"nesting deeper than {MAX_DEPTH} levels",
    }


def test_brackets_and_quotes_inside_strings_are_not_structure() -> None:
    text = json.dumps({"s": "[" * 500 + '\\"{' * 100, "k": ["]", "}"]})
    assert parse_untrusted(text)["k"] == ["]", "}"]


@pytest.mark.parametrize(
    ("text", "pointer", "message"),
    [
        ('{"a": 1, "b": {"c": 1, "c": 2}}', "/b/c", "duplicate key 'c'"),
        ('{"\\u0061": 1, "a": 2}', "/a", "duplicate key 'a'"),
        ('{"l": [1, {"x/y": 1, "x/y": 2}]}', "/l/1/x~1y", "duplicate key 'x/y'"),
        (
            '{"n": ' + "9" * (MAX_NUMBER_CHARS + 1) + "}",
            "/n",
            f"a number longer than {MAX_NUMBER_CHARS} characters",
        ),
        ('{"n": [1, NaN]}', "/n/1", "must be a finite number (NaN and Infinity are not JSON)"),
        ('{"n": -Infinity}', "/n", "must be a finite number (NaN and Infinity are not JSON)"),
        ('{"n": 1e999}', "/n", "must be a finite number (NaN and Infinity are not JSON)"),
        ('{"s": "a\\u0000"}', "/s", "the string contains the NUL character (U+0000)"),
        ('{"k\\u0000": 1}', "/k\x00", "the key contains the NUL character (U+0000)"),
        (
            json.dumps({"s": "x" * (MAX_STRING_CHARS + 1)}),
            "/s",
            f"a string longer than {MAX_STRING_CHARS} characters",
        ),
        ("{", "", "the request body is not valid JSON"),
        ("", "", "the request body is not valid JSON"),
    ],
)
def test_each_refusal_names_its_pointer(text: str, pointer: str, message: str) -> None:
    assert problem_of(text) == {"pointer": pointer, "message": message}


def test_bytes_that_are_not_utf8_are_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_untrusted(b'{"a": "\xff"}')
    assert caught.value.problems[0].message == "the request body is not UTF-8 text"


def test_a_number_at_the_limit_is_kept_exactly() -> None:
    wide = int("9" * MAX_NUMBER_CHARS)
    assert parse_untrusted(f"[{wide}, {-int('9' * (MAX_NUMBER_CHARS - 1))}]")[0] == wide


def test_a_wide_integer_beside_a_time_is_written_as_orjson_writes_the_time() -> None:
    at = datetime(2026, 12, 7, 11, 0, 0, 123456, tzinfo=UTC)
    wide = 10**30
    assert dumps({"at": at, "serial": wide}) == (
        b'{"at":' + orjson.dumps(at) + b',"serial":' + str(wide).encode() + b"}"
    )


@pytest.mark.parametrize("as_bytes", [False, True])
def test_loads_keeps_integers_beyond_64_bits_exact(as_bytes: bool) -> None:
    text = '{"wide": 123456789012345678901234567890, "id": "ord_1234567890123456789012", "f": 0.5}'
    data: str | bytes = text.encode() if as_bytes else text
    assert loads(data) == {
        "wide": 123456789012345678901234567890,
        "id": "ord_1234567890123456789012",
        "f": 0.5,
    }
