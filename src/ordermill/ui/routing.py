"""UI routes turn every error into something a person can act on, never a JSON problem.

The API's error mapper answers problem+json; UI routes use ``UiRoute`` instead, which catches
errors first: a friendly page for a full page load, a toast for an htmx request, and a
correlation id (also in the log) for anything unexpected.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from ordermill.api.access import enforce
from ordermill.api.limits import refuse_nul, refuse_nul_in_form
from ordermill.api.problems import STATUS_OF
from ordermill.errors import InvalidInput, OrdermillError
from ordermill.ui.session import CsrfRejected, SignInRequired
from ordermill.ui.templating import Toast, is_htmx, render, toast_response

log = structlog.get_logger("ordermill.ui")

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def ui_router() -> APIRouter:
    """A router for pages: its routes use UiRoute and stay out of the OpenAPI document."""
    return APIRouter(route_class=UiRoute, include_in_schema=False)


class UiRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                refuse_nul(request)
                await refuse_nul_in_form(request)
                await enforce(request, page=True)
                return await handler(request)
            except SignInRequired:
                return _to_sign_in(request)
            except CsrfRejected as exc:
                return error_response(request, 403, "Please reload the page", exc.message)
            except InvalidInput as exc:
                details = "; ".join(f"{p.pointer or '/'}: {p.message}" for p in exc.problems)
                return error_response(request, 400, "That did not work", details or exc.message)
            except OrdermillError as exc:
                status = next((code for cls, code in STATUS_OF if isinstance(exc, cls)), 500)
                if status >= 500:
                    return _unexpected(request, exc)
                title = "Not found" if status == 404 else "That did not work"
                return error_response(request, status, title, exc.message)
            except RequestValidationError:
                return error_response(
                    request, 400, "That did not work", "Some fields are missing or malformed."
                )
            except HTTPException as exc:
                return error_response(request, exc.status_code, "That did not work", exc.detail)
            except Exception as exc:
                return _unexpected(request, exc)

        return guarded


def _to_sign_in(request: Request) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    url = "/signin" if target in ("/", "") else f"/signin?next={quote(target, safe='')}"
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return Response(status_code=303, headers={"Location": url})


def _unexpected(request: Request, exc: BaseException) -> Response:
    correlation = secrets.token_hex(8)
    log.error(
        "ui request failed",
        correlation_id=correlation,
        path=request.url.path,
        error=type(exc).__name__,
        exc_info=exc,
    )
    return error_response(
        request,
        500,
        "Something went wrong on our side",
        "The page could not be shown. Try again in a moment; if it keeps happening, "
        f"report correlation id {correlation}.",
        correlation=correlation,
    )


def error_response(
    request: Request, status: int, title: str, message: str, *, correlation: str | None = None
) -> Response:
    if is_htmx(request):
        return toast_response(request, Toast(message, "error"), status_code=status)
    return render(
        request,
        "error.html",
        status_code=status,
        status=status,
        title=title,
        message=message,
        correlation=correlation,
    )
