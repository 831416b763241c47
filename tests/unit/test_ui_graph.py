"""The UI's pure helpers: mermaid text for flows, and JSON pointers placed on editor lines."""

from __future__ import annotations

import json

from ordermill.ui.graph import (
    STATUS_STYLES,
    GraphStage,
    GraphTask,
    TaskState,
    flow_graph,
    label,
    stages_of_document,
)
from ordermill.ui.jsonlines import line_of, pointer_lines

STAGES = (
    GraphStage("intake", (GraphTask("a", "consume-rest-api", ("b",)), GraphTask("b", "wait"))),
    GraphStage("ship", (GraphTask("c", "consume-rest-api"),)),
)


def test_stages_become_subgraphs_tasks_nodes_and_next_links_arrows() -> None:
    graph = flow_graph(STAGES)

    assert graph.source.splitlines() == [
        "flowchart LR",
        '  subgraph s0["intake"]',
        "    direction LR",
        '    n0["a<br/><small>consume-rest-api</small>"]',
        '    n1["b<br/><small>wait</small>"]',
        "    n0 --> n1",
        "  end",
        '  subgraph s1["ship"]',
        "    direction LR",
        '    n2["c<br/><small>consume-rest-api</small>"]',
        "  end",
        "  s0 --> s1",
    ]
    assert graph.nodes == {"n0": "a", "n1": "b", "n2": "c"}


def test_with_task_states_each_node_shows_and_is_coloured_by_its_status() -> None:
    states = {"a": TaskState("SUCCEEDED", 2), "b": TaskState("WAITING", 1)}

    source = flow_graph(STAGES, states).source

    assert '    n0["a<br/>SUCCEEDED · 2 attempts"]' in source
    assert '    n1["b<br/>WAITING · 1 attempt"]' in source
    assert '    n2["c<br/>not started"]' in source
    fill, stroke, color = STATUS_STYLES["SUCCEEDED"]
    assert f"  classDef SUCCEEDED fill:{fill},stroke:{stroke},color:{color}" in source
    assert "  class n0 SUCCEEDED" in source
    assert "  class n2 NOT_STARTED" in source


def test_labels_cannot_break_out_of_the_mermaid_syntax() -> None:
    assert label('x"]; click n0 call alert(1)') == "x#34;#93;#59; click n0 call alert#40;1#41;"
    assert label("{{ order }}") == "#123;#123; order #125;#125;"


def test_an_invalid_document_draws_what_it_can() -> None:
    stages = [
        {"key": "s", "taskDefinitions": [{"key": "a", "next": ["zz", 3]}, {"nokey": 1}, "junk"]},
        "junk",
    ]

    assert stages_of_document(stages) == (GraphStage("s", (GraphTask("a", "", ("zz",)),)),)
    assert "-->" not in flow_graph(stages_of_document(stages)).source  # unknown targets skipped
    assert stages_of_document({"not": "a list"}) == ()


def test_each_pointer_maps_to_the_line_where_its_member_or_item_starts() -> None:
    text = json.dumps([{"key": "s", "taskDefinitions": [{"key": "a", "next": ["b"]}]}], indent=2)
    lines = pointer_lines(text)

    assert lines["/0/taskDefinitions/0/next/0"] == text.splitlines().index('          "b"') + 1
    assert lines["/0/key"] == 3
    assert line_of(lines, "/0/taskDefinitions/0/timeoutDuration") == lines["/0/taskDefinitions/0"]
    assert line_of(lines, "/9") == 1


def test_pointer_tokens_are_escaped_as_rfc_6901_says() -> None:
    lines = pointer_lines('{\n "a/b": {\n  "c~d": 1\n }\n}')

    assert lines["/a~1b/c~0d"] == 3
