"""Requests anyone can send, without a key, answer a clean 4xx: never a 500.

Non-ASCII credentials once reached ``hmac.compare_digest`` as ``str`` (which raises); each is sent
here as raw bytes on the wire, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import httpx2
import pytest

from tests.support.hostile import HOSTILE

PROBLEM_JSON = "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path", "headers", "form", "status", "problem"),
    HOSTILE,
    ids=[f"{method} {path[:60]} {list(headers)}" for method, path, headers, *_ in HOSTILE],
)
async def test_hostile_anonymous_requests_answer_a_clean_4xx(
    client: httpx2.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, bytes],
    form: dict[str, str] | None,
    status: int,
    problem: bool,
) -> None:
    response = await client.request(method, path, headers=headers, data=form)

    assert response.status_code == status, response.text
    if problem:
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["status"] == status
    elif status != 303:
        assert response.headers["content-type"].startswith("text/html")
