"""``python bench/run.py``: ordermill's benchmark (throughput, latency, CPU and memory per order).

Starts a lean https receiver, measures the ceilings (raw POSTs, raw commits), then runs each
scenario — SQLite with one ``ordermill serve``; PostgreSQL with one ``ordermill api`` and 1, 2
or 4 ``ordermill worker`` processes; a one-connector flow, and (``*-flow``) a realistic one — and
prints Markdown tables and where each aim stands.
Every process it starts is stopped at the end, whatever happens. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `bench` and `tests.support` import from the project root

import uvloop  # noqa: E402
from tests.support.postgres import PostgresServer, find_pg_bin_dir  # noqa: E402

from bench import ceilings, pgstats  # noqa: E402
from bench.engine import Outcomes  # noqa: E402
from bench.peers import harness as peers  # noqa: E402
from bench.receiver import ReceiverProcess  # noqa: E402
from bench.report import render  # noqa: E402
from bench.scenario import SPECS, Options, Scenario  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--orders",
        type=int,
        default=2000,
        help="orders in the peak and the half-peak phase each (default 2000)",
    )
    parser.add_argument(
        "--scenarios",
        default="sqlite,pg1,pg2,pg4,sqlite-flow,pg1-flow",
        help=f"comma-separated, of {', '.join(SPECS)}",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 300 orders, 50 idle orders, smaller ceilings",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="only print the report of an earlier --json"
    )
    parser.add_argument("--idle-orders", type=int, default=200)
    parser.add_argument(
        "--idle-pause-ms",
        type=float,
        default=40.0,
        help="mean of the random pause between idle orders (plus 10 ms)",
    )
    parser.add_argument(
        "--drain-orders",
        type=int,
        default=2000,
        help="PostgreSQL: orders queued with the workers stopped, then drained (default 2000, "
        "at most --orders; each worker's start-up of the drain, such as its connections to the "
        "receiver, is spread over them)",
    )
    parser.add_argument(
        "--half-seconds",
        type=float,
        default=20.0,
        help="the half-peak phase sends min(--orders, its rate × this many seconds) orders",
    )
    parser.add_argument(
        "--connections", type=int, default=8, help="load generator connections for the peak phase"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="hard limit per scenario in seconds (three times it for the *-flow scenarios); "
        "it then reports what it has",
    )
    parser.add_argument(
        "--ceiling-ops", type=int, default=2000, help="POSTs and commits per ceiling"
    )
    parser.add_argument(
        "--ceiling-connections",
        type=int,
        default=16,
        help="connections for the raw POST ceiling (ordermill's default "
        "ORDERMILL_CONNECTOR_MAX_PER_HOST is 16)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        help="ORDERMILL_POLL_INTERVAL_SECONDS (default: ordermill's own)",
    )
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        help="ORDERMILL_WORKER_CONCURRENCY (default: ordermill's own)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy the engine processes during the peak phase into DIR "
        "(needs py-spy in the venv; perturbs the figures)",
    )
    parser.add_argument(
        "--profile-rate",
        type=int,
        default=100,
        metavar="HZ",
        help="samples per second for --profile (default 100; 500 gives a finer split)",
    )
    parser.add_argument(
        "--no-statements",
        dest="statements",
        action="store_false",
        help="skip pg_stat_statements (statements per order on PostgreSQL)",
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also run DBOS Transact and procrastinate on the same order and receiver "
        "(installed into .cache/bench-peers-venv; skipped when that fails)",
    )
    parser.add_argument(
        "--peer-orders", type=int, help="orders per peer run (default 1000; --quick: 300)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    if args.quick:
        args.orders, args.idle_orders, args.ceiling_ops = 300, 50, 500
    if args.peer_orders is None:
        args.peer_orders = 300 if args.quick else 1000
    unknown = set(args.scenarios.split(",")) - set(SPECS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


def _command_output(*argv: str) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in _command_output("lscpu").splitlines()
            if line.startswith("Model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    pg_bin = find_pg_bin_dir()
    commit = _command_output("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD")
    dirty = _command_output("git", "-C", str(ROOT), "status", "--porcelain", "--", "src")
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": _command_output(str(pg_bin / "postgres"), "--version") if pg_bin else None,
        "ordermill": f"{commit}{' + uncommitted changes in src/' if dirty else ''}",
        "load average at start": " ".join(f"{value:.2f}" for value in os.getloadavg()),
    }


def postmaster_pid(server: PostgresServer) -> int:
    return int((server.data_dir / "postmaster.pid").read_text().splitlines()[0])


async def measure_ceilings(
    args: argparse.Namespace, receiver: ReceiverProcess, workdir: Path
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    found["raw_post"] = await ceilings.raw_posts(
        receiver.url("/ceiling"),
        receiver.ca_file,
        count=args.ceiling_ops,
        concurrency=args.ceiling_connections,
        receiver_pid=receiver.pid,
    )
    found["sqlite3"] = ceilings.sqlite_commits(workdir / "ceiling.db", count=args.ceiling_ops)
    found["aiosqlite"] = await ceilings.aiosqlite_commits(
        workdir / "ceiling-aio.db", count=args.ceiling_ops
    )
    if any(SPECS[name].database == "postgresql" for name in args.scenarios.split(",")):
        server = await asyncio.to_thread(PostgresServer.launch)
        try:
            server.create_database("ceiling")
            found["postgres"] = await ceilings.postgres_commits(
                server.conninfo("ceiling"),
                count=args.ceiling_ops,
                postmaster_pid=postmaster_pid(server),
            )
        finally:
            await asyncio.to_thread(server.close)
    return found


async def run_scenario(
    name: str, args: argparse.Namespace, options: Options, receiver: ReceiverProcess, workdir: Path
) -> dict[str, Any]:
    spec = SPECS[name]
    directory = workdir / name
    directory.mkdir()
    if spec.database == "sqlite":
        path = directory / "ordermill.db"
        scenario = Scenario(
            spec,
            options,
            receiver,
            directory,
            f"sqlite+aiosqlite:///{path}",
            Outcomes(sqlite_path=path),
            None,
        )
        return await scenario.run()
    # A fresh PostgreSQL per scenario: its CPU and memory are this scenario's alone.
    server = await asyncio.to_thread(PostgresServer.launch)
    try:
        url = server.create_database("ordermill")
        if args.statements:
            await asyncio.to_thread(pgstats.enable, server, "ordermill")
        scenario = Scenario(
            spec,
            options,
            receiver,
            directory,
            url,
            Outcomes(conninfo=server.conninfo("ordermill")),
            postmaster_pid(server),
        )
        result = await scenario.run()
        if args.statements:
            result["statements"] = await asyncio.to_thread(pgstats.per_order, server, "ordermill")
        return result
    finally:
        await asyncio.to_thread(server.close)


async def run_all(
    args: argparse.Namespace, receiver: ReceiverProcess, workdir: Path
) -> dict[str, Any]:
    extra_env = {}
    if args.poll_interval is not None:
        extra_env["ORDERMILL_POLL_INTERVAL_SECONDS"] = str(args.poll_interval)
    if args.worker_concurrency is not None:
        extra_env["ORDERMILL_WORKER_CONCURRENCY"] = str(args.worker_concurrency)
    options = Options(
        orders=args.orders,
        idle_orders=args.idle_orders,
        warmup=min(100, args.orders),
        connections=args.connections,
        timeout=args.timeout,
        idle_pause=args.idle_pause_ms / 1000,
        half_seconds=args.half_seconds,
        drain_orders=min(args.drain_orders, args.orders),
        extra_env=extra_env,
        profile_dir=args.profile,
        profile_rate=args.profile_rate,
    )
    results: dict[str, Any] = {
        "machine": machine(),
        "options": {key: str(value) for key, value in vars(args).items()},
    }
    try:
        print("measuring the ceilings …", file=sys.stderr)
        results["ceilings"] = await measure_ceilings(args, receiver, workdir)
        results["scenarios"] = []
        for name in args.scenarios.split(","):
            print(f"running {name} …", file=sys.stderr)
            started = time.monotonic()
            results["scenarios"].append(await run_scenario(name, args, options, receiver, workdir))
            print(f"  {name} took {time.monotonic() - started:.0f} s", file=sys.stderr)
        if args.peers:
            results["peers"] = await peers.run_peers(
                receiver, workdir, args.peer_orders, args.timeout
            )
    finally:
        await receiver.close_client()
    results["machine"]["load average at end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        print(render(json.loads(args.render.read_text())))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="ordermill-bench-"))
    receiver = ReceiverProcess(workdir / "receiver")
    failed = True
    try:
        receiver.start()
        results = uvloop.run(run_all(args, receiver, workdir))
        failed = any(s.get("error") for s in results["scenarios"])
    finally:
        receiver.stop()
        if args.keep or failed:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    print(render(results))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
