"""Spaces, their API keys (stored as hashes only) and the instance's own secret."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ordermill.clock import Clock
from ordermill.errors import Conflict, NotFound
from ordermill.flows.work import DeliverySettings
from ordermill.storage import tables as t
from ordermill.storage.database import Database

API_KEY_PREFIX = "om_"
# Space settings change rarely; workers re-read them this often (seconds).
_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Space:
    key: str
    name: str
    created_at: datetime
    # Connector allowances of this space, on top of the operator's (docs/connectors.md).
    allow_networks: tuple[str, ...] = ()
    allow_http_hosts: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiKey:
    id: int
    space_key: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    roles: tuple[str, ...] = ("owner",)


def new_signing_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def hash_secret(secret: str) -> str:
    """SHA-256 hex of a random, high-entropy secret (API keys, feedback tokens)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _space(row: Any) -> Space:
    settings = dict(row.settings or {})
    return Space(
        key=row.key,
        name=row.name,
        created_at=row.created_at,
        allow_networks=tuple(settings.get("connectorAllowNetworks", ())),
        allow_http_hosts=tuple(settings.get("connectorAllowHttp", ())),
        settings=settings,
    )


def _api_key(row: Any) -> ApiKey:
    return ApiKey(
        row.id,
        row.space_key,
        row.name,
        row.prefix,
        row.created_at,
        row.revoked_at,
        tuple(row.roles or ()),
    )


async def _locked_space(conn: AsyncConnection, key: str) -> Any:
    """The space's row, locked until the transaction ends (on SQLite, transactions that write
    already run one at a time); NotFound when there is no such space."""
    query = select(t.spaces).where(t.spaces.c.key == key).with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"space {key!r} does not exist")
    return row


