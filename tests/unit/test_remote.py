"""Flow files for `ordermill flows push/pull`: which key a file is saved under, what pull writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ordermill.errors import InvalidInput
from ordermill.remote import flow_file, key_for, read_flow_file


def test_a_file_is_saved_under_the_option_then_its_own_key_then_its_file_name() -> None:
    path = Path("flows/seed-flow.json")
    assert key_for({"key": "own"}, path, "given") == "given"
    assert key_for({"key": "own"}, path, None) == "own"
    assert key_for({"stages": []}, path, None) == "seed-flow"
    assert key_for({"stages": []}, Path("flows/my flow.json"), None) is None


def test_pull_writes_the_definition_without_what_the_server_adds() -> None:
    served = {
        "key": "seed-flow",
        "name": "seed-flow",
        "spaceKey": "acme",
        "stages": [{"key": "stage-1"}],
        "version": 3,
        "contentHash": "ab",
        "createdAt": "2026-12-07T00:00:00.000Z",
        "updatedAt": "2026-12-07T00:00:00.000Z",
        "orderCount": 0,
    }
    assert flow_file(served) == {
        "key": "seed-flow",
        "name": "seed-flow",
        "stages": [{"key": "stage-1"}],
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"stages": ', "not valid JSON: Expecting value at line 1, column 12"),
        ("[1, 2]", "not a flow object"),
    ],
)
def test_a_file_that_is_not_a_flow_object_is_refused_with_its_name(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "flow.json"
    path.write_text(text)
    with pytest.raises(InvalidInput) as raised:
        read_flow_file(path)
    assert raised.value.message == f"{path}: {message}"
