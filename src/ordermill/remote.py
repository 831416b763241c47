"""Flows as code and operators' actions, against a running server's HTTP API.

``ordermill flows push/pull/list`` and ``ordermill orders pause/resume/cancel/skip/restart``
talk to a server's HTTP API with a space API key, so flows
kept in git can be deployed from CI. The server decides what is valid (with its handlers and
the space's allowances); this module only carries documents and turns HTTP answers into
ordermill's errors, so the CLI prints them like every other failure.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from ordermill.errors import (
    Conflict,
    Forbidden,
    InvalidFlow,
    InvalidInput,
    NotFound,
    OrdermillError,
    Problem,
    Unauthorized,
)
from ordermill.flows.validation import KEY_PATTERN

TIMEOUT_SECONDS = 30
FLOW_FILE_FIELDS = ("key", "name", "stages")


class RemoteError(OrdermillError):
    """The server could not be reached, or answered as an ordermill server would not."""


class Pushed(StrEnum):
    CREATED = "created"  # the flow did not exist: version 1
    UPDATED = "updated"  # a new version
    UNCHANGED = "unchanged"  # the current version already has this content
    VALID = "valid"  # --dry-run: the server found no problem; nothing saved


@dataclass(frozen=True)
class PushResult:
    key: str
    outcome: Pushed
    version: int | None  # None for a dry run


def read_flow_file(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; InvalidInput (at the root) when it is not one."""
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        message = f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        raise InvalidInput([Problem("", message)], f"{path}: {message}") from exc
    if not isinstance(document, dict):
        raise InvalidInput([Problem("", "must be an object")], f"{path}: not a flow object")
    return document


def key_for(document: Mapping[str, Any], path: Path, given: str | None) -> str | None:
    """The key a file is saved under: ``--key``, else its own ``key``, else its file name.

    None when none of these is a usable key (the server then reports the missing key).
    """
    if given is not None:
        return given
    if isinstance(document.get("key"), str):
        return str(document["key"])
    return path.stem if KEY_PATTERN.fullmatch(path.stem) else None


def flow_file(flow: Mapping[str, Any]) -> dict[str, Any]:
    """A flow from the API as a flow file: what ``push`` sends back unchanged."""
    return {name: flow[name] for name in FLOW_FILE_FIELDS if name in flow}


class RemoteApi:
    """The few API calls of the flows commands, with errors that say what to fix."""

    def __init__(self, session: aiohttp.ClientSession, url: str, space: str | None) -> None:
        self._session = session
        self.url = url
        self._space = space

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, url: str, api_key: str, space: str | None = None
    ) -> AsyncIterator[RemoteApi]:
        if not url.startswith(("http://", "https://")):
            raise RemoteError(f"{url!r} is not an http(s) URL; give the server's base URL")
        headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            yield cls(session, url.rstrip("/"), space)

    async def list_flows(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self._call("GET", "/api/flows"))["items"]
        return items

    async def get_flow(self, key: str, version: int | None = None) -> dict[str, Any]:
        path = f"/api/flows/{quote(key, safe='')}"
        if version is not None:
            path += f"/versions/{version}"
        return await self._call("GET", path)

    async def push(self, key: str | None, document: dict[str, Any], *, dry_run: bool) -> PushResult:
        """Validate (``dry_run``) or save ``document`` under ``key``; None: the file has none."""
        if self._space is not None:
            document = {"spaceKey": self._space, **document}
        if dry_run or key is None:
            query = {} if key is None else {"key": key}
            verdict = await self._call("POST", "/api/flows/validate", document, query)
            problems = [Problem(p["pointer"], p["message"]) for p in verdict["problems"]]
            if key is None:  # the server reports the missing key among the problems
                raise InvalidFlow(problems or [Problem("/key", "required field 'key' is missing")])
            if problems:
                raise InvalidFlow(problems)
            return PushResult(key, Pushed.VALID, None)
        try:
            before: int | None = (await self.get_flow(key))["version"]
        except NotFound:
            before = None
        saved = await self._call("PUT", f"/api/flows/{quote(key, safe='')}", document)
        version = int(saved["version"])
        if before is None:
            return PushResult(key, Pushed.CREATED, version)
        return PushResult(key, Pushed.UNCHANGED if version == before else Pushed.UPDATED, version)

    async def order_action(
        self, order_id: str, action: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """POST ``/api/orders/{id}/{action}`` (pause, resume, cancel, restart, tasks/…/skip)."""
        return await self._call("POST", f"/api/orders/{quote(order_id, safe='')}/{action}", body)

    async def bulk_action(
        self, action: str, body: dict[str, Any], idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """POST ``/api/orders/{action}``: a bulk action (retry, pause, resume, cancel, restart)
        on the orders its filter matches; with ``dryRun`` only counted."""
        if self._space is not None:
            body = {"spaceKey": self._space, **body}
        headers = None if idempotency_key is None else {"Idempotency-Key": idempotency_key}
        return await self._call("POST", f"/api/orders/{action}", body, headers=headers)

    async def dry_run(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``/api/flows/dry-run``: the flow against a sample order, with no side effects."""
        return await self._call("POST", "/api/flows/dry-run", body)

    async def get_order_part(self, order_id: str, part: str = "") -> dict[str, Any]:
        """GET the order (``part`` empty) or one of its parts (``explain``, ``events``)."""
        path = f"/api/orders/{quote(order_id, safe='')}" + (f"/{part}" if part else "")
        return await self._call("GET", path)

    async def subscriptions(
        self, space: str, method: str, suffix: str = "", body: object = None
    ) -> dict[str, Any]:
        """A call under ``/api/spaces/{space}/subscriptions`` (``suffix`` after it)."""
        path = f"/api/spaces/{quote(space, safe='')}/subscriptions{suffix}"
        if method == "DELETE":
            await self._call(method, path, body, allow_empty=True)
            return {}
        return await self._call(method, path, body)

    async def _call(
        self,
        method: str,
        path: str,
        body: object = None,
        params: dict[str, str] | None = None,
        *,
        allow_empty: bool = False,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        query = dict(params or {})
        if self._space is not None:
            query["spaceKey"] = self._space
        target = self.url + path
        try:
            async with self._session.request(
                method,
                target,
                json=body,
                params=query or None,
                headers=headers,
                allow_redirects=False,
            ) as response:
                text = await response.text()
                status = response.status
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, ConnectionRefusedError)
            reason = "connection refused" if refused else exc.os_error.strerror or str(exc)
            raise RemoteError(
                f"cannot reach {self.url} ({reason}); is the server running there? "
                "Give its address with --url or ORDERMILL_URL"
            ) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RemoteError(f"{method} {target} failed: {exc or type(exc).__name__}") from exc
        if allow_empty and status == 204:
            return {}
        try:
            answer = json.loads(text)
        except json.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            raise RemoteError(
                f"{method} {target} answered {status} without a JSON object; "
                "is --url the base URL of an ordermill server?"
            )
        if status < 400:
            return answer
        detail = str(answer.get("detail") or answer.get("title") or status)
        if status == 401:
            raise Unauthorized(
                f"{self.url} refused the API key: {detail} "
                "Give a space API key with --api-key or ORDERMILL_API_KEY."
            )
        if status == 403:
            raise Forbidden(detail)
        if status == 404:
            raise NotFound(detail)
        if status == 409:
            raise Conflict(detail)
        if status == 400 and isinstance(answer.get("problems"), list):
            problems = [Problem(p["pointer"], p["message"]) for p in answer["problems"]]
            raise InvalidFlow(problems, detail)
        raise RemoteError(f"{method} {target} answered {status}: {detail}")
