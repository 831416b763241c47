"""Signing in with e-mail and password or the operator's OpenID Connect provider, one-time links
(invitations, resets), switching spaces, one's own sessions, and signing out (here, or
everywhere)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from ordermill.errors import InvalidInput, NotFound
from ordermill.oidc import SignOnRefused
from ordermill.people import Actor, SlowDown
from ordermill.service import Service
from ordermill.signatures import same_secret
from ordermill.storage.users import TokenPurpose
from ordermill.ui.routing import ui_router
from ordermill.ui.session import (
    COOKIE,
    SIGNIN_COOKIE,
    CsrfRejected,
    SessionDep,
    client_address,
    is_secure,
    load_session,
    set_session_cookie,
)
from ordermill.ui.templating import Toast, redirect, render

router = ui_router()

Text = Annotated[str, Form(max_length=1024)]
Param = Annotated[str, Query(max_length=2048)]


def safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would let a link send people elsewhere."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def _form_page(
    request: Request,
    template: str,
    *,
    status: int = 200,
    **context: Any,
) -> Response:
    """A page with a form that works before signing in: its CSRF token is a double submit."""
    service: Service = request.app.state.service
    if service.sign_on.enabled:
        context.setdefault("sso_label", service.sign_on.label)
    token = secrets.token_urlsafe(24)
    response = render(request, template, status_code=status, signin_token=token, **context)
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


def _check_double_submit(request: Request, csrf: str) -> None:
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not expected or not same_secret(csrf, expected):
        raise CsrfRejected()


async def _start_session(
    request: Request,
    service: Service,
    user_id: int,
    space_key: str | None,
    target: str,
    note: str,
    *,
    method: str | None = None,
) -> Response:
    memberships = await service.people.users.memberships_of(user_id)
    spaces = [m.space_key for m in memberships]
    if not spaces:
        return render(
            request,
            "error.html",
            status_code=403,
            status=403,
            title="No space yet",
            message="Your account belongs to no space. Ask an administrator to invite you.",
            correlation=None,
        )
    space = space_key if space_key in spaces else spaces[0]
    seconds = service.settings.session_hours * 3600
    token = await service.people.users.open_session(
        user_id,
        space,
        seconds=seconds,
        client=client_address(request),
        user_agent=request.headers.get("user-agent"),
    )
    if method is not None:
        user = await service.people.users.get_user(user_id)
        actor = Actor(user.email, client_address(request), frozenset())
        await service.people.record(space, actor, "user.signed-in", user.email, {"method": method})
    response = redirect(request, safe_next(target), Toast(f"{note} Space {space}."))
    set_session_cookie(request, response, token, seconds)
    response.delete_cookie(SIGNIN_COOKIE, path="/signin")
    return response


@router.get("/signin")
async def signin_form(request: Request, next: str | None = None) -> Response:
    service: Service = request.app.state.service
    if await load_session(service, request.cookies.get(COOKIE)) is not None:
        return redirect(request, safe_next(next))
    return _form_page(request, "signin.html", next=safe_next(next), error=None, email="")


OIDC_COOKIE = "ordermill_oidc"
OIDC_SECONDS = 600


@dataclass(frozen=True)
class _Flow:
    """What the browser carries between leaving for the provider and coming back."""

    state: str
    nonce: str
    verifier: str
    next: str


def _flow_mac(service: Service, payload: str) -> str:
    key = service.store.token_secret.encode()
    return hmac.new(key, f"oidc-flow\n{payload}".encode(), hashlib.sha256).hexdigest()


def _flow_cookie(service: Service, flow: _Flow) -> str:
    fields = [flow.state, flow.nonce, flow.verifier, flow.next, int(time.time()) + OIDC_SECONDS]
    payload = base64.urlsafe_b64encode(json.dumps(fields).encode()).decode()
    return f"{payload}.{_flow_mac(service, payload)}"


def _flow_from(service: Service, cookie: str) -> _Flow | None:
    payload, _, mac = cookie.rpartition(".")
    if not payload or not same_secret(mac, _flow_mac(service, payload)):
        return None
    state, nonce, verifier, target, expires = json.loads(base64.urlsafe_b64decode(payload))
    if int(expires) < time.time():
        return None
    return _Flow(state, nonce, verifier, target)


def _refused(request: Request, status: int, message: str) -> Response:
    response = render(
        request,
        "error.html",
        status_code=status,
        status=status,
        title="Not signed in",
        message=message,
        correlation=None,
    )
    response.delete_cookie(OIDC_COOKIE, path="/signin/oidc")
    return response


@router.get("/signin/oidc")
async def oidc_start(request: Request, next: str | None = None) -> Response:
    """Off to the operator's OpenID Connect provider, with PKCE, ``state`` and ``nonce``."""
    service: Service = request.app.state.service
    sign_on = service.sign_on
    if not sign_on.enabled:
        raise NotFound("Single sign-on is not configured here.")
    try:
        start = await sign_on.start()
    except SignOnRefused as exc:
        return _refused(request, exc.status, f"Sign-in with {sign_on.label} failed: {exc.message}.")
    flow = _Flow(start.state, start.nonce, start.verifier, safe_next(next))
    response = RedirectResponse(start.url, status_code=303)
    response.set_cookie(
        OIDC_COOKIE,
        _flow_cookie(service, flow),
        max_age=OIDC_SECONDS,
        path="/signin/oidc",
        secure=is_secure(request),
        httponly=True,
        samesite="lax",  # the provider sends the browser back with a top-level GET
    )
    return response


