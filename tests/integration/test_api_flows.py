"""/api/flows: creating, versioning, deleting and validating flows (SPEC §2), on both databases."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import httpx2

from tests.integration.matchers import INSTANT, SHA256_HEX
from tests.support.factories import flow_doc
from tests.support.reference import example_flow

URI = "https://erp.example.com/orders"
PROBLEM_JSON = "application/problem+json"


def stored_flow(document: dict[str, Any], *, version: int, order_count: int = 0) -> dict[str, Any]:
    """The API's view of a stored flow: the definition as sent, plus what the server adds."""
    return {
        **document,
        "spaceKey": "acme",
        "version": version,
        "contentHash": SHA256_HEX,
        "createdAt": INSTANT,
        "updatedAt": INSTANT,
        "orderCount": order_count,
    }


def task(key: str, uri: str = URI, **extra: Any) -> dict[str, Any]:
    return {"key": key, "handlerKey": "consume-rest-api", "payload": {"uri": uri}, **extra}


def broken_flow() -> dict[str, Any]:
    """Four mistakes at once: plain http, a typo'd field, a link across stages, and a cycle."""
    return {
        "key": "broken-flow",
        "name": "Broken flow",
        "stages": [
            {
                "key": "stage-1",
                "initialTaskDefinitionKeys": ["a"],
                "taskDefinitions": [
                    task("a", uri="http://erp.example.com/orders", next=["b", "e"]),
                    task("b", next=["c"]),
                    task("c", next=["b"], nxt=[]),
                ],
            },
            {"key": "stage-2", "initialTaskDefinitionKeys": ["e"], "taskDefinitions": [task("e")]},
        ],
    }


PLAIN_HTTP_REFUSED = (
    "must use https; plain http is allowed only for the hosts named in "
    "ORDERMILL_CONNECTOR_ALLOW_HTTP or in the space's connectorAllowHttp (erp.example.com is not)"
)
BROKEN_FLOW_PROBLEMS = [
    {
        "pointer": "/stages/0/taskDefinitions/0/payload/uri",
        "message": PLAIN_HTTP_REFUSED,
    },
    {
        "pointer": "/stages/0/taskDefinitions/2/nxt",
        "message": "unknown field 'nxt'; did you mean 'next'?",
    },
    {
        "pointer": "/stages/0/taskDefinitions/0/next/1",
        "message": "'e' belongs to stage 'stage-2' (/stages/1): next never crosses stages",
    },
    {
        "pointer": "/stages/0/taskDefinitions/2/next/0",
        "message": "this link closes the cycle b → c → b; the next links of a stage must not "
        "loop, remove one of them",
    },
]


