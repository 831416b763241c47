"""JSON for ordermill: orjson on the hot paths, and the one bounded parser for untrusted bodies.

Encoding falls back to the standard library for the few values orjson refuses (integers beyond
64 bits). Decoding a request body goes through :func:`parse_untrusted`: a usual body is parsed
by orjson (bounded in depth by itself) and vouched for by one walk of the result; anything else
is checked against the limits below *before* the standard library's recursive parser sees the
text (an iterative scan that skips over strings), then parsed and checked. Each refusal is an
``InvalidInput`` whose problem names the JSON pointer of the offending value
(docs/reference/limits.md).
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from typing import Any

import orjson

from ordermill.errors import InvalidInput, Problem

MAX_DEPTH = 64
"""Arrays and objects nested deeper than this are refused."""
MAX_STRING_CHARS = 262_144
"""The longest string (value or key), in characters."""
MAX_NUMBER_CHARS = 40
"""The longest number literal, in characters (sign, digits, point and exponent)."""

# One token: a whole string (escapes included), a number literal, or a structural character.
# Strings are matched first, so brackets and digits inside them are skipped in one step.
_TOKENS = re.compile(
    r'"[^"\\]*(?:\\.[^"\\]*)*"|-?[0-9][0-9.eE+-]*|[{}\[\],:]|-?Infinity|NaN', re.DOTALL
)
_WIDE_INTEGER = 19  # digits from which an integer may not fit orjson's 64 bits
_WIDE_TEXT = re.compile(f"[0-9]{{{_WIDE_INTEGER}}}")
_WIDE_BYTES = re.compile(_WIDE_TEXT.pattern.encode())
# A run of number characters in which an integer may be too wide for orjson or a literal may
# reach the length limit (a run inside a string only sends the body the careful way). A JSON
# number starts with a minus or a digit, so only a run starting so is looked for.
_NUMBER_RUN = re.compile(f"[-0-9][-+.eE0-9]{{{min(_WIDE_INTEGER, MAX_NUMBER_CHARS) - 1}}}")
# Where a key ends: a quote, JSON whitespace, a colon. Each key is one; a quote and colon inside
# a string adds one more. ``'":'`` is counted by ``str.count``, the rest by this pattern.
_KEY_ENDS_SPACED = re.compile(r'"[ \t\r\n]+:')
_JSON_SPACE = (" ", "\n", "\r", "\t")
_FORBIDDEN_CHAR = "\x00"  # PostgreSQL's text and jsonb cannot hold it
_CONTAINERS = (dict, list)  # what orjson makes of arrays and objects (exactly these types)


def dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    """Compact UTF-8 JSON; key order kept unless ``sort_keys``."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except TypeError:
        text = json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys, default=_iso
        )
        return text.encode()


