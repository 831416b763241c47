"""DBOS Transact: one durable workflow per order, with one step that posts it.

``python -m bench.peers.dbos_peer CONFIG.json`` (the peers' venv). ``config.database`` is a
libpq conninfo (PostgreSQL system database) or a file path (SQLite system database). Orders
start with ``DBOS.start_workflow_async`` from ``config.enqueuers`` concurrent callers in this
process, each awaiting its workflow before starting the next (a DBOS queue would be polled,
once a second by default). The step POSTs the body with aiohttp, unsigned.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from dbos import DBOS

from bench.peers.program import Config, say, serve, versions


def system_database_url(database: str) -> str:
    if "=" in database:  # a conninfo: host=… port=… user=… dbname=…
        fields = dict(item.split("=", 1) for item in database.split())
        return (
            f"postgresql+psycopg://{fields['user']}@{fields['host']}:{fields['port']}"
            f"/{fields['dbname']}"
        )
    return f"sqlite:///{database}"


async def main(config: Config) -> None:
    session = config.session()

    @DBOS.step()
    async def deliver(order_id: str) -> int:
        return await config.post(session, order_id)

    @DBOS.workflow()
    async def order(order_id: str) -> int:
        return await deliver(order_id)

    settings: Any = {
        "name": "bench-peer",
        "system_database_url": system_database_url(config.database),
        "log_level": "WARNING",
    }
    DBOS(config=settings)
    DBOS.launch()
    say(ready=True, versions=versions("dbos", "sqlalchemy", "psycopg", "aiohttp"))

    async def enqueue(order_id: str) -> None:
        handle = await DBOS.start_workflow_async(order, order_id)
        await handle.get_result()

    try:
        await serve(config, enqueue)
    finally:
        DBOS.destroy()
        await session.close()
    say(stopped=True)


if __name__ == "__main__":
    asyncio.run(main(Config.load(sys.argv[1])))
