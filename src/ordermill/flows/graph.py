"""The ``next`` links of each stage: references, cycles and reachability, as validation checks them.

Nodes are task definition keys; an edge carries the JSON pointer of the ``next`` entry that
makes it, so a problem can point at the exact link to remove.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ordermill.errors import Problem
from ordermill.flows.fields import quote

Link = tuple[str, str]  # a key named in initialTaskDefinitionKeys or next, and its pointer


@dataclass(frozen=True)
class TaskLinks:
    """A task definition's key and ``next`` links as written, valid or not."""

    key: str | None  # None when the key is missing or not a string
    pointer: str
    next: tuple[Link, ...]
    duplicate: bool  # the key was already used earlier in the flow


@dataclass(frozen=True)
class StageLinks:
    key: str | None
    initial: tuple[Link, ...]
    tasks: tuple[TaskLinks, ...]


def check_links(
    stages: Sequence[StageLinks | None],
    owners: Mapping[str, int],
    failure_index: int | None = None,
) -> list[Problem]:
    """Problems with the links of every stage; ``owners`` maps each task key to its stage index.

    Each link must name a task definition of its own stage, the ``next`` links of a stage must
    not loop, and every task definition must be reachable from an initial one. The stage at
    ``failure_index``, if any, is the flow's ``failureStage``.
    """
    problems: list[Problem] = []
    for stage in stages:
        if stage is not None:
            problems += _check_references(stage, stages, owners, failure_index)
            problems += _check_graph(stage)
    return problems


def _check_references(
    stage: StageLinks,
    stages: Sequence[StageLinks | None],
    owners: Mapping[str, int],
    failure_index: int | None,
) -> list[Problem]:
    problems = []
    local = {task.key for task in stage.tasks if task.key is not None}
    links = [(key, at, False) for key, at in stage.initial]
    links += [(key, at, True) for task in stage.tasks for key, at in task.next]
    for key, at, is_next in links:
        if key in local:
            continue
        owner = owners.get(key)
        if owner is not None:
            other = stages[owner]
            label = f"{quote(other.key)} " if other and other.key else ""
            rule = "next never crosses stages" if is_next else "a stage starts only its own"
            if not is_next:
                rule += " task definitions"
            where = "/failureStage" if owner == failure_index else f"/stages/{owner}"
            message = f"{quote(key)} belongs to stage {label}({where}): {rule}"
        else:
            close = difflib.get_close_matches(key[:64], sorted(local), n=1)
            hint = f"; did you mean {quote(close[0])}?" if close else ""
            message = f"this stage has no task definition {quote(key)}{hint}"
        problems.append(Problem(at, message))
    return problems


def _check_graph(stage: StageLinks) -> list[Problem]:
    tasks = [task for task in stage.tasks if task.key is not None and not task.duplicate]
    nodes = [task.key for task in tasks if task.key is not None]
    edges = [
        Edge(task.key, target, at)
        for task in tasks
        if task.key is not None
        for target, at in task.next
    ]
    problems = [
        Problem(
            cycle.closing_pointer,
            f"this link closes the cycle {cycle.describe()}; the next links of a stage "
            "must not loop, remove one of them",
        )
        for cycle in find_cycles(nodes, edges)
    ]
    initial = [key for key, _ in stage.initial if key in nodes]
    if not initial:
        return problems  # a missing or wrong initial list is already reported; spare the noise
    pointers = {task.key: task.pointer for task in tasks}
    problems += [
        Problem(
            pointers[key],
            f"task definition {quote(key)} can never start: add it to "
            "initialTaskDefinitionKeys or to the next list of a task definition that runs",
        )
        for key in unreachable(nodes, initial, edges)
    ]
    return problems


_ON_PATH = 1
_DONE = 2


@dataclass(frozen=True)
class Edge:
    """``source`` lists ``target`` in its ``next``, at ``pointer``."""

    source: str
    target: str
    pointer: str


@dataclass(frozen=True)
class Cycle:
    """A loop in a stage's ``next`` graph and the link that closes it."""

    path: tuple[str, ...]  # starts and ends with the same key
    closing_pointer: str

    def describe(self) -> str:
        return " → ".join(self.path)


def find_cycles(nodes: Sequence[str], edges: Iterable[Edge]) -> list[Cycle]:
    """Every cycle found by a depth-first walk, one per back edge, in definition order.

    The walk is iterative so a long chain of task definitions cannot exhaust the stack.
    """
    outgoing = _outgoing(nodes, edges)
    state: dict[str, int] = {}
    cycles: list[Cycle] = []
    for root in nodes:
        if root in state:
            continue
        state[root] = _ON_PATH
        path = [root]
        pending = [iter(outgoing[root])]
        while pending:
            for edge in pending[-1]:
                seen = state.get(edge.target)
                if seen is None:
                    state[edge.target] = _ON_PATH
                    path.append(edge.target)
                    pending.append(iter(outgoing[edge.target]))
                    break
                if seen == _ON_PATH:
                    loop = [*path[path.index(edge.target) :], edge.target]
                    cycles.append(Cycle(tuple(loop), edge.pointer))
            else:
                state[path.pop()] = _DONE
                pending.pop()
    return cycles


def unreachable(nodes: Sequence[str], initial: Iterable[str], edges: Iterable[Edge]) -> list[str]:
    """The nodes no walk from an initial node reaches, in definition order."""
    outgoing = _outgoing(nodes, edges)
    reached = {key for key in initial if key in outgoing}
    frontier = list(reached)
    while frontier:
        for edge in outgoing[frontier.pop()]:
            if edge.target not in reached:
                reached.add(edge.target)
                frontier.append(edge.target)
    return [key for key in nodes if key not in reached]


def _outgoing(nodes: Sequence[str], edges: Iterable[Edge]) -> Mapping[str, list[Edge]]:
    outgoing: dict[str, list[Edge]] = {key: [] for key in nodes}
    for edge in edges:
        if edge.source in outgoing and edge.target in outgoing:
            outgoing[edge.source].append(edge)
    return outgoing
