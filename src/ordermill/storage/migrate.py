"""Applying the packaged Alembic migrations, and checking that a database is current."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from ordermill.storage.database import Database

_MIGRATIONS = Path(__file__).parent / "migrations"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest migration shipped with this version of ordermill."""
    return ScriptDirectory.from_config(_config()).get_current_head()


async def upgrade(database: Database) -> None:
    """Bring the database schema up to date (safe to run on every start)."""

    def _run(connection: Connection) -> None:
        command.upgrade(_config(connection), "head")

    async with database.transaction() as conn:
        await conn.run_sync(_run)


async def current_revision(database: Database) -> str | None:
    """The migration the database is at, or None for an empty database."""

    def _read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with database.read() as conn:
        return await conn.run_sync(_read)


async def is_current(database: Database) -> bool:
    return await current_revision(database) == head_revision()
