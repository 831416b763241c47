"""The reference flow of the connector documentation, as a wire document (SPEC §2.1)."""

from __future__ import annotations

from typing import Any


def reference_flow(key: str = "made-to-order", name: str = "Made to order (EU)") -> dict[str, Any]:
    """One stage, one ``consume-rest-api`` task: call the ERP's connector once."""
    return {
        "key": key,
        "name": name,
        "stages": [
            {
                "key": "stage-1",
                "initialTaskDefinitionKeys": ["task-1"],
                "taskDefinitions": [
                    {
                        "key": "task-1",
                        "handlerKey": "consume-rest-api",
                        "payload": {
                            "uri": "https://erp.example.com/orders",
                            "sendsFeedback": False,
                        },
                        "timeoutDuration": 1000,
                        "next": [],
                    }
                ],
            }
        ],
    }
