"""Signing in with a space API key, and signing out."""

from __future__ import annotations

import secrets
import time
from typing import Annotated

from fastapi import Form, Request, Response

from ordermill.service import Service
from ordermill.signatures import same_secret
from ordermill.ui.routing import ui_router
from ordermill.ui.session import (
    COOKIE,
    SIGNIN_COOKIE,
    CsrfRejected,
    SessionDep,
    is_secure,
    load_session,
    set_session_cookie,
    signer_of,
)
from ordermill.ui.templating import Toast, redirect, render

router = ui_router()


def safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would let a link send people elsewhere."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def _signin_page(request: Request, *, next_: str, error: str | None, status: int) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request, "signin.html", status_code=status, signin_token=token, next=next_, error=error
    )
    response.set_cookie(
        SIGNIN_COOKIE,
        token,
        max_age=3600,
        path="/signin",
        secure=is_secure(request),
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/signin")
async def signin_form(request: Request, next: str | None = None) -> Response:
    service: Service = request.app.state.service
    if await load_session(service, request.cookies.get(COOKIE)) is not None:
        return redirect(request, safe_next(next))
    return _signin_page(request, next_=safe_next(next), error=None, status=200)


@router.post("/signin")
async def signin(
    request: Request,
    api_key: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    # Double submit: the form's token must equal the cookie set with the form.
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not expected or not same_secret(csrf, expected):
        raise CsrfRejected()
    service: Service = request.app.state.service
    key = await service.store.spaces.authenticate(api_key.strip()) if api_key.strip() else None
    if key is None:
        error = (
            "Enter an API key."
            if not api_key.strip()
            else "That API key is unknown or revoked. Check it, or ask for a new one."
        )
        return _signin_page(request, next_=safe_next(next), error=error, status=401)
    response = redirect(request, safe_next(next), Toast(f"Signed in to space {key.space_key}."))
    set_session_cookie(request, response, signer_of(service).cookie_for(key, time.time()))
    response.delete_cookie(SIGNIN_COOKIE, path="/signin")
    return response


@router.post("/signout")
async def signout(request: Request, session: SessionDep) -> Response:
    response = redirect(request, "/signin", Toast("Signed out.", "info"))
    response.delete_cookie(COOKIE, path="/", secure=is_secure(request), httponly=True)
    return response