def _iso(value: Any) -> str:
    """What orjson writes for a time, for the standard library's fallback."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps_text(value: Any) -> str:
    return dumps(value).decode()


def loads(data: bytes | str) -> Any:
    """Parse JSON we wrote ourselves; raises json.JSONDecodeError (a ValueError) for non-JSON.

    orjson reads an integer beyond 64 bits as a float, so text with a run of that many digits
    goes to the standard library, which keeps it exact (a run inside a string only costs the
    slower parser)."""
    found = _WIDE_TEXT.search(data) if isinstance(data, str) else _WIDE_BYTES.search(data)
    if found is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)  # real errors raise here


def parse_untrusted(raw: bytes | str) -> Any:
    """Parse a request body within the limits, or raise InvalidInput naming where it broke.

    Refused: text that is not UTF-8 JSON, nesting deeper than MAX_DEPTH, a duplicate key in an
    object, a number literal longer than MAX_NUMBER_CHARS or that is not finite (``NaN``,
    ``Infinity``, ``1e999``), a string longer than MAX_STRING_CHARS, and the NUL character.
    """
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise _refused("", "the request body is not UTF-8 text") from exc
    document = _parse_plain(text)
    if document is _NOT_PLAIN:
        document = _parse_carefully(text)
    return document


_NOT_PLAIN: Any = object()


def _parse_plain(text: str) -> Any:
    """The usual body, vouched for in a few passes of C code and one walk of what was parsed.

    Gives up (``_NOT_PLAIN``) at anything it cannot vouch for without the token scan: a run of
    digits an integer could be too wide in, a literal near the number limit, text orjson
    refuses, or a limit the parsed document breaks. The careful path then parses again and
    names what is wrong, so a refusal reads the same whichever path found it."""
    if _NUMBER_RUN.search(text) is not None:
        return _NOT_PLAIN
    try:
        document = orjson.loads(text)  # bounded: orjson refuses nesting beyond 1,024
    except orjson.JSONDecodeError:
        return _NOT_PLAIN
    # The parsed objects hold at most as many keys as the text has, and a duplicate leaves one
    # fewer: so as many as the key ends counted means every key is there once.
    keys_in_text = text.count('":')
    if any(space in text for space in _JSON_SPACE):
        keys_in_text += len(_KEY_ENDS_SPACED.findall(text))
    strings = len(text) > MAX_STRING_CHARS or _FORBIDDEN_CHAR in text or "\\u0000" in text
    keys = 0
    # Level by level: ``level`` holds the containers at ``depth`` (orjson gives exact types).
    level: list[Any] = [document] if type(document) in _CONTAINERS else []
    depth = 1
    while level:
        if depth > MAX_DEPTH:
            return _NOT_PLAIN
        deeper: list[Any] = []
        for container in level:
            if type(container) is dict:
                keys += len(container)
                if strings and not all(_plain_string(key) for key in container):
                    return _NOT_PLAIN
                container = container.values()
            for item in container:
                if type(item) in _CONTAINERS:
                    deeper.append(item)
                elif strings and type(item) is str and not _plain_string(item):
                    return _NOT_PLAIN
        level = deeper
        depth += 1
    if strings and type(document) is str and not _plain_string(document):
        return _NOT_PLAIN
    return document if keys == keys_in_text else _NOT_PLAIN


def _plain_string(value: str) -> bool:
    return len(value) <= MAX_STRING_CHARS and _FORBIDDEN_CHAR not in value


def _parse_carefully(text: str) -> Any:
    """Scan the tokens first (depth, duplicate keys, number literals), then parse and check
    the values; each refusal names the JSON pointer where it broke."""
    wide = _scan(text)
    try:
        # orjson reads integers beyond 64 bits as floats; the standard library keeps them exact
        # (the scan bounded both their length and the nesting its recursion meets).
        document = json.loads(text, parse_constant=_no_constant) if wide else orjson.loads(text)
    except ValueError as exc:
        raise _refused("", "the request body is not valid JSON") from exc
    _check_values(document)
    return document


def _refused(pointer: str, message: str) -> InvalidInput:
    return InvalidInput([Problem(pointer, message)], "The request body is refused.")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _segment(part: str | int) -> str:
    return "/" + str(part).replace("~", "~0").replace("/", "~1")


def _scan(text: str) -> bool:
    """Depth, duplicate keys and number literals, without recursion and without parsing.

    Returns whether an integer literal may be too wide for orjson.
    """
    # One frame per open container: [keys seen (None for an array), current key or index].
    frames: list[list[Any]] = []
    expect_key = wide = False
    for match in _TOKENS.finditer(text):
        token = match.group()
        first = token[0]
        if first in "{[":
            if len(frames) >= MAX_DEPTH:
                path = "".join(_segment(frame[1]) for frame in frames)
                raise _refused(path, f"nesting deeper than {MAX_DEPTH} levels")
            frames.append([set() if first == "{" else None, 0])
            expect_key = first == "{"
        elif first in "}]":
            if frames:
                frames.pop()
            expect_key = False
        elif first == ",":
            if frames and frames[-1][0] is None:
                frames[-1][1] += 1
            expect_key = bool(frames) and frames[-1][0] is not None
        elif first == '"':
            if expect_key and frames:
                key = _key_of(token)
                seen: set[str] = frames[-1][0]
                if key in seen:
                    path = "".join(_segment(frame[1]) for frame in frames[:-1])
                    raise _refused(f"{path}{_segment(key)}", f"duplicate key {key!r}")
                seen.add(key)
                frames[-1][1] = key
                expect_key = False
        elif first in "-0123456789NI":
            if "N" in token or "I" in token or not _finite(token):
                path = "".join(_segment(frame[1]) for frame in frames)
                raise _refused(path, "must be a finite number (NaN and Infinity are not JSON)")
            if len(token) > MAX_NUMBER_CHARS:
                path = "".join(_segment(frame[1]) for frame in frames)
                raise _refused(path, f"a number longer than {MAX_NUMBER_CHARS} characters")
            wide = wide or (len(token) >= _WIDE_INTEGER and not any(c in token for c in ".eE"))
    return wide


def _finite(token: str) -> bool:
    if "e" not in token and "E" not in token:
        return True
    try:
        return math.isfinite(float(token))
    except ValueError:
        return True  # not a number at all: the parser reports it


def _key_of(token: str) -> str:
    if "\\" not in token:
        return token[1:-1]
    try:
        key = json.loads(token)
    except ValueError:
        return token  # malformed: the parser reports it
    return str(key)


def _check_values(document: Any) -> None:
    """Finite numbers, bounded strings, no NUL: checked with an explicit stack, no recursion."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                child = path + _segment(key)
                _check_string(child, key, "key")
                stack.append((child, item))
        elif isinstance(value, list):
            stack.extend((f"{path}/{index}", item) for index, item in enumerate(value))
        elif isinstance(value, str):
            _check_string(path, value, "string")
        elif isinstance(value, float) and not math.isfinite(value):
            raise _refused(path, "must be a finite number")


def _check_string(path: str, value: str, what: str) -> None:
    if len(value) > MAX_STRING_CHARS:
        raise _refused(path, f"a {what} longer than {MAX_STRING_CHARS} characters")
    if _FORBIDDEN_CHAR in value:
        raise _refused(path, f"the {what} contains the NUL character (U+0000)")
