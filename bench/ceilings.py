"""The ceilings ordermill is measured against, on the same machine in the same run.

- raw aiohttp POSTs per second to the benchmark receiver (keep-alive, TLS, N connections), and
  the round trip of one POST at a time: no engine can deliver faster than this;
- raw commits per second of one-row insert + commit: SQLite with ordermill's pragmas (WAL,
  synchronous=NORMAL) through sqlite3 (inline, as ordermill runs statements) and through
  aiosqlite (a thread hop per statement), and PostgreSQL through psycopg's async connection
  (ordermill's driver).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import ssl
import time
from pathlib import Path
from typing import Any

import aiohttp
import aiosqlite
import psycopg
from tests.support.factories import order_doc

from bench import procstat
from bench.stats import percentiles


def connector_like_body() -> bytes:
    """About the bytes ordermill sends per delivery: the reference order and a context."""
    order = order_doc("CEILING-1", spaceKey="bench")
    order["updateUrl"] = "http://127.0.0.1:8000/api/feedback/" + "0" * 64
    context = {"orderId": "ord_" + "0" * 26, "stageKey": "stage-1", "taskKey": "task-1"}
    return json.dumps({"order": order, "context": context}, separators=(",", ":")).encode()


def _rate(count: int, seconds: float, cpu: float, **extra: Any) -> dict[str, Any]:
    return {
        "count": count,
        "seconds": round(seconds, 3),
        "per_second": round(count / seconds, 1) if seconds > 0 else None,
        "cpu_ms_per_op": round(cpu * 1000 / count, 3) if count else None,
        **extra,
    }


async def raw_posts(
    url: str, ca_file: Path, *, count: int, concurrency: int, receiver_pid: int
) -> dict[str, Any]:
    """POSTs per second over ``concurrency`` keep-alive connections, then one-at-a-time RTTs."""
    context = ssl.create_default_context(cafile=str(ca_file))
    body = connector_like_body()
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(ssl=context, limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post() -> None:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 201:
                    raise RuntimeError(f"the receiver answered {response.status}")

        await asyncio.gather(*(post() for _ in range(concurrency * 4)))  # open the connections
        remaining = count

        async def loop() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await post()

        cpu0, recv0, t0 = time.process_time(), procstat.tree_cpu(receiver_pid), time.monotonic()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        seconds = time.monotonic() - t0
        client_cpu = time.process_time() - cpu0
        receiver_cpu = procstat.tree_cpu(receiver_pid) - recv0

        round_trips = []
        for _ in range(min(count, 200)):
            start = time.monotonic()
            await post()
            round_trips.append((time.monotonic() - start) * 1000)
    return _rate(
        count,
        seconds,
        client_cpu,
        concurrency=concurrency,
        receiver_cpu_ms_per_op=round(receiver_cpu * 1000 / count, 3),
        round_trip_ms=percentiles(round_trips),
    )


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS ceiling (id INTEGER PRIMARY KEY, body TEXT)")
    return conn


def sqlite_commits(path: Path, *, count: int) -> dict[str, Any]:
    """One-row insert + commit, ``count`` times, through the sqlite3 module (no thread hop)."""
    conn = _sqlite_connect(path)
    row = "x" * 200
    try:
        cpu0, t0 = time.process_time(), time.monotonic()
        for _ in range(count):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO ceiling (body) VALUES (?)", (row,))
            conn.execute("COMMIT")
        return _rate(count, time.monotonic() - t0, time.process_time() - cpu0, driver="sqlite3")
    finally:
        conn.close()


async def aiosqlite_commits(path: Path, *, count: int) -> dict[str, Any]:
    """The same through aiosqlite: each statement hops to the connection's thread and back."""
    _sqlite_connect(path).close()
    row = "x" * 200
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await conn.execute("PRAGMA synchronous=NORMAL")
        cpu0, t0 = time.process_time(), time.monotonic()
        for _ in range(count):
            await conn.execute("BEGIN IMMEDIATE")
            await conn.execute("INSERT INTO ceiling (body) VALUES (?)", (row,))
            await conn.execute("COMMIT")
        seconds, cpu = time.monotonic() - t0, time.process_time() - cpu0
    return _rate(count, seconds, cpu, driver="aiosqlite")


async def postgres_commits(conninfo: str, *, count: int, postmaster_pid: int) -> dict[str, Any]:
    """One-row insert + commit, ``count`` times, on one psycopg async connection."""
    row = "x" * 200
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS ceiling (id bigserial PRIMARY KEY, body text)"
        )
        await conn.commit()
        cpu0, pg0, t0 = time.process_time(), procstat.tree_cpu(postmaster_pid), time.monotonic()
        for _ in range(count):
            await conn.execute("INSERT INTO ceiling (body) VALUES (%s)", (row,))
            await conn.commit()
        seconds, cpu = time.monotonic() - t0, time.process_time() - cpu0
        pg_cpu = procstat.tree_cpu(postmaster_pid) - pg0
    return _rate(
        count,
        seconds,
        cpu,
        driver="psycopg (async)",
        postgres_cpu_ms_per_op=round(pg_cpu * 1000 / count, 3),
    )