async def test_post_creates_version_1_with_a_content_hash(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    document = flow_doc(URI)

    response = await client.post("/api/flows", json=document, headers=acme)

    assert response.status_code == 201, response.text
    assert response.json() == stored_flow(document, version=1)
    listed = await client.get("/api/flows", headers=acme)
    assert listed.json() == {"items": [response.json()]}


async def test_posting_the_same_flow_again_answers_200_with_the_stored_version(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    first = await client.post("/api/flows", json=flow_doc(URI), headers=acme)

    again = await client.post("/api/flows", json=flow_doc(URI), headers=acme)

    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    versions = await client.get("/api/flows/made-to-order/versions", headers=acme)
    assert [v["version"] for v in versions.json()["items"]] == [1]


async def test_posting_a_different_flow_under_an_existing_key_is_a_409_problem(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    await client.post("/api/flows", json=flow_doc(URI), headers=acme)

    response = await client.post(
        "/api/flows", json=flow_doc("https://erp.example.com/other"), headers=acme
    )

    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json() == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "flow 'made-to-order' already exists; "
        "PUT /api/flows/made-to-order makes a new version",
        "instance": "/api/flows",
    }
    current = await client.get("/api/flows/made-to-order", headers=acme)
    assert current.json() == stored_flow(flow_doc(URI), version=1)


async def test_put_makes_version_2_and_old_versions_stay_readable(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    v1 = flow_doc(URI)
    v2 = flow_doc("https://erp.example.com/v2", timeoutDuration=2000)
    created = (await client.post("/api/flows", json=v1, headers=acme)).json()

    response = await client.put("/api/flows/made-to-order", json=v2, headers=acme)

    assert response.status_code == 200, response.text
    assert response.json() == stored_flow(v2, version=2)
    assert response.json()["contentHash"] != created["contentHash"]
    versions = (await client.get("/api/flows/made-to-order/versions", headers=acme)).json()
    version_view = {"spaceKey": "acme", "contentHash": SHA256_HEX, "createdAt": INSTANT}
    assert versions == {
        "items": [
            {**v2, **version_view, "version": 2, "contentHash": response.json()["contentHash"]},
            {**v1, **version_view, "version": 1, "contentHash": created["contentHash"]},
        ]
    }
    old = await client.get("/api/flows/made-to-order/versions/1", headers=acme)
    assert old.status_code == 200
    assert old.json() == versions["items"][1]
    current = await client.get("/api/flows/made-to-order", headers=acme)
    assert current.json() == stored_flow(v2, version=2)


async def test_put_with_an_unchanged_flow_makes_no_new_version(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    await client.post("/api/flows", json=flow_doc(URI), headers=acme)

    response = await client.put("/api/flows/made-to-order", json=flow_doc(URI), headers=acme)

    assert response.status_code == 200
    assert response.json() == stored_flow(flow_doc(URI), version=1)


async def test_put_whose_body_names_another_key_is_refused(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    response = await client.put(
        "/api/flows/made-to-order", json=flow_doc(URI, key="other-flow"), headers=acme
    )

    assert response.status_code == 400
    assert response.json()["problems"] == [
        {"pointer": "/key", "message": "must be 'made-to-order', the key it is saved under"}
    ]


async def test_delete_answers_204_and_the_flow_is_gone(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    await client.post("/api/flows", json=flow_doc(URI), headers=acme)

    response = await client.delete("/api/flows/made-to-order", headers=acme)

    assert response.status_code == 204
    assert response.content == b""
    gone = await client.get("/api/flows/made-to-order", headers=acme)
    assert gone.status_code == 404
    assert gone.headers["content-type"] == PROBLEM_JSON
    assert gone.json()["detail"] == "flow 'made-to-order' does not exist in space 'acme'"
    assert (await client.get("/api/flows", headers=acme)).json() == {"items": []}
    again = await client.delete("/api/flows/made-to-order", headers=acme)
    assert again.status_code == 404


async def test_validate_lists_every_problem_with_its_pointer(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    response = await client.post("/api/flows/validate", json=broken_flow(), headers=acme)

    assert response.status_code == 200
    assert response.json() == {"valid": False, "problems": BROKEN_FLOW_PROBLEMS}


async def test_validate_accepts_a_valid_flow(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    response = await client.post("/api/flows/validate", json=flow_doc(URI), headers=acme)

    assert response.json() == {"valid": True, "problems": []}


async def test_plain_http_passes_validation_only_for_hosts_the_space_allows(
    client: httpx2.AsyncClient, make_space: Callable[..., Any]
) -> None:
    local = await make_space("local-dev", connectorAllowHttp=["localhost"])
    strict = await make_space("strict")

    allowed = await client.post(
        "/api/flows/validate", json=flow_doc("http://localhost:8080/orders"), headers=local
    )
    other_host = await client.post(
        "/api/flows/validate", json=flow_doc("http://erp.example.com/orders"), headers=local
    )
    other_space = await client.post(
        "/api/flows/validate", json=flow_doc("http://localhost:8080/orders"), headers=strict
    )

    assert allowed.json() == {"valid": True, "problems": []}
    pointer = "/stages/0/taskDefinitions/0/payload/uri"
    assert other_host.json()["problems"] == [{"pointer": pointer, "message": PLAIN_HTTP_REFUSED}]
    assert [p["pointer"] for p in other_space.json()["problems"]] == [pointer]


async def test_posting_an_invalid_flow_is_a_400_problem_listing_everything_and_stores_nothing(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    response = await client.post("/api/flows", json=broken_flow(), headers=acme)

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json() == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "The flow definition is invalid.",
        "instance": "/api/flows",
        "problems": BROKEN_FLOW_PROBLEMS,
    }
    assert (await client.get("/api/flows", headers=acme)).json() == {"items": []}
    missing = await client.get("/api/flows/broken-flow", headers=acme)
    assert missing.status_code == 404


async def test_put_of_an_invalid_flow_keeps_the_current_version(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    await client.post("/api/flows", json=flow_doc(URI), headers=acme)
    invalid = copy.deepcopy(flow_doc(URI))
    invalid["stages"][0]["taskDefinitions"][0]["timeoutDuration"] = 0

    response = await client.put("/api/flows/made-to-order", json=invalid, headers=acme)

    assert response.status_code == 400
    assert response.json()["problems"] == [
        {
            "pointer": "/stages/0/taskDefinitions/0/timeoutDuration",
            "message": "must be between 1 and 2592000000 milliseconds (30 days), not 0",
        }
    ]
    current = await client.get("/api/flows/made-to-order", headers=acme)
    assert current.json() == stored_flow(flow_doc(URI), version=1)


async def test_a_body_that_is_not_a_flow_object_is_a_400_problem(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    response = await client.post("/api/flows", json=["not", "a", "flow"], headers=acme)

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["problems"] == [
        {"pointer": "", "message": "must be an object, not an array"}
    ]


async def test_flow_schema_is_a_json_schema_of_the_flow_format(client: httpx2.AsyncClient) -> None:
    response = await client.get("/api/flows/schema")

    assert response.status_code == 200
    schema = response.json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["stages"]
    assert sorted(schema["properties"]) == ["failureStage", "key", "name", "spaceKey", "stages"]
    assert sorted(schema["$defs"]) == ["failureStage", "key", "retry", "stage", "taskDefinition"]
    assert sorted(schema["$defs"]["taskDefinition"]["properties"]) == sorted(
        [
            *("key", "handlerKey", "payload", "timeoutDuration", "next", "retry", "join"),
            *("description", "onAmend"),
        ]
    )
    refs = set(_refs(schema))
    names = ("failureStage", "key", "retry", "stage", "taskDefinition")
    assert refs == {f"#/$defs/{name}" for name in names}


async def test_handlers_lists_consume_rest_api_with_its_payload_schema(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    response = await client.get("/api/handlers", headers=acme)

    assert response.status_code == 200
    items = {item["key"]: item for item in response.json()["items"]}
    connector = items["consume-rest-api"]
    assert {k: v for k, v in connector.items() if k != "payloadSchema"} == {
        "key": "consume-rest-api",
        "defaultTimeoutDuration": 30000,
        "defaultRetry": {
            "maxAttempts": 5,
            "initialIntervalMs": 1000,
            "backoffCoefficient": 2.0,
            "maxIntervalMs": 300000,
        },
    }
    schema = connector["payloadSchema"]
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["uri"]
    properties = schema["properties"]
    assert {"uri", "sendsFeedback", "feedbackTimeoutDuration"} <= set(properties)  # SPEC §6
    assert (properties["uri"]["type"], properties["sendsFeedback"]["type"]) == ("string", "boolean")
    assert properties["sendsFeedback"]["default"] is False


def _refs(node: object) -> list[str]:
    """Every "$ref" value anywhere in a JSON document."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


# --- the reference page's BARE {"stages": [...]} document ---------------------------------------

BARE = example_flow(URI)


async def test_put_accepts_the_reference_pages_bare_document_and_names_it_after_its_key(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    created = await client.put("/api/flows/seed-flow", json=BARE, headers=acme)
    again = await client.put("/api/flows/seed-flow", json=BARE, headers=acme)

    assert created.status_code == 201, created.text
    expected = {"key": "seed-flow", "name": "seed-flow", **BARE}
    assert created.json() == stored_flow(expected, version=1)
    assert again.status_code == 200
    assert again.json()["version"] == 1
    named = await client.put(
        "/api/flows/seed-flow", json={**BARE, "name": "Seed flow (EU)"}, headers=acme
    )
    assert (named.json()["name"], named.json()["version"]) == ("Seed flow (EU)", 2)


async def test_post_still_needs_the_key_and_a_given_name_is_still_checked(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    posted = await client.post("/api/flows", json=BARE, headers=acme)
    short_name = await client.put(
        "/api/flows/seed-flow", json={**BARE, "name": "abc"}, headers=acme
    )

    assert posted.status_code == 400
    assert posted.json()["problems"] == [
        {"pointer": "/key", "message": "required field 'key' is missing"}
    ]
    assert short_name.status_code == 400
    assert short_name.json()["problems"] == [
        {"pointer": "/name", "message": "must have at least 5 characters"}
    ]
    listed = (await client.get("/api/flows", headers=acme)).json()["items"]
    assert listed == []


async def test_validate_with_a_key_checks_the_body_as_put_would(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    keyless = await client.post("/api/flows/validate", json=BARE, headers=acme)
    keyed = await client.post("/api/flows/validate?key=seed-flow", json=BARE, headers=acme)
    other = await client.post(
        "/api/flows/validate?key=seed-flow", json={**BARE, "key": "other"}, headers=acme
    )

    assert keyless.json() == {
        "valid": False,
        "problems": [{"pointer": "/key", "message": "required field 'key' is missing"}],
    }
    assert keyed.json() == {"valid": True, "problems": []}
    assert other.json() == {
        "valid": False,
        "problems": [
            {"pointer": "/key", "message": "must be 'seed-flow', the key it is saved under"}
        ],
    }
