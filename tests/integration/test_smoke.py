"""The reference flow runs end to end in-process, on both databases."""

from __future__ import annotations

import httpx2

from tests.integration.conftest import flow_doc, order_doc, wait_for_status
from tests.support.receiver import HttpsReceiver


async def test_reference_flow_reaches_success(
    client: httpx2.AsyncClient, acme: dict[str, str], https_receiver: HttpsReceiver
) -> None:
    response = await client.post(
        "/api/flows", json=flow_doc(https_receiver.url("/orders")), headers=acme
    )
    assert response.status_code == 201, response.text
    response = await client.post("/api/orders", json=order_doc(), headers=acme)
    assert response.status_code == 201, response.text
    order = await wait_for_status(client, acme, response.json()["id"], "SUCCESS", "FAILURE")
    assert order["status"] == "SUCCESS"
    assert len(https_receiver.requests) == 1
