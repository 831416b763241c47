"""Where each value of a JSON text starts: JSON pointer → line number, for the flow editor.

The validator reports problems by JSON pointer; the editor highlights the line a pointer names.
The standard ``json`` module keeps no positions, so this is a small scanner over text that
``json.loads`` has already accepted.
"""

from __future__ import annotations

import contextlib
import json
import re

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_SCALAR = re.compile(r"-?[0-9][0-9eE.+-]*|true|false|null|-?Infinity|NaN")


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def pointer_lines(text: str) -> dict[str, int]:
    """Each pointer in ``text`` (valid JSON) with the 1-based line where it starts.

    An object member starts at its key, so a problem about ``/a/b`` lights up the line that
    reads ``"b": …``. Returns what was found so far if the text is not what we expect.
    """
    scanner = _Scanner(text)
    with contextlib.suppress(IndexError, ValueError, RecursionError):
        scanner.value("", None)
    return scanner.lines


def line_of(lines: dict[str, int], pointer: str) -> int | None:
    """The line of ``pointer``, or of its nearest ancestor when the value itself is missing."""
    while True:
        if pointer in lines:
            return lines[pointer]
        if not pointer:
            return None
        pointer = pointer.rsplit("/", 1)[0]


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.lines: dict[str, int] = {}

    def _line(self, at: int) -> int:
        return self.text.count("\n", 0, at) + 1

    def _skip(self) -> None:
        match = _WHITESPACE.match(self.text, self.at)
        assert match is not None  # the pattern matches the empty string
        self.at = match.end()

    def value(self, pointer: str, line: int | None) -> None:
        self._skip()
        self.lines[pointer] = line if line is not None else self._line(self.at)
        char = self.text[self.at]
        if char == "{":
            self._object(pointer)
        elif char == "[":
            self._array(pointer)
        elif char == '"':
            self._string()
        else:
            match = _SCALAR.match(self.text, self.at)
            if match is None:
                raise ValueError(self.at)
            self.at = match.end()

    def _string(self) -> str:
        match = _STRING.match(self.text, self.at)
        if match is None:
            raise ValueError(self.at)
        self.at = match.end()
        decoded: str = json.loads(match.group())
        return decoded

    def _object(self, pointer: str) -> None:
        self.at += 1
        self._skip()
        if self.text[self.at] == "}":
            self.at += 1
            return
        while True:
            self._skip()
            line = self._line(self.at)
            key = self._string()
            self._skip()
            self.at += 1  # the colon
            self.value(f"{pointer}/{escape(key)}", line)
            self._skip()
            char = self.text[self.at]
            self.at += 1
            if char == "}":
                return

    def _array(self, pointer: str) -> None:
        self.at += 1
        self._skip()
        if self.text[self.at] == "]":
            self.at += 1
            return
        index = 0
        while True:
            self.value(f"{pointer}/{index}", None)
            index += 1
            self._skip()
            char = self.text[self.at]
            self.at += 1
            if char == "]":
                return
