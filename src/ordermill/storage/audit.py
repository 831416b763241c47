"""The audit trail: a space's administrative actions (people, roles, keys, flows, settings)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from ordermill.clock import Clock
from ordermill.storage import tables as t
from ordermill.storage.database import Database


@dataclass(frozen=True)
class AuditEntry:
    id: int
    space_key: str | None
    at: datetime
    actor: str
    client: str | None
    action: str
    target: str | None
    changes: dict[str, Any] | None


class AuditStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def record(
        self,
        space_key: str | None,
        *,
        actor: str,
        client: str | None,
        action: str,
        target: str | None = None,
        changes: dict[str, Any] | None = None,
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                insert(t.audit).values(
                    space_key=space_key,
                    at=self.clock.now(),
                    actor=actor[:400],
                    client=(client or "")[:100] or None,
                    action=action,
                    target=None if target is None else target[:400],
                    changes=changes,
                )
            )

    async def entries(
        self, space_key: str, *, limit: int = 100, before: int | None = None
    ) -> list[AuditEntry]:
        """Newest first; ``before`` (an entry id) pages back."""
        query = select(t.audit).where(t.audit.c.space_key == space_key)
        if before is not None:
            query = query.where(t.audit.c.id < before)
        async with self.db.read() as conn:
            rows = (await conn.execute(query.order_by(t.audit.c.id.desc()).limit(limit))).all()
        return [
            AuditEntry(
                row.id,
                row.space_key,
                row.at,
                row.actor,
                row.client,
                row.action,
                row.target,
                row.changes,
            )
            for row in rows
        ]
