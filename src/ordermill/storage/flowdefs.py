"""Flows and their immutable versions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ordermill.clock import Clock
from ordermill.errors import Conflict, NotFound
from ordermill.flows.model import FlowDefinition
from ordermill.flows.wire import flow_from_wire
from ordermill.storage import tables as t
from ordermill.storage.database import Database


@dataclass(frozen=True)
class FlowVersion:
    flow_id: int
    space_key: str
    key: str
    version: int
    content_hash: str
    definition: FlowDefinition
    created_at: datetime


@dataclass(frozen=True)
class FlowRecord:
    id: int
    space_key: str
    key: str
    name: str
    current_version: int
    created_at: datetime
    updated_at: datetime
    current: FlowVersion
    order_count: int = 0


MAX_VERSION = 2**31 - 1  # flow versions are INTEGER columns


class FlowStore:
    """Saving a flow makes a new version when its content changed; old versions stay readable."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._versions: dict[tuple[int, int], FlowVersion] = {}

    async def save(self, space_key: str, definition: FlowDefinition) -> tuple[FlowRecord, bool]:
        """Store ``definition`` as the flow's newest version. Returns (flow, changed)."""
        now = self.clock.now()
        wire = definition.to_wire()
        wire["spaceKey"] = space_key
        content_hash = definition.content_hash()
        for _ in range(3):  # two concurrent first saves race on the unique key; the loser retries
            try:
                async with self.db.transaction() as conn:
                    row = (
                        await conn.execute(
                            select(t.flows).where(
                                t.flows.c.space_key == space_key, t.flows.c.key == definition.key
                            )
                        )
                    ).first()
                    if row is None:
                        flow_id = (
                            await conn.execute(
                                insert(t.flows)
                                .values(
                                    space_key=space_key,
                                    key=definition.key,
                                    name=definition.name,
                                    current_version=1,
                                    created_at=now,
                                    updated_at=now,
                                )
                                .returning(t.flows.c.id)
                            )
                        ).scalar_one()
                        version = 1
                    else:
                        flow_id = row.id
                        current_hash = (
                            await conn.execute(
                                select(t.flow_versions.c.content_hash).where(
                                    t.flow_versions.c.flow_id == flow_id,
                                    t.flow_versions.c.version == row.current_version,
                                )
                            )
                        ).scalar_one()
                        if current_hash == content_hash and row.deleted_at is None:
                            return await self.get(space_key, definition.key), False
                        version = row.current_version + 1
                        await conn.execute(
                            update(t.flows)
                            .where(t.flows.c.id == flow_id)
                            .values(
                                name=definition.name,
                                current_version=version,
                                updated_at=now,
                                deleted_at=None,
                            )
                        )
                    await conn.execute(
                        insert(t.flow_versions).values(
                            flow_id=flow_id,
                            version=version,
                            content_hash=content_hash,
                            definition=wire,
                            created_at=now,
                        )
                    )
                return await self.get(space_key, definition.key), True
            except IntegrityError:
                continue
        raise Conflict(f"flow {definition.key!r} is being changed concurrently; try again")

    async def get(self, space_key: str, key: str, *, count_orders: bool = False) -> FlowRecord:
        """The flow with its current version (and, when asked, how many orders run it)."""
        count = 0
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(t.flows).where(
                        t.flows.c.space_key == space_key,
                        t.flows.c.key == key,
                        t.flows.c.deleted_at.is_(None),
                    )
                )
            ).first()
            if row is None:
                raise NotFound(f"flow {key!r} does not exist in space {space_key!r}")
            if count_orders:
                count = (
                    await conn.execute(
                        select(func.count())
                        .select_from(t.orders)
                        .where(t.orders.c.space_key == space_key, t.orders.c.flow_key == key)
                    )
                ).scalar_one()
        current = await self.version_by_id(row.id, row.current_version)
        return _record(row, current, int(count))

    async def list_flows(self, space_key: str) -> list[FlowRecord]:
        order_counts = (
            select(t.orders.c.flow_id, func.count().label("n"))
            .where(t.orders.c.space_key == space_key)
            .group_by(t.orders.c.flow_id)
            .subquery()
        )
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(t.flows, func.coalesce(order_counts.c.n, 0).label("order_count"))
                    .outerjoin(order_counts, order_counts.c.flow_id == t.flows.c.id)
                    .where(t.flows.c.space_key == space_key, t.flows.c.deleted_at.is_(None))
                    .order_by(t.flows.c.key)
                )
            ).all()
        records = []
        for row in rows:
            current = await self.version_by_id(row.id, row.current_version)
            records.append(_record(row, current, row.order_count))
        return records

    async def versions(self, space_key: str, key: str) -> list[FlowVersion]:
        flow = await self.get(space_key, key)
        async with self.db.read() as conn:
            numbers = (
                await conn.execute(
                    select(t.flow_versions.c.version)
                    .where(t.flow_versions.c.flow_id == flow.id)
                    .order_by(t.flow_versions.c.version.desc())
                )
            ).scalars()
            wanted = list(numbers)
        return [await self.version_by_id(flow.id, n) for n in wanted]

    async def version(self, space_key: str, key: str, number: int) -> FlowVersion:
        flow = await self.get(space_key, key)
        return await self.version_by_id(flow.id, number)

    async def version_by_id(self, flow_id: int, number: int) -> FlowVersion:
        """A version by flow id; versions never change, so they are cached for good."""
        cached = self._versions.get((flow_id, number))
        if cached is not None:
            return cached
        if not 1 <= number <= MAX_VERSION:  # the column could not hold it: no such version
            raise NotFound(f"flow version {number} does not exist")
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(t.flow_versions, t.flows.c.space_key, t.flows.c.key)
                    .join(t.flows, t.flows.c.id == t.flow_versions.c.flow_id)
                    .where(
                        t.flow_versions.c.flow_id == flow_id,
                        t.flow_versions.c.version == number,
                    )
                )
            ).first()
        if row is None:
            raise NotFound(f"flow version {number} does not exist")
        version = FlowVersion(
            flow_id=flow_id,
            space_key=row.space_key,
            key=row.key,
            version=number,
            content_hash=row.content_hash,
            definition=flow_from_wire(row.definition),
            created_at=row.created_at,
        )
        self._versions[(flow_id, number)] = version
        return version

    async def delete(self, space_key: str, key: str) -> None:
        """Hide the flow; orders already running on it finish on their pinned version."""
        flow = await self.get(space_key, key)
        async with self.db.transaction() as conn:
            await conn.execute(
                update(t.flows).where(t.flows.c.id == flow.id).values(deleted_at=self.clock.now())
            )


def _record(row: Any, current: FlowVersion, order_count: int = 0) -> FlowRecord:
    return FlowRecord(
        id=row.id,
        space_key=row.space_key,
        key=row.key,
        name=row.name,
        current_version=row.current_version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        current=current,
        order_count=order_count,
    )
