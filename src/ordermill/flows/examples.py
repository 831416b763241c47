"""The reference flow and order of the connector documentation, as wire documents (SPEC §2.1,
§4.1): the examples in the API docs, the flow editor's template and the handler test kit."""

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


def reference_order(third_party_id: str = "WEB-1001") -> dict[str, Any]:
    """An order in the connector's order shape, as stored (no ``updateUrl``)."""
    return {
        "spaceKey": "acme",
        "flowKey": "made-to-order",
        "thirdPartyOrderId": third_party_id,
        "addresses": [{"addressType": "postal", "purpose": "shipping", "data": {"city": "Gent"}}],
        "data": {"customerEmail": "jo@example.com"},
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
                        "items": [],
                        "assets": [],
                        "isAsset": False,
                    }
                ],
                "deadline": "2026-10-01T00:00:00.000Z",
                "amountOfUnits": 2,
                "valuePerUnit": 49.5,
            }
        ],
    }
