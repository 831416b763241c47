"""The examples of the reference connector page, exactly as printed, and the shape they promise.

`../shared/reference/make-your-own-connector.txt` (beside the project's clone) is the commercial
service's connector page that newcomers arrive with. Its three JSON examples are kept under
`tests/fixtures/reference/`, copied character for character; `copied_blocks()` cuts them out of
the page again so a test can prove the copies still match it.

The page prints the asset `versions` as an array of members (`["url": …, "date": …]`), which is
not JSON; `connector_body()` reads it as the array of objects it means.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT.parent / "shared" / "reference" / "make-your-own-connector.txt"
COPIES = ROOT / "tests" / "fixtures" / "reference"
TASK_FILE = "task-execute-your-endpoint.json"
BODY_FILE = "connector-body.txt"
FLOW_FILE = "example-flow.json"
TASK_URI = "https://<your_endpoint>"
FLOW_URI = "https://<your_endpoint_url>"
# An array whose content starts with `"name":` holds members: the page means an object there.
_MEMBERS_IN_ARRAY = re.compile(r'\[(\s*"[^"]*"\s*:[^\[\]{}]*)\]')
TIME_MS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def page_blocks(text: str) -> list[str]:
    """Every JSON-looking block of the page: from a line that is `{` to its matching `}`."""
    blocks: list[str] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        if lines[index] != "{":
            index += 1
            continue
        depth, start = 0, index
        while index < len(lines):
            depth += lines[index].count("{") - lines[index].count("}")
            index += 1
            if depth == 0:
                break
        blocks.append("\n".join(lines[start:index]))
    return blocks


def copied_blocks(text: str) -> dict[str, str]:
    """The page's blocks under the names of their copies."""
    named: dict[str, str] = {}
    for block in page_blocks(text):
        if '"task-execute-your-endpoint"' in block:
            named[TASK_FILE] = block
        elif block.startswith('{\n"order"'):
            named[BODY_FILE] = block
        elif block.startswith('{\n"stages"'):
            named[FLOW_FILE] = block
    return named


def copy_text(name: str) -> str:
    return (COPIES / name).read_text().rstrip("\n")


def example_flow(uri: str) -> dict[str, Any]:
    """The page's "Example order flow" with its endpoint placeholder replaced by ``uri``."""
    text = copy_text(FLOW_FILE)
    assert FLOW_URI in text
    document: dict[str, Any] = json.loads(text.replace(FLOW_URI, uri))
    return document


def example_task(uri: str) -> dict[str, Any]:
    """The page's single task definition (`task-execute-your-endpoint`) calling ``uri``."""
    text = copy_text(TASK_FILE)
    assert TASK_URI in text
    task: dict[str, Any] = json.loads(text.replace(TASK_URI, uri))
    return task


def connector_body() -> dict[str, Any]:
    """The page's connector request body, its `versions` read as an array of objects."""
    body: dict[str, Any] = json.loads(_MEMBERS_IN_ARRAY.sub(r"[{\1}]", copy_text(BODY_FILE)))
    return body


def shape_problems(expected: Any, actual: Any, at: str = "", parent: Any = None) -> list[str]:
    """Where ``actual`` departs from the shape of the page's example ``expected``.

    Objects have exactly the example's members; a `{}` example is free data; a `"string"`, a
    number or a boolean stands for its type, and an example time for that time format; an
    array's items follow its first example item, and `[null]` means items shaped like the
    enclosing object (nested items).
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{at or '/'}: an object expected, got {actual!r}"]
        if not expected:
            return []
        if sorted(actual) != sorted(expected):
            return [f"{at or '/'}: members {sorted(actual)}, the page has {sorted(expected)}"]
        return [
            problem
            for name, value in expected.items()
            for problem in shape_problems(value, actual[name], f"{at}/{name}", expected)
        ]
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{at}: an array expected, got {actual!r}"]
        item = expected[0] if expected else None
        item = parent if item is None else item
        return [
            problem
            for index, value in enumerate(actual)
            for problem in shape_problems(item, value, f"{at}/{index}", parent)
        ]
    if isinstance(expected, bool):
        return [] if isinstance(actual, bool) else [f"{at}: a boolean expected, got {actual!r}"]
    if isinstance(expected, int | float):
        number = isinstance(actual, int | float) and not isinstance(actual, bool)
        return [] if number else [f"{at}: a number expected, got {actual!r}"]
    if isinstance(expected, str):
        if not isinstance(actual, str):
            return [f"{at}: a string expected, got {actual!r}"]
        if TIME_MS_Z.fullmatch(expected) and not TIME_MS_Z.fullmatch(actual):
            return [f"{at}: a time like {expected} expected, got {actual!r}"]
        return []
    return [f"{at}: the page has {expected!r}, which this check does not know"]
