"""People in spaces: invitations, sign-in, password resets, roles, and the audit trail of it.

The API, the UI and the CLI all come here; storage is in `ordermill.storage.users` and
`ordermill.storage.audit`.

Failed sign-ins are slowed, never locked out: each client address must wait longer between
failures (``retry_after``, answered with 429 before any password is checked), and every attempt
on an account that recently failed is held back a little (at most ``ACCOUNT_DELAY_CAP`` seconds)
— so guessing is slow, yet nobody can keep a person out of their own account.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pyotp
import structlog

from ordermill.clock import Clock
from ordermill.config import Settings
from ordermill.errors import Forbidden, NotFound, OrdermillError
from ordermill.handlers.mailer import Mailer
from ordermill.permissions import Perm
from ordermill.signatures import same_secret
from ordermill.storage.audit import AuditStore
from ordermill.storage.spaces import ApiKey, SpaceStore, hash_secret
from ordermill.storage.users import (
    Membership,
    TokenPurpose,
    User,
    UserStore,
    check_password,
    invalid,
)

log = structlog.get_logger("ordermill.people")

ADDRESS_FREE_FAILURES = 5  # failures from one client address before it must wait
ADDRESS_DELAY_CAP = 300.0  # seconds
ACCOUNT_FREE_FAILURES = 3
ACCOUNT_DELAY_CAP = 2.0  # seconds: slows guessing, never keeps the owner out
FORGET_FAILURES = timedelta(hours=1)  # a count with no failure for this long starts over
MAIL_SECONDS = 20.0
TOTP_ISSUER = "ordermill"
TOTP_SECRET_LENGTH = 32  # base32 characters: 160 bits
RECOVERY_CODES = 10


class SlowDown(OrdermillError):
    """Too many failed sign-ins from this address; wait before trying again."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Too many failed sign-ins. Try again in {int(seconds) + 1} seconds.")
        self.seconds = seconds


@dataclass(frozen=True)
class Actor:
    """Who did something, and from where (for the audit trail)."""

    name: str
    client: str | None
    permissions: frozenset[Perm]


@dataclass(frozen=True)
class Invited:
    user: User
    link: str | None  # the one-time link, when one was made (a new user)
    mailed: bool


def wait_after(failures: int, free: int, cap: float) -> float:
    """Seconds to wait after ``failures`` failures: none for the first ``free``, then doubling."""
    if failures < free:
        return 0.0
    return float(min(cap, 2 ** (failures - free)))


