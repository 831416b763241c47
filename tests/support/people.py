"""People in the UI for the integration tests: invite one through the API, set the password
with the link, sign in with the form."""

from __future__ import annotations

import re
from typing import Any

import httpx2

PASSWORD = "twelve chars or more"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


async def form_token(client: httpx2.AsyncClient, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    found = CSRF_FIELD.search(page.text)
    assert found is not None
    return found.group(1)


async def set_password(client: httpx2.AsyncClient, path: str, password: str) -> httpx2.Response:
    token = await form_token(client, path)
    return await client.post(path, data={"csrf": token, "password": password})


async def sign_in(
    client: httpx2.AsyncClient, email: str, password: str = PASSWORD
) -> httpx2.Response:
    token = await form_token(client, "/signin")
    return await client.post(
        "/signin", data={"csrf": token, "email": email, "password": password, "next": "/"}
    )


async def invite(
    client: httpx2.AsyncClient, headers: dict[str, str], email: str, roles: list[str]
) -> dict[str, Any]:
    response = await client.post(
        "/api/users", json={"email": email, "roles": roles}, headers=headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def member(
    client: httpx2.AsyncClient, headers: dict[str, str], email: str, roles: list[str]
) -> None:
    """Invite ``email`` and set their password with the returned link (in a separate client)."""
    invited = await invite(client, headers, email, roles)
    path = invited["link"].removeprefix("http://testserver")
    transport = client._transport  # the same app, without the cookies of ``client``
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as other:
        done = await set_password(other, path, PASSWORD)
    assert done.status_code == 303, done.text


async def signed_in_member(
    client: httpx2.AsyncClient, headers: dict[str, str], email: str, roles: list[str]
) -> None:
    """``client`` signed in to the UI as a new member of the key's space with ``roles``."""
    await member(client, headers, email, roles)
    response = await sign_in(client, email)
    assert response.status_code == 303, response.text
