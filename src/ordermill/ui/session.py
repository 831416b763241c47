"""UI sessions: a person signed in with e-mail and password, acting in one of their spaces.

The cookie holds a random session token; the database keeps only its hash, with the user, the
space the session acts in, and when it ends. Every request looks the session and the user's
roles up again, so signing out everywhere, removing someone from a space or changing their roles
holds at once. The CSRF token is an HMAC of the session token under the instance secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response

from ordermill.errors import OrdermillError
from ordermill.people import Actor
from ordermill.permissions import Perm
from ordermill.service import Service
from ordermill.signatures import same_secret
from ordermill.storage.users import User

COOKIE = "ordermill_session"
SIGNIN_COOKIE = "ordermill_signin"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SignInRequired(OrdermillError):
    """Sign in with your e-mail address and password to continue."""


class CsrfRejected(OrdermillError):
    """This form has expired or came from another site. Reload the page and try again."""


@dataclass(frozen=True)
class Session:
    id: int
    user: User
    space_key: str
    roles: tuple[str, ...]
    permissions: frozenset[Perm]
    csrf: str

    @property
    def actor(self) -> str:
        """Who the timeline and the audit trail record for actions taken in the UI."""
        return self.user.email

    def can(self, permission: Perm | str) -> bool:
        return permission in self.permissions

    def audit_actor(self, request: Request) -> Actor:
        return Actor(self.actor, client_address(request), self.permissions)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class CsrfSigner:
    """Derives each session's CSRF token from the session token."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"ordermill-ui-session:" + secret.encode()).digest()

    def csrf_for(self, token: str) -> str:
        return _b64(hmac.new(self._key, f"csrf\n{token}".encode(), hashlib.sha256).digest())


def is_secure(request: Request) -> bool:
    return request.url.scheme == "https"


def client_address(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


def set_session_cookie(request: Request, response: Response, token: str, seconds: float) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(seconds),
        path="/",
        secure=is_secure(request),
        httponly=True,
        samesite="lax",
    )


async def load_session(service: Service, token: str | None) -> Session | None:
    """The live session a cookie stands for; None when absent, unknown, expired or revoked, or
    when its user is no longer a member of the session's space."""
    if not token or len(token) > 200:
        return None
    found = await service.people.users.session(token)
    if found is None:
        return None
    roles = await service.people.users.roles_in(found.user.id, found.space_key)
    if roles is None:
        return None
    permissions = await service.people.users.permissions(found.space_key, roles)
    csrf = CsrfSigner(service.store.token_secret).csrf_for(token)
    return Session(found.id, found.user, found.space_key, roles, permissions, csrf)


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
    existing: Session | None = getattr(request.state, "ui_session", None)
    if existing is not None:
        return existing
    service: Service = request.app.state.service
    session = await load_session(service, request.cookies.get(COOKIE))
    if session is None:
        raise SignInRequired()
    if request.method not in _SAFE_METHODS:
        await check_csrf(request, session.csrf)
    request.state.ui_session = session
    return session


SessionDep = Annotated[Session, Depends(current_session)]
