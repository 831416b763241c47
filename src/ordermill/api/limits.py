"""Input limits at the edge: the body size on the raw byte stream (Content-Length may lie),
and the route class that checks paths, queries and JSON bodies before anything reads them."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ordermill.api.access import enforce
from ordermill.errors import InvalidInput, Problem
from ordermill.handlers.registry import pointer
from ordermill.jsoncodec import parse_untrusted


class BodyTooLarge(HTTPException):
    """The body outgrew the limit while it was read.

    An HTTPException, because FastAPI turns any other error raised while it reads a body into
    a 400 "error parsing the body"; this one it lets through to the 413 handler.
    """

    def __init__(self) -> None:
        super().__init__(413)


class BodySizeLimit:
    """Answers 413 problem+json when a request body exceeds ``limit`` bytes."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(scope, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(scope, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": "Content Too Large",
            "status": 413,
            "detail": f"The request body is larger than the limit of {self.limit} bytes "
            "(ORDERMILL_MAX_BODY_BYTES).",
            "instance": scope.get("path", ""),
        }
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


class BoundedRequest(Request):
    """A request whose JSON body is read by the one bounded parser (jsoncodec.parse_untrusted)."""

    async def json(self) -> Any:
        if not hasattr(self, "_document"):
            self._document = parse_untrusted(await self.body())
        return self._document


class BoundedRoute(APIRoute):
    """An API route whose input is checked before anything else reads it.

    The path and query must not hold the NUL character (no database can store it), and a body
    is parsed within the JSON limits before FastAPI or the endpoint sees it, so a refusal is a
    400 naming the JSON pointer and nothing downstream meets unbounded nesting. Then the
    route's permission is checked (``access.enforce``), before any of the route's own code.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            refuse_nul(request)
            bounded_request = BoundedRequest(request.scope, request.receive)
            if _json_typed(request) and await bounded_request.body():
                await bounded_request.json()
            await enforce(bounded_request)
            return await handle(bounded_request)

        return bounded


def _json_typed(request: Request) -> bool:
    """Whether FastAPI would read the body as JSON (no content type, or a JSON one)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return not media_type or media_type == "application/json" or media_type.endswith("+json")


def refuse_nul(request: Request) -> None:
    path: str = request.scope["path"]
    query: bytes = request.scope.get("query_string", b"")
    if "\x00" not in path and b"%00" not in query and b"\x00" not in query:
        return  # (the usual case, without parsing the query)
    problems = []
    if "\x00" in path:
        problems.append(Problem("", "the path contains the NUL character (U+0000)"))
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            message = "query parameter: contains the NUL character (U+0000)"
            problems.append(Problem(pointer([name.replace("\x00", "\\u0000")]), message))
    if problems:
        raise InvalidInput(problems, "The request is invalid.")


async def refuse_nul_in_form(request: Request) -> None:
    """A submitted form's text fields must not hold the NUL character either."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return
    form = await request.form()
    problems = [
        Problem(pointer([name]), "form field: contains the NUL character (U+0000)")
        for name, value in form.multi_items()
        if isinstance(value, str) and ("\x00" in value or "\x00" in name)
    ]
    if problems:
        raise InvalidInput(problems, "The request is invalid.")
