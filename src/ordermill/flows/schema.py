"""A JSON Schema (draft 2020-12) of the flow wire format, for documentation and editors.

It is built from the validator's own bounds so the two cannot drift apart. It cannot say
everything the validator checks (unique keys across stages, references, cycles, handler
payloads): ``validate_flow`` stays the authority.
"""

from __future__ import annotations

import copy
from typing import Any

from ordermill.flows.model import FailureTrigger, Join, OnAmend
from ordermill.flows.validation import (
    KEY_PATTERN,
    MAX_ATTEMPTS,
    MAX_BACKOFF_COEFFICIENT,
    MAX_DESCRIPTION_LENGTH,
    MAX_INTERVAL_MS,
    MAX_NAME_LENGTH,
    MAX_PAYLOAD_DEPTH,
    MAX_STAGES,
    MAX_TASK_DEFINITIONS,
    MAX_TIMEOUT_MS,
    MIN_BACKOFF_COEFFICIENT,
    MIN_NAME_LENGTH,
)


def _optional(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or null: the validator reads a null optional field as an absent one."""
    return {"anyOf": [schema, {"type": "null"}]}


def _interval(description: str) -> dict[str, Any]:
    return _optional(
        {"type": "integer", "minimum": 0, "maximum": MAX_INTERVAL_MS, "description": description}
    )


_KEY_LIST = {"type": "array", "items": {"$ref": "#/$defs/key"}, "uniqueItems": True}

_STAGE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["key", "initialTaskDefinitionKeys", "taskDefinitions"],
    "properties": {
        "key": {"$ref": "#/$defs/key"},
        "initialTaskDefinitionKeys": {**_KEY_LIST, "minItems": 1},
        "taskDefinitions": {
            "type": "array",
            "items": {"$ref": "#/$defs/taskDefinition"},
            "minItems": 1,
            "maxItems": MAX_TASK_DEFINITIONS,
        },
    },
}

FLOW_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ordermill flow definition",
    "description": "An order flow: named, ordered stages of task definitions (SPEC §2).",
    "type": "object",
    "additionalProperties": False,
    "required": ["stages"],
    "properties": {
        "key": {
            "$ref": "#/$defs/key",
            "description": "required unless the flow is saved under a key named elsewhere "
            "(PUT /api/flows/{key}, ordermill flows push --key)",
        },
        "name": _optional(
            {
                "type": "string",
                "minLength": MIN_NAME_LENGTH,
                "maxLength": MAX_NAME_LENGTH,
                "description": f"at least {MIN_NAME_LENGTH} characters besides surrounding "
                "spaces; the key when left out",
            }
        ),
        "spaceKey": _optional({"$ref": "#/$defs/key"}),
        "stages": {
            "type": "array",
            "items": {"$ref": "#/$defs/stage"},
            "minItems": 1,
            "maxItems": MAX_STAGES,
        },
        "failureStage": _optional({"$ref": "#/$defs/failureStage"}),
    },
    "$defs": {
        "key": {"type": "string", "pattern": f"^{KEY_PATTERN.pattern}$"},
        "stage": _STAGE,
        "failureStage": {
            **_STAGE,
            "description": "a stage that runs when the order turns to a status named in on "
            "(FAILURE by default); it never changes the order's status",
            "properties": {
                **_STAGE["properties"],
                "on": _optional(
                    {
                        "type": "array",
                        "items": {"enum": [trigger.value for trigger in FailureTrigger]},
                        "minItems": 1,
                        "uniqueItems": True,
                    }
                ),
            },
        },
        "taskDefinition": {
            "type": "object",
            "additionalProperties": False,
            "required": ["key", "handlerKey"],
            "properties": {
                "key": {"$ref": "#/$defs/key"},
                "handlerKey": {"type": "string", "description": "a registered handler"},
                "payload": _optional(
                    {
                        "type": "object",
                        "description": "checked by the handler's own schema; "
                        f"at most {MAX_PAYLOAD_DEPTH} levels deep",
                    }
                ),
                "timeoutDuration": _optional(
                    {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_TIMEOUT_MS,
                        "description": "milliseconds; each wait on the outside world",
                    }
                ),
                "next": _optional({**_KEY_LIST, "description": "task definitions of this stage"}),
                "retry": _optional({"$ref": "#/$defs/retry"}),
                "join": _optional({"enum": [join.value for join in Join]}),
                "description": _optional({"type": "string", "maxLength": MAX_DESCRIPTION_LENGTH}),
                "onAmend": _optional(
                    {
                        "enum": [a.value for a in OnAmend],
                        "description": "resend: deliver a succeeded task again after an amendment",
                    }
                ),
            },
        },
        "retry": {
            "type": "object",
            "additionalProperties": False,
            "required": ["maxAttempts"],
            "description": "maxIntervalMs must be at least initialIntervalMs",
            "properties": {
                "maxAttempts": {"type": "integer", "minimum": 1, "maximum": MAX_ATTEMPTS},
                "initialIntervalMs": _interval("the wait after the first attempt"),
                "backoffCoefficient": _optional(
                    {
                        "type": "number",
                        "minimum": MIN_BACKOFF_COEFFICIENT,
                        "maximum": MAX_BACKOFF_COEFFICIENT,
                    }
                ),
                "maxIntervalMs": _interval("the longest wait between attempts"),
            },
        },
    },
}


def flow_json_schema() -> dict[str, Any]:
    """A copy of FLOW_JSON_SCHEMA the caller may change."""
    return copy.deepcopy(FLOW_JSON_SCHEMA)
