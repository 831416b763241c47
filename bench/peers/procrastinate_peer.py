"""procrastinate on PostgreSQL: one job per order, one worker in this process posting it.

``python -m bench.peers.procrastinate_peer CONFIG.json`` (the peers' venv). Applies
procrastinate's schema, defers each order as a job of the ``deliver`` task from
``config.enqueuers`` concurrent callers, and runs one worker (``concurrency`` jobs at a time,
LISTEN/NOTIFY) in the same event loop. The task POSTs the body with aiohttp, unsigned.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

import procrastinate

from bench.peers.program import Config, say, serve, versions


async def main(config: Config) -> None:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=config.database))
    session = config.session()

    @app.task(name="deliver")
    async def deliver(order_id: str) -> None:
        await config.post(session, order_id)

    async with app.open_async(), session:
        await app.schema_manager.apply_schema_async()
        worker = asyncio.create_task(
            app.run_worker_async(concurrency=config.concurrency, install_signal_handlers=False)
        )
        say(ready=True, versions=versions("procrastinate", "psycopg", "aiohttp"))

        async def enqueue(order_id: str) -> None:
            await deliver.defer_async(order_id=order_id)

        try:
            await serve(config, enqueue)
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
    say(stopped=True)


if __name__ == "__main__":
    asyncio.run(main(Config.load(sys.argv[1])))
