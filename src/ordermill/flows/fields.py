"""Typed reads of decoded JSON that record a Problem, at an RFC 6901 pointer, for each misfit.

Each read returns the value when it fits and ``None`` otherwise (or when an optional field is
absent or ``null``); it never raises, whatever the input.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence

from ordermill.errors import Problem

_SHOWN_CHARACTERS = 60


def child(pointer: str, token: str | int) -> str:
    """The pointer to ``token`` inside ``pointer``, escaping ``~`` and ``/`` per RFC 6901."""
    return f"{pointer}/{str(token).replace('~', '~0').replace('/', '~1')}"


def quote(text: str) -> str:
    """``text`` in quotes for a message, shortened so a huge input cannot flood the answer."""
    if len(text) > _SHOWN_CHARACTERS:
        text = text[:_SHOWN_CHARACTERS] + "…"
    return f"'{text}'"


def describe(value: object) -> str:
    """The JSON type of ``value`` with its article, for "must be …, not …" messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def unknown_field_message(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name[:64], known, n=1)
    if close:
        return f"unknown field {quote(name)}; did you mean {quote(close[0])}?"
    return f"unknown field {quote(name)}; remove it (known fields: {', '.join(known)})"


def deeper_than(value: object, limit: int) -> bool:
    """Whether arrays and objects nest in ``value`` more than ``limit`` levels deep.

    Iterative, so it answers even where a recursive walk (deepcopy, a schema validator)
    would exhaust the stack.
    """
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child_value, depth + 1) for child_value in children)
    return False


class FieldReader:
    """Collects the problems found while reading one document."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def report(self, pointer: str, message: str) -> None:
        self.problems.append(Problem(pointer, message))

    def read_object(
        self,
        value: object,
        at: str,
        fields: Sequence[str] | None,
        required: Sequence[str],
    ) -> Mapping[str, object] | None:
        """``value`` as an object; with ``fields``, any other field is a problem."""
        if not isinstance(value, dict):
            self.report(at, f"must be an object, not {describe(value)}")
            return None
        if fields is not None:
            for name in value:
                if name not in fields:
                    self.report(child(at, str(name)), unknown_field_message(str(name), fields))
        for name in required:
            if name not in value:
                self.report(child(at, name), f"required field {quote(name)} is missing")
        return value

    def _present(self, container: Mapping[str, object], name: str, *, optional: bool) -> bool:
        return name in container and not (optional and container[name] is None)

    def _wrong_type(self, container: Mapping[str, object], name: str, at: str, kind: str) -> None:
        self.report(child(at, name), f"must be {kind}, not {describe(container[name])}")

    def string(
        self, container: Mapping[str, object], name: str, at: str, *, optional: bool = False
    ) -> str | None:
        if not self._present(container, name, optional=optional):
            return None
        value = container[name]
        if isinstance(value, str):
            return value
        self._wrong_type(container, name, at, "a string")
        return None

    def array(
        self, container: Mapping[str, object], name: str, at: str, *, optional: bool = False
    ) -> list[object] | None:
        if not self._present(container, name, optional=optional):
            return None
        value = container[name]
        if isinstance(value, list):
            return value
        self._wrong_type(container, name, at, "an array")
        return None

    def integer(
        self,
        container: Mapping[str, object],
        name: str,
        at: str,
        lowest: int,
        highest: int,
        unit: str,
        *,
        optional: bool = True,
    ) -> int | None:
        """An integer in [lowest, highest]; ``1.0`` and ``true`` are not integers."""
        if not self._present(container, name, optional=optional):
            return None
        value = container[name]
        if not isinstance(value, int) or isinstance(value, bool):
            self._wrong_type(container, name, at, "an integer")
            return None
        if not lowest <= value <= highest:
            self.report(
                child(at, name), f"must be between {lowest} and {highest}{unit}, not {value}"
            )
            return None
        return value

    def number(
        self,
        container: Mapping[str, object],
        name: str,
        at: str,
        lowest: float,
        highest: float,
    ) -> float | None:
        """A finite number in [lowest, highest], optional."""
        if not self._present(container, name, optional=True):
            return None
        value = container[name]
        if not isinstance(value, int | float) or isinstance(value, bool):
            self._wrong_type(container, name, at, "a number")
            return None
        if not (math.isfinite(value) and lowest <= value <= highest):
            self.report(child(at, name), f"must be between {lowest} and {highest}, not {value}")
            return None
        return float(value)

    def choice(
        self, container: Mapping[str, object], name: str, at: str, options: Sequence[str]
    ) -> str | None:
        """One of ``options``, optional."""
        if not self._present(container, name, optional=True):
            return None
        value = container[name]
        if isinstance(value, str) and value in options:
            return value
        shown = quote(value) if isinstance(value, str) else describe(value)
        allowed = " or ".join(quote(option) for option in options)
        self.report(child(at, name), f"must be {allowed}, not {shown}")
        return None

    def key_list(
        self, container: Mapping[str, object], name: str, at: str, *, optional: bool = False
    ) -> list[tuple[str, str]] | None:
        """The string entries of an array with their pointers; a repeated entry is a problem."""
        values = self.array(container, name, at, optional=optional)
        if values is None:
            return None
        list_at = child(at, name)
        seen: set[str] = set()
        keys: list[tuple[str, str]] = []
        for index, value in enumerate(values):
            entry_at = child(list_at, index)
            if not isinstance(value, str):
                self.report(
                    entry_at, f"must be a task definition key (a string), not {describe(value)}"
                )
            elif value in seen:
                self.report(entry_at, f"{quote(value)} is listed twice; remove the repeat")
            else:
                seen.add(value)
                keys.append((value, entry_at))
        return keys
