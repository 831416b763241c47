"""Factories for the wire documents every tier posts: the reference flow and order shapes."""

from __future__ import annotations

from typing import Any


def flow_doc(
    uri: str, *, key: str = "made-to-order", sends_feedback: bool = False, **task: Any
) -> dict[str, Any]:
    """The reference flow: one stage, one consume-rest-api task."""
    definition = {
        "key": "task-1",
        "handlerKey": "consume-rest-api",
        "payload": {"uri": uri, "sendsFeedback": sends_feedback},
        "timeoutDuration": 5000,
        "next": [],
    }
    definition.update(task)
    return {
        "key": key,
        "name": "Made to order (EU)",
        "stages": [
            {
                "key": "stage-1",
                "initialTaskDefinitionKeys": ["task-1"],
                "taskDefinitions": [definition],
            }
        ],
    }


def rest_task(uri: str, key: str, next_: list[str], **extra: Any) -> dict[str, Any]:
    """A consume-rest-api task definition posting to `uri`; `extra` adds or overrides fields."""
    payload = {"uri": uri, **extra.pop("payload", {})}
    task = {"key": key, "handlerKey": "consume-rest-api", "payload": payload, "next": next_}
    return {"timeoutDuration": 5000, **task, **extra}


def wait_task(key: str, duration_ms: int, next_: list[str]) -> dict[str, Any]:
    return {"key": key, "handlerKey": "wait", "payload": {"durationMs": duration_ms}, "next": next_}


def stage_doc(key: str, initial: list[str], tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"key": key, "initialTaskDefinitionKeys": initial, "taskDefinitions": tasks}


def staged_flow(key: str, name: str, *stages: dict[str, Any]) -> dict[str, Any]:
    """A flow of space `acme` made of `stages` (see `stage_doc`)."""
    return {"key": key, "name": name, "spaceKey": "acme", "stages": list(stages)}


def order_doc(
    third_party_id: str = "WEB-1001", *, flow_key: str = "made-to-order", **extra: Any
) -> dict[str, Any]:
    """An order in the reference shape (SPEC §4.1)."""
    order: dict[str, Any] = {
        "spaceKey": "acme",
        "flowKey": flow_key,
        "thirdPartyOrderId": third_party_id,
        "addresses": [{"addressType": "postal", "purpose": "shipping", "data": {"city": "Gent"}}],
        "data": {"customerEmail": "jo@example.com", "nested": {"kept": ["verbatim", 1]}},
        "orderLines": [
            {
                "orderId": f"{third_party_id}-1",
                "title": "Custom bracelet",
                "data": {},
                "items": [
                    {
                        "id": "item-1",
                        "data": {"size": "M"},
                        "tags": ["3dprint"],
                        "items": [
                            {
                                "id": "item-1a",
                                "data": {},
                                "tags": [],
                                "items": [],
                                "assets": [],
                                "isAsset": True,
                            }
                        ],
                        "assets": [
                            {
                                "id": "model",
                                "url": "https://cdn.example.com/b.stl",
                                "isPublic": True,
                                "versions": [
                                    {
                                        "url": "https://cdn.example.com/b.stl",
                                        "date": "2026-09-23T14:23:17.580Z",
                                    }
                                ],
                            }
                        ],
                        "isAsset": False,
                    }
                ],
                "deadline": "2026-10-01T00:00:00.000Z",
                "amountOfUnits": 2,
                "valuePerUnit": 49.5,
            }
        ],
    }
    order.update(extra)
    return order
