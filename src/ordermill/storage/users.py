"""People: users, their memberships and roles in spaces, custom roles, sign-in sessions,
single-use links (invitations, password resets) and the counts of failed sign-ins.

Passwords are hashed with Argon2id (``PasswordPolicy``); sessions and links are random tokens
of which only a SHA-256 hash is stored.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ordermill.clock import Clock
from ordermill.errors import Conflict, InvalidInput, NotFound, Problem
from ordermill.permissions import BUILTIN_ROLES, Perm, parse_permissions, permissions_of
from ordermill.storage import tables as t
from ordermill.storage.database import Database
from ordermill.storage.spaces import hash_secret

LINK_SECONDS = 3600
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024


class TokenPurpose(StrEnum):
    INVITE = "invite"  # set a password and join a space
    RESET = "reset"  # set a new password
    SIGNIN = "signin"  # sign in once (the first owner, the demo user)


@dataclass(frozen=True)
class PasswordPolicy:
    """Argon2id parameters: time cost (passes), memory in KiB, parallelism (lanes)."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4

    def hasher(self) -> PasswordHasher:
        return PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_kib,
            parallelism=self.parallelism,
            type=Type.ID,
        )


@dataclass(frozen=True)
class User:
    id: int
    email: str
    display_name: str
    has_password: bool
    created_at: datetime


@dataclass(frozen=True)
class Membership:
    user: User
    space_key: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class UserSession:
    id: int
    user: User
    space_key: str
    client: str | None
    user_agent: str | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


def invalid(pointer: str, message: str) -> InvalidInput:
    """A refusal that says what is wrong, for the API's problem and the CLI's error line."""
    return InvalidInput([Problem(pointer, message)], message)


