"""UI sessions: a signed cookie naming a space's API key, and the CSRF token bound to it.

The cookie holds ``space, key id, expiry`` signed with HMAC over the instance secret — never the
key itself. Every request looks the key up again, so revoking a key ends its sessions at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response

from ordermill.errors import NotFound, OrdermillError
from ordermill.service import Service
from ordermill.signatures import same_secret
from ordermill.storage.spaces import ApiKey

COOKIE = "ordermill_session"
SIGNIN_COOKIE = "ordermill_signin"
SESSION_SECONDS = 12 * 3600
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SignInRequired(OrdermillError):
    """Sign in with an API key of your space to continue."""


class CsrfRejected(OrdermillError):
    """This form has expired or came from another site. Reload the page and try again."""


@dataclass(frozen=True)
class Session:
    space_key: str
    key: ApiKey
    csrf: str

    @property
    def actor(self) -> str:
        """Who the timeline records for actions taken in the UI."""
        return f"ui:api-key:{self.key.prefix}… ({self.key.name})"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Signs and checks session cookies and derives each session's CSRF token."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"ordermill-ui-session:" + secret.encode()).digest()

    def _mac(self, purpose: str, value: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}\n{value}".encode(), hashlib.sha256).digest())

    def cookie_for(self, key: ApiKey, now: float) -> str:
        payload = _b64(f"{key.space_key}\n{key.id}\n{int(now) + SESSION_SECONDS}".encode())
        return f"{payload}.{self._mac('session', payload)}"

    def read(self, cookie: str, now: float) -> tuple[str, int] | None:
        """The (space key, key id) of a genuine, unexpired cookie, else None."""
        payload, _, signature = cookie.partition(".")
        if not same_secret(signature, self._mac("session", payload)):
            return None
        try:
            space_key, key_id, expires = _unb64(payload).decode().split("\n")
            if int(expires) < now:
                return None
            return space_key, int(key_id)
        except ValueError:
            return None

    def csrf_for(self, cookie: str) -> str:
        return self._mac("csrf", cookie)


def signer_of(service: Service) -> SessionSigner:
    return SessionSigner(service.store.token_secret)


def is_secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=SESSION_SECONDS,
        path="/",
        secure=is_secure(request),
        httponly=True,
        samesite="lax",
    )


async def load_session(service: Service, cookie: str | None) -> Session | None:
    """The live session a cookie stands for; None when absent, forged, expired or revoked."""
    if not cookie:
        return None
    signer = signer_of(service)
    found = signer.read(cookie, time.time())
    if found is None:
        return None
    space_key, key_id = found
    try:
        keys = await service.store.spaces.list_api_keys(space_key)
    except NotFound:
        return None
    key = next((k for k in keys if k.id == key_id and k.revoked_at is None), None)
    if key is None:
        return None
    return Session(space_key, key, signer.csrf_for(cookie))


async def check_csrf(request: Request, expected: str) -> None:
    """Unsafe requests carry the token in a header (htmx) or a form field (plain forms)."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not same_secret(sent, expected):
        raise CsrfRejected()


async def current_session(request: Request) -> Session:
    service: Service = request.app.state.service
    session = await load_session(service, request.cookies.get(COOKIE))
    if session is None:
        raise SignInRequired()
    if request.method not in _SAFE_METHODS:
        await check_csrf(request, session.csrf)
    request.state.ui_session = session
    return session


SessionDep = Annotated[Session, Depends(current_session)]
