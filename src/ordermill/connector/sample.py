"""A realistic sample connector request, as ``ordermill connector check`` sends it."""

from __future__ import annotations

import json
import secrets
from typing import Any

# Small but real files, so a connector that downloads assets has something to download.
SAMPLE_ASSETS: dict[str, bytes] = {
    "bracelet-v1.stl": b"solid bracelet\nendsolid bracelet\n",
    "bracelet-v2.stl": (
        b"solid bracelet\n facet normal 0 0 1\n  outer loop\n   vertex 0 0 0\n"
        b"   vertex 1 0 0\n   vertex 0 1 0\n  endloop\n endfacet\nendsolid bracelet\n"
    ),
    "engraving.svg": (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="80" height="20">'
        b'<text x="2" y="15">For Jo</text></svg>\n'
    ),
}


def new_delivery_id() -> str:
    """A fresh delivery id in ordermill's style (``dlv_`` and 26 characters)."""
    return "dlv_" + secrets.token_hex(13)


def sample_request(
    update_url: str, asset_base: str, *, delivery_id: str, third_party_order_id: str
) -> dict[str, Any]:
    """The documented order shape with realistic values, plus ordermill's context.

    ``asset_base`` (no trailing slash) is where the files of ``SAMPLE_ASSETS`` can be fetched.
    One asset has two versions, so a connector that picks the latest one can show it does.
    """
    line_id = f"{third_party_order_id}-1"
    order = {
        "spaceKey": "acme",
        "flowKey": "made-to-order",
        "thirdPartyOrderId": third_party_order_id,
        "updateUrl": update_url,
        "addresses": [
            {
                "addressType": "postal",
                "purpose": "shipping",
                "data": {
                    "name": "Jo Peeters",
                    "street": "Veldstraat 1",
                    "postalCode": "9000",
                    "city": "Gent",
                    "country": "BE",
                },
            }
        ],
        "data": {"customerEmail": "jo@example.com", "currency": "EUR", "channel": "webshop"},
        "orderLines": [
            {
                "orderId": line_id,
                "title": "Custom bracelet",
                "data": {"giftWrap": True},
                "items": [
                    {
                        "id": "bracelet",
                        "data": {"size": "M", "material": "PA12", "color": "black"},
                        "tags": ["3dprint", "sls"],
                        "items": [
                            {
                                "id": "engraving",
                                "data": {"text": "For Jo"},
                                "tags": ["laser"],
                                "items": [],
                                "assets": [
                                    {
                                        "id": "engraving-svg",
                                        "url": f"{asset_base}/engraving.svg",
                                        "isPublic": True,
                                        "versions": [],
                                    }
                                ],
                                "isAsset": False,
                            }
                        ],
                        "assets": [
                            {
                                "id": "bracelet-stl",
                                "url": f"{asset_base}/bracelet-v2.stl",
                                "isPublic": False,
                                "versions": [
                                    {
                                        "url": f"{asset_base}/bracelet-v1.stl",
                                        "date": "2026-03-01T09:12:44.120Z",
                                    },
                                    {
                                        "url": f"{asset_base}/bracelet-v2.stl",
                                        "date": "2026-03-02T16:40:03.580Z",
                                    },
                                ],
                            }
                        ],
                        "isAsset": False,
                    }
                ],
                "deadline": "2026-12-24T00:00:00.000Z",
                "amountOfUnits": 2,
                "valuePerUnit": 49.5,
            }
        ],
    }
    context = {
        "orderId": "ord_" + secrets.token_hex(13),
        "stageKey": "intake",
        "taskKey": "notify-erp",
        "deliveryId": delivery_id,
    }
    return {"order": order, "context": context}


def encode(document: dict[str, Any]) -> bytes:
    """The body bytes as ordermill writes them: compact UTF-8 JSON."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
