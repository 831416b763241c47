"""Mermaid flowchart text for a flow: stages as subgraphs, tasks as nodes, ``next`` as arrows.

Pure: it takes plain values and returns text, so the order page, the flow page and the editor's
live preview draw a flow the same way. Each node is coloured by its task's status (one
``classDef`` per status) and its label repeats the status in words, so colour is never the only
signal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from ordermill.flows.model import FlowDefinition

NOT_STARTED = "NOT_STARTED"

# fill, stroke, text colour; calm tints with a darker outline, readable on white.
STATUS_STYLES: dict[str, tuple[str, str, str]] = {
    NOT_STARTED: ("#f8fafc", "#94a3b8", "#334155"),
    "PENDING": ("#fef9c3", "#ca8a04", "#713f12"),
    "RUNNING": ("#dbeafe", "#2563eb", "#1e3a8a"),
    "WAITING": ("#e0e7ff", "#4f46e5", "#312e81"),
    "SUCCEEDED": ("#dcfce7", "#16a34a", "#14532d"),
    "FAILED": ("#fee2e2", "#dc2626", "#7f1d1d"),
    "TIMED_OUT": ("#ffedd5", "#ea580c", "#7c2d12"),
    "CANCELLED": ("#f1f5f9", "#64748b", "#334155"),
}

_PLAIN = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,_:-·×")


@dataclass(frozen=True)
class TaskState:
    status: str  # a TaskStatus value
    attempts: int


@dataclass(frozen=True)
class GraphTask:
    key: str
    handler: str = ""
    next: tuple[str, ...] = ()


@dataclass(frozen=True)
class GraphStage:
    key: str
    tasks: tuple[GraphTask, ...]
    failure: bool = False  # the flow's failureStage: drawn apart, it runs when the order fails


@dataclass(frozen=True)
class Graph:
    """Mermaid source and which node id stands for which task key (for click handling)."""

    source: str
    nodes: dict[str, str]

    @property
    def nodes_json(self) -> str:
        return json.dumps(self.nodes, separators=(",", ":"))


def stages_of_definition(definition: FlowDefinition) -> tuple[GraphStage, ...]:
    return tuple(
        GraphStage(
            stage.key,
            tuple(GraphTask(d.key, d.handler_key, d.next) for d in stage.task_definitions),
            failure=index == definition.failure_index,
        )
        for index, stage in enumerate(definition.all_stages)
    )


def stages_of_document(stages: object) -> tuple[GraphStage, ...]:
    """Whatever can be drawn of a stages array that may not be valid yet (the editor preview)."""
    if not isinstance(stages, list):
        return ()
    drawn = []
    for index, stage in enumerate(stages):
        if not isinstance(stage, dict):
            continue
        tasks = []
        for definition in stage.get("taskDefinitions") or []:
            if not isinstance(definition, dict) or not isinstance(definition.get("key"), str):
                continue
            next_ = definition.get("next")
            targets = (
                tuple(k for k in next_ if isinstance(k, str)) if isinstance(next_, list) else ()
            )
            handler = definition.get("handlerKey")
            handler = handler if isinstance(handler, str) else ""
            tasks.append(GraphTask(definition["key"], handler, targets))
        key = stage.get("key")
        drawn.append(
            GraphStage(key if isinstance(key, str) else f"stage {index + 1}", tuple(tasks))
        )
    return tuple(drawn)


def flow_graph(
    stages: Sequence[GraphStage], states: Mapping[str, TaskState] | None = None
) -> Graph:
    """The flowchart; with ``states`` (an order's tasks) each node shows its status and attempts."""
    lines = ["flowchart LR"]
    nodes: dict[str, str] = {}
    classes: dict[str, list[str]] = {}
    for s_index, stage in enumerate(stages):
        title = f"{stage.key} (on failure)" if stage.failure else stage.key
        lines.append(f'  subgraph s{s_index}["{label(title)}"]')
        lines.append("    direction LR")
        ids: dict[str, str] = {}
        for task in stage.tasks:
            if task.key in ids or task.key in nodes.values():
                continue  # a duplicate key (invalid flow): draw the first only
            node = f"n{len(nodes)}"
            ids[task.key] = node
            nodes[node] = task.key
            lines.append(f'    {node}["{node_label(task, states)}"]')
            status = _status_of(task.key, states)
            if status is not None:
                classes.setdefault(status, []).append(node)
        for task in stage.tasks:
            source = ids.get(task.key)
            for target in task.next:
                if source is not None and target in ids:
                    lines.append(f"    {source} --> {ids[target]}")
        lines.append("  end")
    chained = [i for i, stage in enumerate(stages) if not stage.failure]
    lines += [f"  s{a} --> s{b}" for a, b in pairwise(chained)]
    for status, members in classes.items():
        fill, stroke, color = STATUS_STYLES[status]
        dash = ",stroke-dasharray:4 3" if status == NOT_STARTED else ""
        lines.append(f"  classDef {status} fill:{fill},stroke:{stroke},color:{color}{dash}")
        lines.append(f"  class {','.join(members)} {status}")
    return Graph("\n".join(lines), nodes)


def node_label(task: GraphTask, states: Mapping[str, TaskState] | None) -> str:
    if states is None:
        return f"{label(task.key)}<br/><small>{label(task.handler)}</small>"
    state = states.get(task.key)
    if state is None:
        return f"{label(task.key)}<br/>not started"
    attempts = "1 attempt" if state.attempts == 1 else f"{state.attempts} attempts"
    return f"{label(task.key)}<br/>{label(state.status)} · {attempts}"


def _status_of(key: str, states: Mapping[str, TaskState] | None) -> str | None:
    if states is None:
        return None
    state = states.get(key)
    if state is None:
        return NOT_STARTED
    return state.status if state.status in STATUS_STYLES else None


def label(text: str) -> str:
    """Text safe inside a quoted mermaid label: anything unusual becomes an entity code."""
    return "".join(ch if ch in _PLAIN else f"#{ord(ch)};" for ch in text[:120])