class People:
    def __init__(
        self,
        settings: Settings,
        users: UserStore,
        audit: AuditStore,
        spaces: SpaceStore,
        mailer: Mailer,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.users = users
        self.audit = audit
        self.spaces = spaces
        self.mailer = mailer
        self.clock = clock

    # Links.

    def link_url(self, token: str) -> str:
        return f"{self.settings.base_url}/signin/link/{token}"

    @property
    def can_mail(self) -> bool:
        return bool(self.settings.smtp_host)

    async def _mail(self, to: str, subject: str, text: str) -> bool:
        if not self.can_mail:
            return False
        message = EmailMessage()
        message["From"] = self.settings.smtp_from or f"ordermill@{_host(self.settings.base_url)}"
        message["To"] = to
        message["Subject"] = subject
        message.set_content(text)
        try:
            await self.mailer.send(message, [to], MAIL_SECONDS)
        except OrdermillError as exc:
            log.warning("mail not sent", to=to, subject=subject, error=exc.message)
            return False
        return True

    # Inviting and creating people.

    async def invite(
        self,
        space_key: str,
        email: str,
        roles: Iterable[str],
        actor: Actor,
        *,
        display_name: str | None = None,
        purpose: TokenPurpose = TokenPurpose.INVITE,
    ) -> Invited:
        """Make ``email`` a member of the space with ``roles``. A person without a password gets
        a one-time link (mailed when SMTP is configured) to set one."""
        await self.spaces.get_space(space_key)
        names = await self.users.check_roles(space_key, roles)
        await self._may_grant(space_key, names, actor)
        user = await self.users.get_or_create(email, display_name)
        before = await self.users.roles_in(user.id, space_key) or ()
        await self._may_grant(space_key, before, actor)  # re-inviting replaces the roles
        await self.users.set_membership(user.id, space_key, names)
        link: str | None = None
        mailed = False
        if not user.has_password:
            link = self.link_url(await self.users.issue_link(user.id, purpose, space_key))
            mailed = await self._mail(
                user.email,
                f"You are invited to ordermill space {space_key}",
                f"{actor.name} invited you to the ordermill space {space_key} "
                f"as {', '.join(names)}.\n\nSet your password here (the link works once, "
                f"within one hour):\n\n{link}\n",
            )
        await self.record(
            space_key,
            actor,
            "user.invited",
            user.email,
            {"roles": list(names)},
        )
        return Invited(user, link, mailed)

    async def set_roles(
        self, space_key: str, email: str, roles: Iterable[str], actor: Actor
    ) -> None:
        user = await self._member(space_key, email)
        names = await self.users.check_roles(space_key, roles)
        before = await self.users.roles_in(user.id, space_key) or ()
        await self._may_grant(space_key, (*names, *before), actor)
        await self.users.set_membership(user.id, space_key, names)
        await self.record(
            space_key,
            actor,
            "user.roles",
            user.email,
            {"before": list(before), "after": list(names)},
        )

    async def remove(self, space_key: str, email: str, actor: Actor) -> None:
        user = await self._member(space_key, email)
        before = await self.users.roles_in(user.id, space_key) or ()
        await self._may_grant(space_key, before, actor)
        await self.users.remove_membership(user.id, space_key)
        await self.record(space_key, actor, "user.removed", user.email, {"roles": list(before)})

    async def members(self, space_key: str) -> list[Membership]:
        await self.spaces.get_space(space_key)
        return await self.users.members(space_key)

    async def _member(self, space_key: str, email: str) -> User:
        user = await self.users.find_user(email)
        if user is None or await self.users.roles_in(user.id, space_key) is None:
            raise NotFound(f"{email!r} is not a member of space {space_key!r}")
        return user

    async def _may_grant(self, space_key: str, roles: Iterable[str], actor: Actor) -> None:
        """Nobody grants or takes away more than they hold themselves."""
        wanted = await self.users.permissions(space_key, roles)
        missing = sorted(p.value for p in wanted - actor.permissions)
        if missing:
            raise Forbidden(
                "You cannot grant or take away permissions you do not hold: " + ", ".join(missing)
            )

    # Custom roles.

    async def put_role(
        self, space_key: str, name: str, permissions: Iterable[str], actor: Actor
    ) -> None:
        await self.spaces.get_space(space_key)
        listed = list(permissions)
        await self._may_grant_permissions(listed, actor)
        await self.users.put_role(space_key, name, listed)
        await self.record(space_key, actor, "role.saved", name, {"permissions": sorted(listed)})

    async def delete_role(self, space_key: str, name: str, actor: Actor) -> None:
        before = (await self.users.custom_roles(space_key)).get(name, frozenset())
        await self._may_grant_permissions([p.value for p in before], actor)
        await self.users.delete_role(space_key, name)
        await self.record(space_key, actor, "role.deleted", name, None)

    async def _may_grant_permissions(self, names: Iterable[str], actor: Actor) -> None:
        missing = sorted(set(names) - {p.value for p in actor.permissions})
        if missing:
            raise Forbidden(
                "You cannot grant or take away permissions you do not hold: " + ", ".join(missing)
            )

    # API keys.

    async def create_key(
        self, space_key: str, name: str, roles: Iterable[str], actor: Actor
    ) -> tuple[str, ApiKey]:
        names = await self.users.check_roles(space_key, roles)
        await self._may_grant(space_key, names, actor)
        secret, key = await self.spaces.create_api_key(space_key, name, names)
        await self.record(
            space_key, actor, "key.created", f"{key.prefix}… ({key.name})", {"roles": list(names)}
        )
        return secret, key

    async def revoke_key(self, space_key: str, key_id: int, actor: Actor) -> ApiKey:
        key = await self.spaces.revoke_api_key(space_key, key_id)
        await self.record(space_key, actor, "key.revoked", f"{key.prefix}… ({key.name})", None)
        return key

    # Signing in.

    async def sign_in(self, email: str, password: str, client: str | None) -> User | None:
        """The user whose password this is, else None. Raises SlowDown for a client address
        that failed too often recently."""
        address_subject = f"client:{client or '-'}"
        account_subject = f"account:{email.strip().lower()[:320]}"
        now = self.clock.now()
        await self.slow_down_check(client)
        account_failures, _ = await self._failures(account_subject, now)
        delay = wait_after(account_failures, ACCOUNT_FREE_FAILURES, ACCOUNT_DELAY_CAP)
        if delay > 0:
            await asyncio.sleep(delay)
        user = await self.users.verify_password(email, password)
        if user is None:
            await self.users.record_failure([address_subject, account_subject], FORGET_FAILURES)
            return None
        await self.users.clear_failures([account_subject])
        return user

    async def _failures(self, subject: str, now: datetime) -> tuple[int, datetime | None]:
        failures, last = await self.users.failures(subject)
        if last is None or now - last > FORGET_FAILURES:
            return 0, None
        return failures, last

    # The TOTP second factor.

    @staticmethod
    def new_totp_secret() -> str:
        return pyotp.random_base32()

    def totp_uri(self, email: str, secret: str) -> str:
        """The otpauth:// URI an authenticator app takes (as a QR code or typed in)."""
        return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)

    async def has_totp(self, user_id: int) -> bool:
        secret, _, _ = await self.users.totp_state(user_id)
        return secret is not None

    async def enable_totp(self, user_id: int, secret: str, code: str) -> list[str]:
        """Turn the second factor on once ``code`` proves the app has ``secret``; returns the
        recovery codes (shown once; only their hashes are kept)."""
        if len(secret) != TOTP_SECRET_LENGTH or not pyotp.TOTP(secret).verify(
            code.strip(), valid_window=1
        ):
            raise invalid("/code", "that code does not match; check the app's clock and retry")
        codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
        await self.users.set_totp(user_id, secret, [hash_secret(c) for c in codes])
        return codes

    async def disable_totp(self, user_id: int, code: str, client: str | None) -> None:
        if not await self.second_factor(user_id, code, client):
            raise invalid("/code", "that code does not match")
        await self.users.set_totp(user_id, None, [])

    async def second_factor(self, user_id: int, code: str, client: str | None) -> bool:
        """Whether ``code`` is the user's current TOTP code (each works once) or one of their
        unused recovery codes (used up by this). Failures count as failed sign-ins."""
        secret, _, _ = await self.users.totp_state(user_id)
        if secret is None:
            return True
        code = code.strip().replace(" ", "").lower()
        totp = pyotp.TOTP(secret)
        now = self.clock.now()
        step = int(now.timestamp()) // totp.interval
        ok = False
        for candidate in (step, step - 1, step + 1):
            if len(code) == totp.digits and same_secret(code, totp.generate_otp(candidate)):
                ok = await self.users.use_totp_step(user_id, candidate)
                break
        else:
            if len(code) == 10:
                ok = await self.users.use_recovery_code(user_id, hash_secret(code))
        if not ok:
            user = await self.users.get_user(user_id)
            await self.users.record_failure(
                [f"client:{client or '-'}", f"account:{user.email}"], FORGET_FAILURES
            )
        return ok

    async def slow_down_check(self, client: str | None) -> None:
        """Raise SlowDown when the client address failed too often recently."""
        now = self.clock.now()
        failures, last = await self._failures(f"client:{client or '-'}", now)
        wait = _remaining(wait_after(failures, ADDRESS_FREE_FAILURES, ADDRESS_DELAY_CAP), last, now)
        if wait > 0:
            raise SlowDown(wait)

    async def use_link(self, token: str, password: str) -> tuple[User, str | None]:
        """Set the password with a one-time link; the user and the space the link was for."""
        check_password(password)  # before the link is used up
        row = await self.users.use_link(token, list(TokenPurpose))
        if row is None:
            raise invalid("/token", "this link was already used or has expired; ask for a new one")
        await self.users.set_password(row.user_id, password)
        await self.users.revoke_sessions(row.user_id)
        return await self.users.get_user(row.user_id), row.space_key

    async def request_reset(self, email: str) -> None:
        """Mail a reset link when the address is a user's; says nothing either way."""
        user = await self.users.find_user(email)
        if user is None:
            return
        token = await self.users.issue_link(user.id, TokenPurpose.RESET)
        await self._mail(
            user.email,
            "Reset your ordermill password",
            "Someone (hopefully you) asked to reset your ordermill password. Set a new one here "
            f"(the link works once, within one hour):\n\n{self.link_url(token)}\n\n"
            "If it was not you, ignore this message: your password stays as it is.",
        )

    async def reset_link(self, email: str) -> str:
        """A password-reset link for the CLI to print."""
        user = await self.users.find_user(email)
        if user is None:
            raise NotFound(f"no user has the e-mail address {email!r}")
        return self.link_url(await self.users.issue_link(user.id, TokenPurpose.RESET))

    # The audit trail.

    async def record(
        self,
        space_key: str | None,
        actor: Actor,
        action: str,
        target: str | None,
        changes: dict[str, Any] | None,
    ) -> None:
        await self.audit.record(
            space_key,
            actor=actor.name,
            client=actor.client,
            action=action,
            target=target,
            changes=changes,
        )


def _remaining(wait: float, last: datetime | None, now: datetime) -> float:
    if wait <= 0 or last is None:
        return 0.0
    return max(0.0, wait - (now - last).total_seconds())


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"