@router.get("/signin/oidc/callback")
async def oidc_callback(
    request: Request, code: Param = "", state: Param = "", error: Param = ""
) -> Response:
    """Back from the provider: the ID token's verified e-mail signs in the user who has it."""
    service: Service = request.app.state.service
    sign_on = service.sign_on
    if not sign_on.enabled:
        raise NotFound("Single sign-on is not configured here.")
    flow = _flow_from(service, request.cookies.get(OIDC_COOKIE, ""))
    if flow is None or not state or not same_secret(state, flow.state):
        return _refused(
            request,
            400,
            "This sign-in did not start in this browser, or took too long. Start again.",
        )
    if error or not code:
        reason = error[:100] or "no code"
        return _refused(request, 401, f"{sign_on.label} did not sign you in ({reason}).")
    try:
        identity = await sign_on.finish(code, flow.verifier, flow.nonce)
    except SignOnRefused as exc:
        return _refused(request, exc.status, f"Sign-in with {sign_on.label} failed: {exc.message}.")
    user = await service.people.users.find_user(identity.email)
    if user is None:
        return _refused(
            request,
            403,
            f"No ordermill account has the address {identity.email}. "
            "Ask an administrator of your space for an invitation.",
        )
    if await service.people.has_totp(user.id):
        response = _form_page(
            request, "totp.html", pending=_pending_for(service, user.id), next=flow.next
        )
    else:
        response = await _start_session(
            request, service, user.id, None, flow.next, "Signed in.", method="openid-connect"
        )
    response.delete_cookie(OIDC_COOKIE, path="/signin/oidc")
    return response


@router.post("/signin")
async def signin(
    request: Request, email: Text = "", password: Text = "", csrf: Text = "", next: Text = "/"
) -> Response:
    _check_double_submit(request, csrf)
    service: Service = request.app.state.service
    try:
        user = (
            await service.people.sign_in(email, password, client_address(request))
            if email.strip() and password
            else None
        )
    except SlowDown as exc:
        return _form_page(
            request, "signin.html", status=429, next=safe_next(next), error=exc.message, email=email
        )
    if user is None:
        error = (
            "Enter your e-mail address and password."
            if not (email.strip() and password)
            else "That e-mail address and password do not match. Check them, or reset the password."
        )
        return _form_page(
            request, "signin.html", status=401, next=safe_next(next), error=error, email=email
        )
    if await service.people.has_totp(user.id):
        return _form_page(
            request, "totp.html", pending=_pending_for(service, user.id), next=safe_next(next)
        )
    return await _start_session(request, service, user.id, None, next, "Signed in.")


PENDING_SECONDS = 300


def _pending_mac(service: Service, payload: str) -> str:
    key = service.store.token_secret.encode()
    return hmac.new(key, f"totp-pending\n{payload}".encode(), hashlib.sha256).hexdigest()


def _pending_for(service: Service, user_id: int) -> str:
    """Proof, for five minutes, that this browser gave the user's password."""
    payload = f"{user_id}.{int(time.time()) + PENDING_SECONDS}"
    return f"{payload}.{_pending_mac(service, payload)}"


def _pending_user(service: Service, pending: str) -> int | None:
    payload, _, mac = pending.rpartition(".")
    user_id, _, expires = payload.partition(".")
    if not same_secret(mac, _pending_mac(service, payload)):
        return None
    if not expires.isdigit() or int(expires) < time.time() or not user_id.isdigit():
        return None
    return int(user_id)


@router.post("/signin/totp")
async def signin_totp(
    request: Request, pending: Text = "", code: Text = "", csrf: Text = "", next: Text = "/"
) -> Response:
    """The second step for someone with TOTP on: a code from their app or a recovery code."""
    _check_double_submit(request, csrf)
    service: Service = request.app.state.service
    user_id = _pending_user(service, pending)
    if user_id is None:
        return _form_page(
            request,
            "signin.html",
            status=401,
            next=safe_next(next),
            error="That took too long. Sign in again.",
            email="",
        )
    client = client_address(request)
    try:
        await service.people.slow_down_check(client)
    except SlowDown as exc:
        return _form_page(
            request,
            "totp.html",
            status=429,
            pending=pending,
            next=safe_next(next),
            error=exc.message,
        )
    if not await service.people.second_factor(user_id, code, client):
        return _form_page(
            request,
            "totp.html",
            status=401,
            pending=pending,
            next=safe_next(next),
            error="That code does not match. Use the current code of your app, or a recovery code.",
        )
    return await _start_session(request, service, user_id, None, next, "Signed in.")