def normal_email(email: str) -> str:
    """E-mail addresses compare case-insensitively; one address is one user."""
    value = email.strip().lower()
    local, at, domain = value.partition("@")
    if (
        not at
        or not local
        or "." not in domain
        or len(value) > 320
        or any(c.isspace() for c in value)
    ):
        raise invalid("/email", f"{email!r} is not an e-mail address")
    return value


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise invalid("/password", f"use at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise invalid("/password", f"use at most {MAX_PASSWORD_LENGTH} characters")


def _user_session(row: Any, user: User) -> UserSession:
    return UserSession(
        row.id,
        user,
        row.space_key,
        row.client,
        row.user_agent,
        row.created_at,
        row.last_seen_at,
        row.expires_at,
    )


def _user(row: Any) -> User:
    return User(row.id, row.email, row.display_name, row.password_hash is not None, row.created_at)


class UserStore:
    """Users, memberships, custom roles, sessions and single-use links."""

    def __init__(self, db: Database, clock: Clock, policy: PasswordPolicy | None = None) -> None:
        self.db = db
        self.clock = clock
        self.policy = policy or PasswordPolicy()
        self._hasher = self.policy.hasher()
        # Compared against when the account does not exist, so both cases take as long.
        self._dummy: str | None = None

    # Users and passwords.

    async def create_user(self, email: str, display_name: str | None = None) -> User:
        address = normal_email(email)
        try:
            async with self.db.transaction() as conn:
                row = (
                    await conn.execute(
                        insert(t.users)
                        .values(
                            email=address,
                            display_name=(display_name or address.split("@")[0])[:200],
                            created_at=self.clock.now(),
                        )
                        .returning(t.users)
                    )
                ).one()
        except IntegrityError as exc:
            raise Conflict(f"a user with e-mail {address!r} already exists") from exc
        return _user(row)

    async def get_or_create(self, email: str, display_name: str | None = None) -> User:
        found = await self.find_user(email)
        return found if found is not None else await self.create_user(email, display_name)

    async def find_user(self, email: str) -> User | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(select(t.users).where(t.users.c.email == normal_email(email)))
            ).first()
        return None if row is None else _user(row)

    async def get_user(self, user_id: int) -> User:
        async with self.db.read() as conn:
            row = (await conn.execute(select(t.users).where(t.users.c.id == user_id))).first()
        if row is None:
            raise NotFound(f"user {user_id} does not exist")
        return _user(row)

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def set_password(self, user_id: int, password: str) -> None:
        check_password(password)
        digest = await self._hash(password)
        async with self.db.transaction() as conn:
            await conn.execute(
                update(t.users).where(t.users.c.id == user_id).values(password_hash=digest)
            )

    async def verify_password(self, email: str, password: str) -> User | None:
        """The user when ``password`` is theirs; rehashes when the parameters changed."""
        try:
            address = normal_email(email)
        except InvalidInput:
            return None
        async with self.db.read() as conn:
            row = (await conn.execute(select(t.users).where(t.users.c.email == address))).first()
        if row is None or row.password_hash is None or len(password) > MAX_PASSWORD_LENGTH:
            if self._dummy is None:
                self._dummy = await self._hash(secrets.token_urlsafe(16))
            await self._verify(self._dummy, password[:MAX_PASSWORD_LENGTH])
            return None
        stored: str = row.password_hash
        if not await self._verify(stored, password):
            return None
        if self._hasher.check_needs_rehash(stored):
            digest = await self._hash(password)
            async with self.db.transaction() as conn:
                await conn.execute(
                    update(t.users)
                    .where(t.users.c.id == row.id, t.users.c.password_hash == stored)
                    .values(password_hash=digest)
                )
        return _user(row)

    async def _verify(self, stored: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self._hasher.verify, stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def password_hash_of(self, user_id: int) -> str | None:
        async with self.db.read() as conn:
            value = (
                await conn.execute(select(t.users.c.password_hash).where(t.users.c.id == user_id))
            ).scalar()
        return None if value is None else str(value)

    # The TOTP second factor.

    async def totp_state(self, user_id: int) -> tuple[str | None, list[str], int | None]:
        """The user's TOTP secret (None when off), recovery-code hashes and last used step."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(
                        t.users.c.totp_secret, t.users.c.recovery_codes, t.users.c.totp_last_step
                    ).where(t.users.c.id == user_id)
                )
            ).first()
        if row is None:
            raise NotFound(f"user {user_id} does not exist")
        return row.totp_secret, list(row.recovery_codes or []), row.totp_last_step

    async def set_totp(self, user_id: int, secret: str | None, recovery: list[str]) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                update(t.users)
                .where(t.users.c.id == user_id)
                .values(totp_secret=secret, recovery_codes=recovery or None, totp_last_step=None)
            )

    async def use_totp_step(self, user_id: int, step: int) -> bool:
        """Record ``step`` as used; False when it (or a later one) was used already."""
        async with self.db.transaction() as conn:
            changed = await conn.execute(
                update(t.users)
                .where(
                    t.users.c.id == user_id,
                    (t.users.c.totp_last_step.is_(None)) | (t.users.c.totp_last_step < step),
                )
                .values(totp_last_step=step)
            )
        return bool(changed.rowcount)

    async def use_recovery_code(self, user_id: int, code_hash: str) -> bool:
        """Strike one recovery code off; False when it is not (or no longer) the user's."""
        async with self.db.transaction() as conn:
            current = (
                await conn.execute(
                    select(t.users.c.recovery_codes)
                    .where(t.users.c.id == user_id)
                    .with_for_update()
                )
            ).scalar()
            codes = list(current or [])
            if code_hash not in codes:
                return False
            codes.remove(code_hash)
            await conn.execute(
                update(t.users).where(t.users.c.id == user_id).values(recovery_codes=codes)
            )
        return True

    # Memberships and roles.

    async def custom_roles(self, space_key: str) -> dict[str, frozenset[Perm]]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(t.roles.c.name, t.roles.c.permissions)
                    .where(t.roles.c.space_key == space_key)
                    .order_by(t.roles.c.name)
                )
            ).all()
        return {row.name: permissions_of([row.name], {row.name: row.permissions}) for row in rows}

    async def permissions(self, space_key: str, roles: Iterable[str]) -> frozenset[Perm]:
        """What ``roles`` grant in the space (built-in and the space's custom roles)."""
        names = list(roles)
        custom = (
            await self.custom_roles(space_key)
            if any(name not in BUILTIN_ROLES for name in names)
            else {}
        )
        return permissions_of(names, {k: [p.value for p in v] for k, v in custom.items()})

    async def check_roles(self, space_key: str, roles: Iterable[str]) -> tuple[str, ...]:
        """The role names, each built in or a custom role of the space; else InvalidInput."""
        names = tuple(dict.fromkeys(roles))
        if not names:
            raise invalid("/roles", "name at least one role")
        custom = await self.custom_roles(space_key)
        for name in names:
            if name not in BUILTIN_ROLES and name not in custom:
                raise invalid(
                    "/roles", f"{name!r} is neither a built-in role nor one of the space's"
                )
        return names

    async def put_role(self, space_key: str, name: str, permissions: Iterable[str]) -> None:
        if name in BUILTIN_ROLES:
            raise Conflict(f"{name!r} is a built-in role and cannot be changed")
        if not name or len(name) > 64 or not all(c.isalnum() or c in "-_" for c in name):
            raise invalid("/name", "use letters, digits, '-' and '_' (1-64)")
        try:
            granted = sorted(p.value for p in parse_permissions(permissions))
        except ValueError as exc:
            raise invalid("/permissions", str(exc)) from exc
        async with self.db.transaction() as conn:
            changed = await conn.execute(
                update(t.roles)
                .where(t.roles.c.space_key == space_key, t.roles.c.name == name)
                .values(permissions=granted)
            )
            if changed.rowcount == 0:
                await conn.execute(
                    insert(t.roles).values(
                        space_key=space_key,
                        name=name,
                        permissions=granted,
                        created_at=self.clock.now(),
                    )
                )

    async def delete_role(self, space_key: str, name: str) -> None:
        async with self.db.transaction() as conn:
            gone = await conn.execute(
                delete(t.roles).where(t.roles.c.space_key == space_key, t.roles.c.name == name)
            )
        if gone.rowcount == 0:
            raise NotFound(f"space {space_key!r} has no custom role {name!r}")

    async def set_membership(self, user_id: int, space_key: str, roles: Iterable[str]) -> None:
        names = await self.check_roles(space_key, roles)
        async with self.db.transaction() as conn:
            changed = await conn.execute(
                update(t.memberships)
                .where(t.memberships.c.user_id == user_id, t.memberships.c.space_key == space_key)
                .values(roles=list(names))
            )
            if changed.rowcount == 0:
                await conn.execute(
                    insert(t.memberships).values(
                        user_id=user_id,
                        space_key=space_key,
                        roles=list(names),
                        created_at=self.clock.now(),
                    )
                )

    async def remove_membership(self, user_id: int, space_key: str) -> None:
        async with self.db.transaction() as conn:
            gone = await conn.execute(
                delete(t.memberships).where(
                    t.memberships.c.user_id == user_id, t.memberships.c.space_key == space_key
                )
            )
            await conn.execute(
                update(t.user_sessions)
                .where(
                    t.user_sessions.c.user_id == user_id,
                    t.user_sessions.c.space_key == space_key,
                    t.user_sessions.c.revoked_at.is_(None),
                )
                .values(revoked_at=self.clock.now())
            )
        if gone.rowcount == 0:
            raise NotFound(f"user {user_id} is not a member of space {space_key!r}")

    async def memberships_of(self, user_id: int) -> list[Membership]:
        user = await self.get_user(user_id)
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(t.memberships)
                    .where(t.memberships.c.user_id == user_id)
                    .order_by(t.memberships.c.space_key)
                )
            ).all()
        return [Membership(user, row.space_key, tuple(row.roles)) for row in rows]

    async def members(self, space_key: str) -> list[Membership]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(t.users, t.memberships.c.roles)
                    .join(t.memberships, t.memberships.c.user_id == t.users.c.id)
                    .where(t.memberships.c.space_key == space_key)
                    .order_by(t.users.c.email)
                )
            ).all()
        return [Membership(_user(row), space_key, tuple(row.roles)) for row in rows]

    async def roles_in(self, user_id: int, space_key: str) -> tuple[str, ...] | None:
        async with self.db.read() as conn:
            value = (
                await conn.execute(
                    select(t.memberships.c.roles).where(
                        t.memberships.c.user_id == user_id,
                        t.memberships.c.space_key == space_key,
                    )
                )
            ).scalar()
        return None if value is None else tuple(value)

    # Single-use links.

    async def issue_link(
        self, user_id: int, purpose: TokenPurpose, space_key: str | None = None
    ) -> str:
        """A token valid for one use within LINK_SECONDS; only its hash is stored."""
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await conn.execute(
                insert(t.user_tokens).values(
                    token_hash=hash_secret(token),
                    user_id=user_id,
                    purpose=purpose.value,
                    space_key=space_key,
                    created_at=now,
                    expires_at=now + timedelta(seconds=LINK_SECONDS),
                )
            )
        return token

    async def peek_link(self, token: str, purposes: Iterable[TokenPurpose]) -> Any | None:
        """The unused, unexpired link row for ``token`` (not using it up), or None."""
        async with self.db.read() as conn:
            return (
                await conn.execute(
                    select(t.user_tokens).where(
                        t.user_tokens.c.token_hash == hash_secret(token),
                        t.user_tokens.c.purpose.in_([p.value for p in purposes]),
                        t.user_tokens.c.used_at.is_(None),
                        t.user_tokens.c.expires_at > self.clock.now(),
                    )
                )
            ).first()

    async def use_link(self, token: str, purposes: Iterable[TokenPurpose]) -> Any | None:
        """Use the link up: the row when this call was its one use, else None."""
        now = self.clock.now()
        async with self.db.transaction() as conn:
            return (
                await conn.execute(
                    update(t.user_tokens)
                    .where(
                        t.user_tokens.c.token_hash == hash_secret(token),
                        t.user_tokens.c.purpose.in_([p.value for p in purposes]),
                        t.user_tokens.c.used_at.is_(None),
                        t.user_tokens.c.expires_at > now,
                    )
                    .values(used_at=now)
                    .returning(t.user_tokens)
                )
            ).first()

    # Sessions.

    async def open_session(
        self,
        user_id: int,
        space_key: str,
        *,
        seconds: float,
        client: str | None,
        user_agent: str | None,
    ) -> str:
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await conn.execute(
                insert(t.user_sessions).values(
                    token_hash=hash_secret(token),
                    user_id=user_id,
                    space_key=space_key,
                    client=(client or "")[:100] or None,
                    user_agent=(user_agent or "")[:300] or None,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + timedelta(seconds=seconds),
                )
            )
        return token

    async def session(self, token: str) -> UserSession | None:
        """The live session of ``token``: unexpired, unrevoked, and its user still a member."""
        now = self.clock.now()
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(
                        t.user_sessions,
                        t.users.c.email,
                        t.users.c.display_name,
                        t.users.c.password_hash,
                        t.users.c.created_at.label("user_created_at"),
                    )
                    .join(t.users, t.users.c.id == t.user_sessions.c.user_id)
                    .where(
                        t.user_sessions.c.token_hash == hash_secret(token),
                        t.user_sessions.c.revoked_at.is_(None),
                        t.user_sessions.c.expires_at > now,
                    )
                )
            ).first()
        if row is None:
            return None
        user = User(
            row.user_id,
            row.email,
            row.display_name,
            row.password_hash is not None,
            row.user_created_at,
        )
        if (now - row.last_seen_at).total_seconds() > 60:
            async with self.db.transaction() as conn:
                await conn.execute(
                    update(t.user_sessions)
                    .where(t.user_sessions.c.id == row.id)
                    .values(last_seen_at=now)
                )
        return _user_session(row, user)

    async def sessions_of(self, user_id: int) -> list[UserSession]:
        user = await self.get_user(user_id)
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(t.user_sessions)
                    .where(
                        t.user_sessions.c.user_id == user_id,
                        t.user_sessions.c.revoked_at.is_(None),
                        t.user_sessions.c.expires_at > self.clock.now(),
                    )
                    .order_by(t.user_sessions.c.id.desc())
                )
            ).all()
        return [_user_session(row, user) for row in rows]

    async def switch_space(self, session_id: int, space_key: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                update(t.user_sessions)
                .where(t.user_sessions.c.id == session_id)
                .values(space_key=space_key)
            )

    async def revoke_sessions(self, user_id: int, session_id: int | None = None) -> int:
        """End one of the user's sessions, or all of them; returns how many ended."""
        conditions = [t.user_sessions.c.user_id == user_id, t.user_sessions.c.revoked_at.is_(None)]
        if session_id is not None:
            conditions.append(t.user_sessions.c.id == session_id)
        async with self.db.transaction() as conn:
            result = await conn.execute(
                update(t.user_sessions).where(*conditions).values(revoked_at=self.clock.now())
            )
        return int(result.rowcount)

    # Failed sign-ins.

    async def failures(self, subject: str) -> tuple[int, datetime | None]:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(t.signin_failures).where(t.signin_failures.c.subject == subject)
                )
            ).first()
        return (0, None) if row is None else (row.failures, row.last_at)

    async def record_failure(self, subjects: Iterable[str], forget_after: timedelta) -> None:
        """Count a failure; a count whose last failure is older than ``forget_after`` restarts."""
        now = self.clock.now()
        fresh = t.signin_failures.c.last_at >= now - forget_after
        subjects = list(subjects)
        for attempt in range(2):  # two first failures at once: one insert loses, then updates
            try:
                async with self.db.transaction() as conn:
                    for subject in subjects:
                        changed = await conn.execute(
                            update(t.signin_failures)
                            .where(t.signin_failures.c.subject == subject)
                            .values(
                                failures=case((fresh, t.signin_failures.c.failures + 1), else_=1),
                                last_at=now,
                            )
                        )
                        if changed.rowcount == 0:
                            await conn.execute(
                                insert(t.signin_failures).values(
                                    subject=subject, failures=1, last_at=now
                                )
                            )
                return
            except IntegrityError:
                if attempt:
                    raise

    async def clear_failures(self, subjects: Iterable[str]) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                delete(t.signin_failures).where(t.signin_failures.c.subject.in_(list(subjects)))
            )
