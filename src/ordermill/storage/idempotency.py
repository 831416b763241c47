"""Idempotency keys: the first answer to a steering request, kept a day for its resends.

A request sent with an ``Idempotency-Key`` first claims the key (a row with no answer yet),
then acts, then stores its answer. A resend of the same route and body finds the answer and
gets it again without acting; the same key with another route or body is refused. A claim
that finds the first request still being answered is refused as a conflict, so two copies
sent at once never both act.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ordermill.clock import Clock
from ordermill.errors import Conflict, KeyReused
from ordermill.storage import tables as t
from ordermill.storage.database import Database

KEPT_FOR = timedelta(hours=24)
ADMIN_SPACE = "*"  # the admin key's keys, apart from every space's


@dataclass(frozen=True)
class Request:
    """Who sent which request under which key."""

    space_key: str | None  # None: the admin key
    key: str
    route: str  # method and path
    body_hash: str  # SHA-256 of the body's bytes, hex


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


class IdempotencyStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def claim(self, request: Request) -> Answer | None:
        """None when the key is new (the caller acts, then calls ``answer`` or ``release``);
        the first answer when the same request came before. Raises KeyReused for another
        request under the key, Conflict while its first request is still being answered."""
        now = self.clock.now()
        space = request.space_key or ADMIN_SPACE
        where = self._where(request)
        try:
            async with self.db.transaction() as conn:
                expired = t.idempotency_keys.c.created_at < now - KEPT_FOR
                await conn.execute(delete(t.idempotency_keys).where(expired))
                row = (await conn.execute(select(t.idempotency_keys).where(*where))).first()
                if row is None:
                    await conn.execute(
                        insert(t.idempotency_keys).values(
                            space_key=space,
                            key=request.key,
                            route=request.route,
                            body_hash=request.body_hash,
                            created_at=now,
                        )
                    )
                    return None
        except IntegrityError:
            # Another copy claimed the key between our read and our insert.
            async with self.db.read() as conn:
                row = (await conn.execute(select(t.idempotency_keys).where(*where))).first()
            if row is None:  # pragma: no cover - it was claimed and released meanwhile
                raise Conflict("a request with this Idempotency-Key was just sent; retry") from None
        if (row.route, row.body_hash) != (request.route, request.body_hash):
            raise KeyReused(
                f"this Idempotency-Key was sent before with another request ({row.route}"
                f"{'' if row.route != request.route else ', another body'}); use a new key"
            )
        if row.status is None:
            raise Conflict("the first request with this Idempotency-Key is still being answered")
        return Answer(row.status, row.answer)

    async def answer(self, request: Request, answer: Answer) -> None:
        """Keep the first answer to ``request`` for its resends."""
        async with self.db.transaction() as conn:
            await conn.execute(
                update(t.idempotency_keys)
                .where(*self._where(request))
                .values(status=answer.status, answer=answer.body)
            )

    async def release(self, request: Request) -> None:
        """Forget the claim of a request that failed on our side, so a resend acts."""
        async with self.db.transaction() as conn:
            await conn.execute(delete(t.idempotency_keys).where(*self._where(request)))

    @staticmethod
    def _where(request: Request) -> tuple[Any, ...]:
        space = request.space_key or ADMIN_SPACE
        return (t.idempotency_keys.c.space_key == space, t.idempotency_keys.c.key == request.key)