@router.get("/signin/link/{token}")
async def link_form(request: Request, token: str) -> Response:
    """The page of a one-time link: it asks for a password; only submitting uses the link up (so
    mail scanners that open links do not spend them)."""
    service: Service = request.app.state.service
    row = await service.people.users.peek_link(token, list(TokenPurpose))
    if row is None:
        raise NotFound("This link was already used or has expired. Ask for a new one.")
    user = await service.people.users.get_user(row.user_id)
    return _form_page(
        request,
        "link.html",
        token=token,
        email=user.email,
        purpose=row.purpose,
        error=None,
    )


@router.post("/signin/link/{token}")
async def use_link(request: Request, token: str, password: Text = "", csrf: Text = "") -> Response:
    _check_double_submit(request, csrf)
    service: Service = request.app.state.service
    try:
        user, space_key = await service.people.use_link(token, password)
    except InvalidInput as exc:
        row = await service.people.users.peek_link(token, list(TokenPurpose))
        if row is None:
            raise
        return _form_page(
            request,
            "link.html",
            status=400,
            token=token,
            email=(await service.people.users.get_user(row.user_id)).email,
            purpose=row.purpose,
            error="; ".join(p.message for p in exc.problems) or exc.message,
        )
    return await _start_session(request, service, user.id, space_key, "/", "Password set.")


@router.get("/signin/forgot")
async def forgot_form(request: Request) -> Response:
    return _form_page(request, "forgot.html", sent=False)


@router.post("/signin/forgot")
async def forgot(request: Request, email: Text = "", csrf: Text = "") -> Response:
    _check_double_submit(request, csrf)
    service: Service = request.app.state.service
    if email.strip():
        await service.people.request_reset(email)
    return _form_page(request, "forgot.html", sent=True)


@router.post("/signout")
async def signout(request: Request, session: SessionDep) -> Response:
    service: Service = request.app.state.service
    await service.people.users.revoke_sessions(session.user.id, session.id)
    response = redirect(request, "/signin", Toast("Signed out.", "info"))
    response.delete_cookie(COOKIE, path="/", secure=is_secure(request), httponly=True)
    return response


@router.post("/signout/everywhere")
async def signout_everywhere(request: Request, session: SessionDep) -> Response:
    service: Service = request.app.state.service
    ended = await service.people.users.revoke_sessions(session.user.id)
    response = redirect(request, "/signin", Toast(f"Signed out of {ended} session(s).", "info"))
    response.delete_cookie(COOKIE, path="/", secure=is_secure(request), httponly=True)
    return response


@router.get("/account")
async def account(request: Request, session: SessionDep) -> Response:
    service: Service = request.app.state.service
    return render(
        request,
        "account.html",
        active="account",
        memberships=await service.people.users.memberships_of(session.user.id),
        sessions=await service.people.users.sessions_of(session.user.id),
        totp=await service.people.has_totp(session.user.id),
    )


@router.post("/account/sessions/{session_id}/revoke")
async def revoke_session(request: Request, session: SessionDep, session_id: int) -> Response:
    service: Service = request.app.state.service
    if await service.people.users.revoke_sessions(session.user.id, session_id) == 0:
        raise NotFound(f"you have no live session {session_id}")
    if session_id == session.id:
        response = redirect(request, "/signin", Toast("Signed out.", "info"))
        response.delete_cookie(COOKIE, path="/", secure=is_secure(request), httponly=True)
        return response
    return redirect(request, "/account", Toast("Session ended.", "info"))


@router.get("/account/totp")
async def totp_form(request: Request, session: SessionDep) -> Response:
    service: Service = request.app.state.service
    secret = service.people.new_totp_secret()
    return render(
        request,
        "totp_setup.html",
        active="account",
        secret=secret,
        uri=service.people.totp_uri(session.user.email, secret),
        error=None,
    )


@router.post("/account/totp")
async def totp_enable(
    request: Request,
    session: SessionDep,
    secret: Annotated[str, Form(max_length=64)] = "",
    code: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    service: Service = request.app.state.service
    try:
        codes = await service.people.enable_totp(session.user.id, secret, code)
    except InvalidInput as exc:
        return render(
            request,
            "totp_setup.html",
            status_code=400,
            active="account",
            secret=secret,
            uri=service.people.totp_uri(session.user.email, secret),
            error=exc.message,
        )
    return render(request, "totp_codes.html", active="account", codes=codes)


@router.post("/account/totp/disable")
async def totp_disable(
    request: Request, session: SessionDep, code: Annotated[str, Form(max_length=20)] = ""
) -> Response:
    service: Service = request.app.state.service
    await service.people.disable_totp(session.user.id, code, client_address(request))
    return redirect(request, "/account", Toast("Two-factor sign-in is off.", "info"))


@router.post("/account/space")
async def switch_space(
    request: Request, session: SessionDep, space: Annotated[str, Form(max_length=128)] = ""
) -> Response:
    service: Service = request.app.state.service
    if await service.people.users.roles_in(session.user.id, space) is None:
        raise NotFound(f"you are not a member of space {space!r}")
    await service.people.users.switch_space(session.id, space)
    return redirect(request, "/", Toast(f"Switched to space {space}."))
