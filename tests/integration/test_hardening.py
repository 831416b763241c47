"""Response headers that hold against a hostile client: one value each, a CSP, no Host trust."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx2


async def test_the_confirmation_answer_page_sends_each_header_once(
    client: httpx2.AsyncClient,
) -> None:
    response = await client.get(
        "/confirmations/dlv_x/answer/confirm/0?expires=9999999999&signature=abc"
    )

    assert response.status_code == 403
    assert response.headers.get_list("referrer-policy") == ["no-referrer"]
    assert response.headers.get_list("cache-control") == ["no-store"]
    assert len(response.headers.get_list("content-security-policy")) == 1


async def test_the_api_docs_page_has_a_csp_that_allows_only_its_own_scripts(
    client: httpx2.AsyncClient,
) -> None:
    response = await client.get("/api/docs")

    assert response.status_code == 200
    [csp] = response.headers.get_list("content-security-policy")
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    inline = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    assert inline, "the page has its inline start-up script"
    expected = {
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in inline
    }
    assert set(directives["script-src"].split()) == {"'self'", *expected}
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert 'src="/api/static/swagger/swagger-ui-bundle.js"' in response.text


async def test_the_trailing_slash_redirect_ignores_the_host_header(
    client: httpx2.AsyncClient,
) -> None:
    response = await client.get(
        "/api/orders/?limit=5", headers={"Host": "evil.example"}, follow_redirects=False
    )

    assert response.status_code == 307
    assert response.headers["location"] == "/api/orders?limit=5"
    assert "evil.example" not in response.text


async def test_a_path_that_would_redirect_to_another_host_is_not_redirected_there(
    client: httpx2.AsyncClient,
) -> None:
    for path in ("//evil.example/", "/\\evil.example/", "//evil.example/api/orders/"):
        response = await client.get(path, follow_redirects=False)
        location = response.headers.get("location", "")
        assert "evil.example" not in location, path
        assert not location.startswith("//"), path
