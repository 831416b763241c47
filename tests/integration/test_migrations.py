"""The packaged Alembic migrations build exactly the schema the code uses, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx2
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, insert, select

from ordermill.storage import migrate
from ordermill.storage import tables as t
from ordermill.storage.database import Database
from ordermill.storage.search import TABLE_NAME
from ordermill.storage.tables import metadata


def outside_search(name: str | None, kind: str, parents: dict[str, str | None]) -> bool:
    """The search table is made with each database's own DDL (FTS5, pg_trgm), not ``metadata``."""
    table = name if kind == "table" else parents.get("table_name")
    return not (table or "").startswith(TABLE_NAME)


def schema_diff(connection: Connection) -> list[Any]:
    """What autogenerate would change to make the database match ``metadata``."""
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": outside_search}
    )
    return list(compare_metadata(context, metadata))


async def test_migrating_an_empty_database_yields_exactly_the_tables_module_schema(
    database_url: str,
) -> None:
    database = Database(database_url)
    try:
        assert await migrate.current_revision(database) is None

        await migrate.upgrade(database)

        async with database.read() as conn:
            diff = await conn.run_sync(schema_diff)
        assert diff == []
        assert await migrate.current_revision(database) == migrate.head_revision()
        assert await migrate.is_current(database)
    finally:
        await database.dispose()


async def test_migrating_twice_changes_nothing(database_url: str) -> None:
    database = Database(database_url)
    try:
        await migrate.upgrade(database)
        await migrate.upgrade(database)

        async with database.read() as conn:
            diff = await conn.run_sync(schema_diff)
        assert diff == []
        assert await migrate.is_current(database)
    finally:
        await database.dispose()


async def test_readyz_reports_ready_after_startup(client: httpx2.AsyncClient) -> None:
    ready = await client.get("/readyz")
    healthy = await client.get("/healthz")

    assert (ready.status_code, ready.json()) == (
        200,
        {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}},
    )
    assert (healthy.status_code, healthy.json()) == (200, {"status": "ok"})


async def test_api_keys_made_before_roles_existed_become_owners(database_url: str) -> None:
    database = Database(database_url)
    try:

        def to_0003(connection: Connection) -> None:
            command.upgrade(migrate._config(connection), "0003")

        async with database.transaction() as conn:
            await conn.run_sync(to_0003)
        now = datetime.now(UTC)
        async with database.transaction() as conn:
            await conn.execute(
                insert(t.spaces).values(key="old", name="old", settings={}, created_at=now)
            )
            # Only the columns of 0003: the statement names no roles.
            await conn.execute(
                insert(t.api_keys).values(
                    space_key="old", name="shop", prefix="om_abc", key_hash="h" * 64, created_at=now
                )
            )

        await migrate.upgrade(database)

        async with database.read() as conn:
            roles = (await conn.execute(select(t.api_keys.c.roles))).scalars().all()
        assert roles == [["owner"]]
    finally:
        await database.dispose()
