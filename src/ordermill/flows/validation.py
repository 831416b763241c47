"""Flow validation (SPEC §2.2): every problem in a wire document at once, each at a JSON pointer.

The document is the camelCase wire JSON, already decoded. Choices beyond the SPEC:

- ``payload`` and ``next`` may be left out (they default to ``{}`` and ``[]``), and every
  optional field may be ``null``, which means the same as leaving it out.
- ``name`` may be left out: it defaults to the flow's key. A name that is given is checked.
- ``key`` may be left out when the caller knows the key the flow is saved under (the key in
  ``PUT /api/flows/{key}``, ``flows push --key``): pass it as ``saved_under``; a ``key`` that
  is given must then equal it. So the reference page's bare ``{"stages": [...]}`` document is
  a valid flow to save under a key.
- A missing required field is reported at the pointer where it belongs (``/stages/0/key``).
- A flow over the size bounds (100 stages, 500 task definitions) is reported once at
  ``/stages`` and its stages are not examined further. A payload may nest objects and arrays
  32 levels deep, so no recursive walk over it can exhaust the stack.
- Problems come in document order, then per stage the reference and graph problems.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Mapping
from typing import Protocol

from ordermill.errors import InvalidFlow, Problem
from ordermill.flows import graph
from ordermill.flows.fields import FieldReader, child, deeper_than, quote
from ordermill.flows.model import (
    FailureStage,
    FailureTrigger,
    FlowDefinition,
    Join,
    OnAmend,
    RetryPolicy,
    Stage,
    TaskDefinition,
)

KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MIN_NAME_LENGTH = 5
MAX_NAME_LENGTH = 200
MAX_STAGES = 100
MAX_TASK_DEFINITIONS = 500
MAX_TIMEOUT_MS = 2_592_000_000  # 30 days
MAX_ATTEMPTS = 100
MAX_INTERVAL_MS = 86_400_000  # 1 day
MIN_BACKOFF_COEFFICIENT = 1.0
MAX_BACKOFF_COEFFICIENT = 10.0
MAX_DESCRIPTION_LENGTH = 1000
MAX_PAYLOAD_DEPTH = 32

FLOW_FIELDS = ("key", "name", "spaceKey", "stages", "failureStage")
STAGE_FIELDS = ("key", "initialTaskDefinitionKeys", "taskDefinitions")
FAILURE_STAGE_FIELDS = (*STAGE_FIELDS, "on")
TASK_FIELDS = (
    *("key", "handlerKey", "payload", "timeoutDuration", "next"),
    *("retry", "join", "description", "onAmend"),
)
RETRY_FIELDS = ("maxAttempts", "initialIntervalMs", "backoffCoefficient", "maxIntervalMs")

_RETRY_DEFAULTS = RetryPolicy(max_attempts=1)


class HandlerCatalog(Protocol):
    """What the validator needs to know about handlers (implemented by handlers/registry.py).

    Implementations answer from memory, without I/O, and never raise on a strange payload:
    ``validate_payload`` returns problems with pointers relative to the payload, such as
    ``"/uri"``, or ``""`` for the payload itself.
    """

    def has_handler(self, key: str) -> bool: ...

    def handler_keys(self) -> list[str]: ...

    def validate_payload(self, key: str, payload: object) -> list[Problem]: ...


def validate_flow(
    document: object, catalog: HandlerCatalog, *, saved_under: str | None = None
) -> list[Problem]:
    """Every problem with a wire flow document; an empty list means it is valid. Never raises.

    ``saved_under`` is the key the flow is saved under (the key in the URL); the document may
    then leave out its ``key``. Without it the document must have a ``key``.
    """
    reader = _FlowReader(catalog, saved_under)
    reader.read(document)
    return reader.problems


def parse_flow(
    document: object, catalog: HandlerCatalog, *, saved_under: str | None = None
) -> FlowDefinition:
    """The flow a valid wire document describes; raises InvalidFlow listing every problem."""
    reader = _FlowReader(catalog, saved_under)
    flow = reader.read(document)
    if flow is None or reader.problems:
        raise InvalidFlow(reader.problems)
    return flow


# Reading a stage gives None when it is not even an object; else its links, for the graph
# checks, and the Stage when it is valid itself.
_ReadStage = tuple[graph.StageLinks, Stage | None] | None
_ReadTask = tuple[graph.TaskLinks, TaskDefinition | None] | None


class _FlowReader(FieldReader):
    def __init__(self, catalog: HandlerCatalog, saved_under: str | None) -> None:
        super().__init__()
        self._catalog = catalog
        self._saved_under = saved_under
        self._stage_keys: dict[str, str] = {}  # key → pointer of its first use
        self._task_keys: dict[str, tuple[int, str]] = {}  # key → (stage index, first pointer)

    def read(self, document: object) -> FlowDefinition | None:
        keyless = self._saved_under is not None
        required = ("stages",) if keyless else ("key", "stages")
        flow = self.read_object(document, "", FLOW_FIELDS, required)
        if flow is None:
            return None
        key = self._key(flow, "key", "", optional=keyless)
        if key is None and flow.get("key") is None:
            key = self._check_key(self._saved_under, "/key")
        elif keyless and key is not None and key != self._saved_under:
            self.report("/key", f"must be {self._saved_under!r}, the key it is saved under")
        name = self.string(flow, "name", "", optional=True)
        if name is None and flow.get("name") is None:
            name = key
        elif name is not None and len(name.strip()) < MIN_NAME_LENGTH:
            self.report("/name", f"must have at least {MIN_NAME_LENGTH} characters")
        elif name is not None and len(name) > MAX_NAME_LENGTH:
            self.report("/name", f"must have at most {MAX_NAME_LENGTH} characters")
        space_key = self._key(flow, "spaceKey", "", optional=True)
        read = self._stages(flow)
        failure, on = self._failure_stage(flow, len(read))
        links = [r[0] if r else None for r in read]
        if failure is not None:
            links.append(failure[0])
        owners = {task_key: index for task_key, (index, _) in self._task_keys.items()}
        failure_index = len(read) if failure is not None else None
        self.problems += graph.check_links(links, owners, failure_index)
        stages = [r[1] for r in read if r and r[1]]
        if self.problems or key is None or name is None or len(stages) != len(read):
            return None
        failure_stage = None
        if failure is not None and failure[1] is not None:
            failure_stage = FailureStage(failure[1], on)
        return FlowDefinition(key, name, tuple(stages), space_key, failure_stage)

    def _failure_stage(
        self, flow: Mapping[str, object], index: int
    ) -> tuple[_ReadStage, frozenset[FailureTrigger]]:
        """The optional failure stage (a stage plus ``on``), read after the ordinary stages."""
        raw = flow.get("failureStage")
        if raw is None:
            return None, frozenset()
        at = "/failureStage"
        read = self._stage(raw, at, index, FAILURE_STAGE_FIELDS)
        on = {FailureTrigger.FAILURE}
        if isinstance(raw, dict) and raw.get("on") is not None:
            values = self.array(raw, "on", at)
            on = set()
            if values == []:
                self.report(child(at, "on"), 'name at least one status: "FAILURE", "UNHEALTHY"')
            allowed = [trigger.value for trigger in FailureTrigger]
            for i, value in enumerate(values or []):
                if isinstance(value, str) and value in allowed:
                    if FailureTrigger(value) in on:
                        self.report(child(child(at, "on"), i), f"{quote(value)} is listed twice")
                    on.add(FailureTrigger(value))
                else:
                    self.report(
                        child(child(at, "on"), i),
                        f'must be "FAILURE" or "UNHEALTHY", not {quote(str(value))}',
                    )
        return read, frozenset(on)

    def _key(
        self, container: Mapping[str, object], name: str, at: str, *, optional: bool = False
    ) -> str | None:
        return self._check_key(self.string(container, name, at, optional=optional), child(at, name))

    def _check_key(self, value: str | None, at: str) -> str | None:
        if value is not None and not KEY_PATTERN.fullmatch(value):
            self.report(
                at,
                f"{quote(value)} is not a valid key: use 1 to 128 letters, digits, '.', '_' "
                "or '-', starting with a letter or a digit",
            )
        return value

    def _stages(self, flow: Mapping[str, object]) -> list[_ReadStage]:
        stages = self.array(flow, "stages", "")
        if stages is None:
            return []
        if not stages:
            self.report("/stages", "a flow needs at least one stage")
        elif len(stages) > MAX_STAGES:
            self.report("/stages", f"a flow has at most {MAX_STAGES} stages, not {len(stages)}")
            return []
        total = sum(
            len(stage["taskDefinitions"])
            for stage in stages
            if isinstance(stage, dict) and isinstance(stage.get("taskDefinitions"), list)
        )
        if total > MAX_TASK_DEFINITIONS:
            self.report(
                "/stages",
                f"a flow has at most {MAX_TASK_DEFINITIONS} task definitions, not {total}",
            )
            return []
        return [self._stage(raw, child("/stages", i), i) for i, raw in enumerate(stages)]

    def _stage(
        self, raw: object, at: str, index: int, fields: tuple[str, ...] = STAGE_FIELDS
    ) -> _ReadStage:
        stage = self.read_object(raw, at, fields, STAGE_FIELDS)
        if stage is None:
            return None
        key = self._key(stage, "key", at)
        if key is not None:
            first = self._stage_keys.setdefault(key, child(at, "key"))
            if first != child(at, "key"):
                self.report(
                    child(at, "key"),
                    f"duplicate stage key {quote(key)}, already used at {first}; "
                    "give each stage its own key",
                )
        initial = self.key_list(stage, "initialTaskDefinitionKeys", at)
        if stage.get("initialTaskDefinitionKeys") == []:
            self.report(
                child(at, "initialTaskDefinitionKeys"),
                "name at least one task definition of this stage to start it with",
            )
        tasks_at = child(at, "taskDefinitions")
        raw_tasks = self.array(stage, "taskDefinitions", at) or []
        if stage.get("taskDefinitions") == []:
            self.report(tasks_at, "a stage needs at least one task definition")
        tasks = [self._task(raw, child(tasks_at, i), index) for i, raw in enumerate(raw_tasks)]
        links = graph.StageLinks(key, tuple(initial or ()), tuple(t[0] for t in tasks if t))
        definitions = [t[1] for t in tasks if t and t[1]]
        if key is None or initial is None or len(definitions) != len(raw_tasks):
            return links, None
        return links, Stage(key, tuple(k for k, _ in initial), tuple(definitions))

    def _task(self, raw: object, at: str, stage_index: int) -> _ReadTask:
        task = self.read_object(raw, at, TASK_FIELDS, ("key", "handlerKey"))
        if task is None:
            return None
        key = self._key(task, "key", at)
        duplicate = False
        if key is not None:
            _, first = self._task_keys.setdefault(key, (stage_index, child(at, "key")))
            duplicate = first != child(at, "key")
            if duplicate:
                self.report(
                    child(at, "key"),
                    f"duplicate task definition key {quote(key)}, already used at {first}; "
                    "task definition keys must be unique across the whole flow",
                )
        handler_key = self._handler_key(task, at)
        payload = self._payload(task, at, handler_key)
        timeout = self.integer(
            task, "timeoutDuration", at, 1, MAX_TIMEOUT_MS, " milliseconds (30 days)"
        )
        next_keys = self.key_list(task, "next", at, optional=True) or []
        retry = self._retry(task, at)
        join = self.choice(task, "join", at, [j.value for j in Join])
        on_amend = self.choice(task, "onAmend", at, [a.value for a in OnAmend])
        description = self.string(task, "description", at, optional=True)
        if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
            self.report(
                child(at, "description"),
                f"must have at most {MAX_DESCRIPTION_LENGTH} characters, not {len(description)}",
            )
        definition = None
        if key is not None and handler_key is not None and payload is not None:
            definition = TaskDefinition(
                key=key,
                handler_key=handler_key,
                payload=payload,
                timeout_ms=timeout,
                next=tuple(target for target, _ in next_keys),
                retry=retry,
                join=Join(join) if join else Join.ALL,
                description=description,
                on_amend=OnAmend(on_amend) if on_amend else OnAmend.IGNORE,
            )
        return graph.TaskLinks(key, at, tuple(next_keys), duplicate), definition

    def _handler_key(self, task: Mapping[str, object], at: str) -> str | None:
        handler_key = self.string(task, "handlerKey", at)
        if handler_key is None or self._catalog.has_handler(handler_key):
            return handler_key
        known = sorted(self._catalog.handler_keys())
        close = difflib.get_close_matches(handler_key[:64], known, n=1)
        hint = f"did you mean {quote(close[0])}? " if close else ""
        self.report(
            child(at, "handlerKey"),
            f"unknown handler {quote(handler_key)}; {hint}"
            f"registered handlers: {', '.join(known) or 'none'}",
        )
        return None

    def _payload(
        self, task: Mapping[str, object], at: str, handler_key: str | None
    ) -> dict[str, object] | None:
        payload_at = child(at, "payload")
        raw = task.get("payload")
        payload = self.read_object({} if raw is None else raw, payload_at, None, ())
        if payload is None or handler_key is None:
            return None
        if deeper_than(payload, MAX_PAYLOAD_DEPTH):
            self.report(payload_at, f"must not nest more than {MAX_PAYLOAD_DEPTH} levels deep")
            return None
        for problem in self._catalog.validate_payload(handler_key, payload):
            self.report(payload_at + problem.pointer, problem.message)
        return copy.deepcopy(dict(payload))

    def _retry(self, task: Mapping[str, object], at: str) -> RetryPolicy | None:
        if task.get("retry") is None:
            return None
        retry_at = child(at, "retry")
        retry = self.read_object(task["retry"], retry_at, RETRY_FIELDS, ("maxAttempts",))
        if retry is None:
            return None
        attempts = self.integer(retry, "maxAttempts", retry_at, 1, MAX_ATTEMPTS, "", optional=False)
        interval = " milliseconds (1 day)"
        initial = self.integer(retry, "initialIntervalMs", retry_at, 0, MAX_INTERVAL_MS, interval)
        coefficient = self.number(
            retry, "backoffCoefficient", retry_at, MIN_BACKOFF_COEFFICIENT, MAX_BACKOFF_COEFFICIENT
        )
        maximum = self.integer(retry, "maxIntervalMs", retry_at, 0, MAX_INTERVAL_MS, interval)
        policy = RetryPolicy(
            max_attempts=attempts or 1,
            initial_interval_ms=_RETRY_DEFAULTS.initial_interval_ms if initial is None else initial,
            backoff_coefficient=coefficient or _RETRY_DEFAULTS.backoff_coefficient,
            max_interval_ms=_RETRY_DEFAULTS.max_interval_ms if maximum is None else maximum,
        )
        both_usable = (initial is not None or retry.get("initialIntervalMs") is None) and (
            maximum is not None or retry.get("maxIntervalMs") is None
        )
        if both_usable and policy.max_interval_ms < policy.initial_interval_ms:
            if maximum is not None:
                self.report(
                    child(retry_at, "maxIntervalMs"),
                    f"must be at least initialIntervalMs ({policy.initial_interval_ms})",
                )
            else:
                self.report(
                    child(retry_at, "initialIntervalMs"),
                    f"must be at most maxIntervalMs (by default {policy.max_interval_ms})",
                )
        return policy
