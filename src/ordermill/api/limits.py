"""Input limits at the edge: the body size on the raw byte stream (Content-Length may lie),
and the route class that checks paths, queries and JSON bodies before anything reads them."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Coroutine
from typing import Any, get_type_hints

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
    An endpoint that takes only the request and returns a Response is then called as it is
    (``_plain_endpoint``); any other goes through FastAPI's handler.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = _plain_endpoint(self) or super().get_route_handler()

        async def bounded(request: Request) -> Response:
            refuse_nul(request)
            bounded_request = BoundedRequest(request.scope, request.receive)
            if _json_typed(request) and await bounded_request.body():
                await bounded_request.json()
            await enforce(bounded_request)
            return await handle(bounded_request)

        return bounded


def _plain_endpoint(route: APIRoute) -> Callable[[Request], Coroutine[Any, Any, Response]] | None:
    """The endpoint itself, when FastAPI would only call it: it takes the request and nothing
    else (no parameters, no dependencies) and returns a ``Response``, which FastAPI passes on
    as it is. FastAPI's handler costs tens of microseconds per request even then (the order
    intake is such an endpoint)."""
    dependant = route.dependant
    if (
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.dependencies
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or dependant.request_param_name is None
        or not inspect.iscoroutinefunction(route.endpoint)
    ):
        return None
    returns = get_type_hints(route.endpoint).get("return")
    if not (isinstance(returns, type) and issubclass(returns, Response)):
        return None
    endpoint = route.endpoint
    name = dependant.request_param_name

    async def call(request: Request) -> Response:
        response: Response = await endpoint(**{name: request})
        return response

    return call


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