class SpaceStore:
    """Spaces and API keys."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._delivery: dict[str, tuple[float, DeliverySettings]] = {}
        # One read per space at a time: the attempts that find the cache stale wait for it.
        self._loading: dict[str, asyncio.Future[DeliverySettings]] = {}
        self._changes = 0  # a load that a change overtook does not fill the cache

    async def create_space(
        self, key: str, name: str | None = None, settings: dict[str, Any] | None = None
    ) -> Space:
        try:
            async with self.db.transaction() as conn:
                await conn.execute(
                    insert(t.spaces).values(
                        key=key,
                        name=name or key,
                        settings=settings or {},
                        created_at=self.clock.now(),
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"space {key!r} already exists") from exc
        return await self.get_space(key)

    async def get_space(self, key: str) -> Space:
        async with self.db.read() as conn:
            row = (await conn.execute(select(t.spaces).where(t.spaces.c.key == key))).first()
        if row is None:
            raise NotFound(f"space {key!r} does not exist")
        return _space(row)

    async def list_spaces(self) -> list[Space]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(t.spaces).order_by(t.spaces.c.key))).all()
        return [_space(row) for row in rows]

    async def update_settings(self, key: str, **changes: Any) -> Space:
        """Change some of a space's settings (the rest stay as they are). Read and written
        under the space's row lock, so two changes at once of different settings both hold."""
        async with self.db.transaction() as conn:
            row = await _locked_space(conn, key)
            await conn.execute(
                update(t.spaces)
                .where(t.spaces.c.key == key)
                .values(settings={**(row.settings or {}), **changes})
            )
        self._forget_delivery(key)
        return await self.get_space(key)

    async def create_api_key(
        self, space_key: str, name: str, roles: tuple[str, ...] = ("owner",)
    ) -> tuple[str, ApiKey]:
        """Make a key for the space holding ``roles``; the plain key is returned once and never
        stored."""
        await self.get_space(space_key)
        secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
        prefix = secret[: len(API_KEY_PREFIX) + 6]
        async with self.db.transaction() as conn:
            result = await conn.execute(
                insert(t.api_keys)
                .values(
                    space_key=space_key,
                    name=name,
                    prefix=prefix,
                    key_hash=hash_secret(secret),
                    created_at=self.clock.now(),
                    roles=list(roles),
                )
                .returning(t.api_keys)
            )
            row = result.one()
        return secret, _api_key(row)

    async def list_api_keys(self, space_key: str) -> list[ApiKey]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(t.api_keys)
                    .where(t.api_keys.c.space_key == space_key)
                    .order_by(t.api_keys.c.id)
                )
            ).all()
        return [_api_key(row) for row in rows]

    async def revoke_api_key(self, space_key: str, key_id: int) -> ApiKey:
        async with self.db.transaction() as conn:
            row = (
                await conn.execute(
                    update(t.api_keys)
                    .where(t.api_keys.c.id == key_id, t.api_keys.c.space_key == space_key)
                    .values(revoked_at=self.clock.now())
                    .returning(t.api_keys)
                )
            ).first()
        if row is None:
            raise NotFound(f"API key {key_id} does not exist in space {space_key!r}")
        return _api_key(row)

    async def authenticate(self, secret: str) -> ApiKey | None:
        """The live key matching ``secret``, or None."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(t.api_keys).where(
                        t.api_keys.c.key_hash == hash_secret(secret),
                        t.api_keys.c.revoked_at.is_(None),
                    )
                )
            ).first()
        return None if row is None else _api_key(row)

    async def delivery_settings(self, space_key: str) -> DeliverySettings:
        """What delivering to this space's connectors needs (cached for a few seconds; the
        deliveries that find it stale together share one read)."""
        cached = self._delivery.get(space_key)
        if cached is not None and time.monotonic() - cached[0] < _CACHE_SECONDS:
            return cached[1]
        loading = self._loading.get(space_key)
        if loading is None:
            loading = asyncio.ensure_future(self._load_delivery(space_key))
            self._loading[space_key] = loading
            loading.add_done_callback(partial(self._loaded, space_key))
        return await asyncio.shield(loading)

    async def _load_delivery(self, space_key: str) -> DeliverySettings:
        started, changes = time.monotonic(), self._changes
        space = await self.get_space(space_key)
        value = DeliverySettings(
            allow_networks=space.allow_networks,
            allow_http_hosts=space.allow_http_hosts,
            signing_secrets=tuple(await self.signing_secrets(space_key)),
            require_feedback_signature=bool(space.settings.get("requireFeedbackSignature")),
        )
        if changes == self._changes:
            self._delivery[space_key] = (started, value)
        return value

    def _loaded(self, space_key: str, loading: asyncio.Future[DeliverySettings]) -> None:
        if self._loading.get(space_key) is loading:
            del self._loading[space_key]
        if not loading.cancelled():
            loading.exception()  # seen here, so a read nobody awaits any more is not reported

    def _forget_delivery(self, space_key: str) -> None:
        """After a change to the space's settings or secrets: the next delivery reads again."""
        self._changes += 1
        self._delivery.pop(space_key, None)
        self._loading.pop(space_key, None)

    async def signing_secrets(self, space_key: str) -> list[str]:
        """The space's live signing secrets, newest first; the first one is made on first use."""
        now = self.clock.now()
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(t.signing_secrets.c.secret)
                    .where(
                        t.signing_secrets.c.space_key == space_key,
                        (t.signing_secrets.c.expires_at.is_(None))
                        | (t.signing_secrets.c.expires_at > now),
                    )
                    .order_by(t.signing_secrets.c.id.desc())
                )
            ).scalars()
            secrets_ = list(rows)
        if secrets_:
            return secrets_
        async with self.db.transaction() as conn:
            # Under the space's row lock, so two first deliveries at once make one secret.
            await _locked_space(conn, space_key)
            existing = (
                await conn.execute(
                    select(t.signing_secrets.c.id).where(
                        t.signing_secrets.c.space_key == space_key,
                        t.signing_secrets.c.expires_at.is_(None),
                    )
                )
            ).first()
            if existing is None:
                await conn.execute(
                    insert(t.signing_secrets).values(
                        space_key=space_key, secret=new_signing_secret(), created_at=now
                    )
                )
        return await self.signing_secrets(space_key)

    async def rotate_signing_secret(
        self, space_key: str, overlap: timedelta
    ) -> tuple[str, datetime]:
        """Make a new current secret; the old ones keep signing until ``now + overlap``."""
        await self.get_space(space_key)
        now = self.clock.now()
        secret = new_signing_secret()
        async with self.db.transaction() as conn:
            await conn.execute(
                update(t.signing_secrets)
                .where(
                    t.signing_secrets.c.space_key == space_key,
                    t.signing_secrets.c.expires_at.is_(None),
                )
                .values(expires_at=now + overlap)
            )
            await conn.execute(
                insert(t.signing_secrets).values(space_key=space_key, secret=secret, created_at=now)
            )
        self._forget_delivery(space_key)
        return secret, now + overlap

    async def instance_secret(self) -> str:
        """This installation's secret (signs feedback tokens and links); made on first use."""
        async with self.db.read() as conn:
            value = (
                await conn.execute(select(t.instance.c.value).where(t.instance.c.name == "secret"))
            ).scalar()
        if value is not None:
            return str(value)
        try:
            async with self.db.transaction() as conn:
                await conn.execute(
                    insert(t.instance).values(name="secret", value=secrets.token_urlsafe(32))
                )
        except IntegrityError:
            pass  # another process made it first; read theirs
        return await self.instance_secret()
