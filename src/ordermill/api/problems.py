"""The one error mapper: every error leaves the API as RFC 9457 problem+json, never a trace."""

from __future__ import annotations

import secrets
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ordermill.errors import (
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    InvalidInput,
    KeyReused,
    NotFound,
    OrdermillError,
    Problem,
    StorageError,
    Unauthorized,
)
from ordermill.handlers.registry import message_of, pointer

log = structlog.get_logger("ordermill.api")

PROBLEM_JSON = "application/problem+json"

STATUS_OF: tuple[tuple[type[OrdermillError], int], ...] = (
    (InvalidInput, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (KeyReused, 422),
    (DatabaseUnavailable, 503),
    (StorageError, 500),
)


def problem_response(
    status: int,
    detail: str,
    *,
    problems: list[Problem] | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if problems is not None:
        body["problems"] = [p.as_dict() for p in problems]
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def validation_problems(exc: RequestValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        location = list(error.get("loc", ()))
        source = location.pop(0) if location else "body"
        message = message_of({**error, "loc": location})
        if error.get("type") == "json_invalid":
            message = "the request body is not valid JSON"
            location = []
        if source != "body":
            message = f"{source} parameter: {message}"
        problems.append(Problem(pointer(location), message))
    return problems


def status_of(exc: OrdermillError) -> int:
    return next((code for cls, code in STATUS_OF if isinstance(exc, cls)), 500)


def domain_problem(exc: OrdermillError, path: str) -> JSONResponse:
    """The problem response for a domain error raised while answering ``path``."""
    status = status_of(exc)
    problems = exc.problems if isinstance(exc, InvalidInput) else None
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status >= 500:
        correlation = secrets.token_hex(8)
        log.error("request failed", error=str(exc), correlation_id=correlation, path=path)
        headers = {"Retry-After": "5"} if status == 503 else None
        return problem_response(
            status, exc.message, instance=path, headers=headers, correlationId=correlation
        )
    return problem_response(status, exc.message, problems=problems, instance=path, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(OrdermillError)
    async def _domain(request: Request, exc: OrdermillError) -> JSONResponse:
        return domain_problem(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = validation_problems(exc)
        return problem_response(
            400, "The request is invalid.", problems=problems, instance=request.url.path
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"There is no resource at {request.url.path}."
        return problem_response(
            exc.status_code,
            detail,
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        correlation = secrets.token_hex(8)
        log.exception("unhandled error", correlation_id=correlation, path=request.url.path)
        return problem_response(
            500,
            f"Something went wrong on our side. Quote correlation id {correlation} "
            "when reporting it.",
            instance=request.url.path,
            correlationId=correlation,
        )
