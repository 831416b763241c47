"""Payload validation of send-email, manual-confirmation and wait: every problem at its pointer."""

from __future__ import annotations

from typing import Any

import pytest

from ordermill.errors import Problem
from ordermill.flows.validation import validate_flow
from ordermill.handlers.confirmation import ManualConfirmation
from ordermill.handlers.email import SendEmail
from ordermill.handlers.registry import HandlerRegistry
from ordermill.handlers.wait import Wait
from ordermill.testing import RecordingMailer

AT = "/stages/0/taskDefinitions/0/payload"


@pytest.fixture(scope="module")
def registry() -> HandlerRegistry:
    mailer = RecordingMailer()
    return HandlerRegistry([SendEmail(mailer), ManualConfirmation(mailer), Wait()])


def flow(handler_key: str, payload: Any) -> dict[str, Any]:
    return {
        "key": "payloads",
        "name": "Payload checks",
        "stages": [
            {
                "key": "stage-1",
                "initialTaskDefinitionKeys": ["t"],
                "taskDefinitions": [{"key": "t", "handlerKey": handler_key, "payload": payload}],
            }
        ],
    }


EMAIL = {"recipient": ["jo@example.com"], "subject": "Hi", "body": "Hello"}


@pytest.mark.parametrize(
    ("handler_key", "payload", "problems"),
    [
        ("send-email", EMAIL, []),
        (
            "send-email",
            {**EMAIL, "recipient": ["{{ order.data.customerEmail }}", "Jo <jo@example.com>"]},
            [],
        ),
        (
            "send-email",
            {"subject": "", "body": "x", "cc": []},
            [
                Problem(f"{AT}/recipient", "required field 'recipient' is missing"),
                Problem(f"{AT}/subject", "must have at least 1 characters"),
                Problem(f"{AT}/cc", "unknown field 'cc'"),
            ],
        ),
        (
            "send-email",
            {**EMAIL, "recipient": [], "from": "a@x, b@y", "replyTo": "{{ nope }}"},
            [
                Problem(f"{AT}/recipient", "must have at least 1 entries"),
                Problem(
                    f"{AT}/from",
                    "'a@x, b@y' is not an e-mail address (or a template that makes one)",
                ),
                Problem(
                    f"{AT}/replyTo",
                    "unknown template variable nope; templates can use order, orderLines, "
                    "addresses, space, flow, task (for example {{ order.thirdPartyOrderId }} or "
                    "{{ order.data.customerEmail }})",
                ),
            ],
        ),
        (
            "send-email",
            {**EMAIL, "html": "{% if %}"},
            [
                Problem(
                    f"{AT}/html",
                    "template syntax error on line 1: "
                    "Expected an expression, got 'end of statement block'",
                )
            ],
        ),
        (
            "manual-confirmation",
            {"title": "OK?", "assignees": ["a@example.com"], "notify": True},
            [],
        ),
        (
            "manual-confirmation",
            {"title": "OK?", "notify": True},
            [Problem(AT, "notify is true but there are no assignees to notify; add assignees")],
        ),
        (
            "manual-confirmation",
            {"description": "{{ order.id", "assignees": ["boss"]},
            [
                Problem(f"{AT}/title", "required field 'title' is missing"),
                Problem(
                    f"{AT}/description",
                    "template syntax error on line 1: unexpected end of template, expected "
                    "'end of print statement'.",
                ),
                Problem(f"{AT}/assignees/0", "'boss' is not an e-mail address"),
            ],
        ),
        ("wait", {"durationMs": 1000}, []),
        ("wait", {"until": "deadline", "offsetMs": -172_800_000}, []),
        ("wait", {"until": "2026-10-01T00:00:00+02:00"}, []),
        (
            "wait",
            {},
            [Problem(AT, 'give durationMs (milliseconds) or until (an instant or "deadline")')],
        ),
        (
            "wait",
            {"durationMs": 5, "until": "deadline"},
            [Problem(f"{AT}/until", "give either durationMs or until, not both")],
        ),
        (
            "wait",
            {"durationMs": 5, "offsetMs": 1},
            [
                Problem(
                    f"{AT}/offsetMs",
                    "offsetMs shifts `until`; it needs `until` (use durationMs alone)",
                )
            ],
        ),
        (
            "wait",
            {"until": "next tuesday", "durationMs": -1},
            [
                Problem(f"{AT}/durationMs", "must be at least 0"),
                Problem(
                    f"{AT}/until",
                    'must be "deadline" or an ISO 8601 instant such as 2026-10-01T00:00:00Z, '
                    "not 'next tuesday'",
                ),
            ],
        ),
    ],
)
def test_payload_problems_carry_json_pointers(
    registry: HandlerRegistry, handler_key: str, payload: Any, problems: list[Problem]
) -> None:
    assert validate_flow(flow(handler_key, payload), registry) == problems


def test_every_payload_schema_is_published(registry: HandlerRegistry) -> None:
    schemas = registry.schemas()

    assert sorted(schemas) == ["manual-confirmation", "send-email", "wait"]
    assert schemas["send-email"]["required"] == ["recipient", "subject", "body"]
    assert set(schemas["send-email"]["properties"]) == {
        "recipient",
        "subject",
        "body",
        "html",
        "from",
        "replyTo",
        "attachExports",
    }
    assert set(schemas["wait"]["properties"]) == {"durationMs", "until", "offsetMs"}
    assert schemas["manual-confirmation"]["required"] == ["title"]
