"""The SQL statements a piece of code sends, seen at the driver.

Hot statements bypass SQLAlchemy's execution (``ordermill.storage.direct``), so its events do
not see them: this watches the drivers instead. On PostgreSQL every psycopg cursor's
``execute``/``executemany``; on SQLite the writer connection's trace callback (the writer pool
holds one connection, so it is the one every write transaction uses).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest

from ordermill.storage.database import Database
from ordermill.storage.direct import _sqlite


@asynccontextmanager
async def statements_sent(db: Database) -> AsyncIterator[list[str]]:
    """The text of each statement sent on the writer while the block runs, in order."""
    seen: list[str] = []
    if db.is_sqlite:
        async with db.writer.connect() as conn:
            driver = _sqlite(conn)
        driver.set_trace_callback(seen.append)
        try:
            yield seen
        finally:
            driver.set_trace_callback(None)
        return
    execute, executemany = psycopg.AsyncCursor.execute, psycopg.AsyncCursor.executemany

    async def watched_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(query))
        return await execute(self, query, *args, **kwargs)

    async def watched_many(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(query))
        return await executemany(self, query, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(psycopg.AsyncCursor, "execute", watched_execute)
        patch.setattr(psycopg.AsyncCursor, "executemany", watched_many)
        yield seen
