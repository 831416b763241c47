"""The served OpenAPI document is exact: valid, every reference resolves, every route says how
it authenticates and documents the statuses it answers, and a client generated from it posts
an order (issue 10 §6)."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from openapi_spec_validator import validate

from tests.integration.conftest import ADMIN_KEY
from tests.support.factories import flow_doc, order_doc

PUBLIC = {"/healthz", "/readyz", "/metrics", "/api/flows/schema", "/api/feedback/{token}"}


async def served(client: httpx2.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def references(node: Any) -> list[str]:
    found, stack = [], [node]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if isinstance(value.get("$ref"), str):
                found.append(value["$ref"])
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


async def test_the_document_is_valid_and_every_reference_resolves(
    client: httpx2.AsyncClient,
) -> None:
    document = await served(client)

    validate(document)
    schemas = document["components"]["schemas"]
    refs = references(document)
    assert refs  # the bodies are described by reference
    dangling = sorted(
        ref for ref in set(refs) if ref.removeprefix("#/components/schemas/") not in schemas
    )
    assert dangling == []


async def test_routes_say_how_they_authenticate_and_what_they_answer(
    client: httpx2.AsyncClient,
) -> None:
    document = await served(client)

    assert document["components"]["securitySchemes"] == {
        "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "A space's API key (om_…) or the admin key: "
            "`Authorization: Bearer <key>`.",
        }
    }
    for method, path, operation in operations(document):
        responses = operation["responses"]
        takes_key = any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
        assert ("422" in responses) is takes_key, (method, path)
        if path in PUBLIC:
            assert not operation.get("security"), (method, path)
            continue
        assert {"apiKey": []} in operation["security"], (method, path)
        assert {"401", "403"} <= set(responses), (method, path)
        if "{" in path:
            assert {"400", "404"} <= set(responses), (method, path)
        if "requestBody" in operation:
            assert {"400", "413"} <= set(responses), (method, path)
        problem = responses["401"]["content"]["application/problem+json"]["schema"]
        assert problem == {"$ref": "#/components/schemas/Problem"}
    orders = document["paths"]["/api/orders"]["post"]["responses"]
    assert {"200", "201", "400", "401", "403", "404", "409", "413"} == set(orders)
    feedback = document["paths"]["/api/feedback/{token}"]["post"]["responses"]
    assert {"200", "400", "401", "404", "409", "413"} == set(feedback)
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    assert (await client.get("/metrics")).headers["content-type"].startswith("text/plain")


async def test_a_client_generated_from_the_document_posts_an_order(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = tmp_path / "openapi.json"
    spec.write_text((await client.get("/api/openapi.json")).text)
    models_path = tmp_path / "generated_models.py"
    await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "datamodel_code_generator",
            "--input",
            str(spec),
            "--input-file-type",
            "openapi",
            "--output-model-type",
            "pydantic_v2.BaseModel",
            "--formatters",
            "ruff-format",
            "--output",
            str(models_path),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    module_spec = importlib.util.spec_from_file_location("generated_models", models_path)
    assert module_spec is not None
    assert module_spec.loader is not None
    models = importlib.util.module_from_spec(module_spec)
    monkeypatch.setitem(sys.modules, "generated_models", models)  # its annotations resolve here
    module_spec.loader.exec_module(models)
    response = await client.post(
        "/api/flows", json=flow_doc("https://example.invalid/orders"), headers=acme
    )
    assert response.status_code == 201, response.text

    order = models.OrderIn.model_validate({**order_doc("GEN-1"), "start": False})
    body = order.model_dump(mode="json", exclude_unset=True)
    response = await client.post("/api/orders", json=body, headers=acme)

    assert response.status_code == 201, response.text
    assert response.json()["thirdPartyOrderId"] == "GEN-1"
    assert response.json()["orderLines"] == order_doc("GEN-1")["orderLines"]
    space = models.SpaceIn.model_validate({"key": "generated"})
    response = await client.post(
        "/api/spaces",
        json=space.model_dump(mode="json", exclude_unset=True),
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert response.status_code == 201, response.text
