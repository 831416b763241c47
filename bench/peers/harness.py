"""Run each peer program against the benchmark's receiver and measure it as ordermill is measured.

Per peer run: a fresh PostgreSQL (``PostgresServer.launch()``) or a fresh SQLite file, the
peer program in the peers' venv (``bench.peers.venv``), then the orders: CPU of every process
from the ``go`` to the moment the peer's own state shows every order done, and the wall time
from the first enqueue to the last completion that state records. Every wait is bounded by
the run's hard limit; whatever happens, the peer's process group is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg
from tests.support.postgres import PostgresServer

from bench import procstat
from bench.ceilings import connector_like_body
from bench.meters import cpu_delta
from bench.peers import venv
from bench.peers.program import TEMPLATE_ID
from bench.receiver import ReceiverProcess

ROOT = Path(__file__).resolve().parents[2]
CONCURRENCY = 16  # as ordermill's ORDERMILL_CONNECTOR_MAX_PER_HOST
ENQUEUERS = 8  # as the peak phase's load generator connections
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class Peer:
    name: str
    label: str
    package: str  # whose version the report names
    module: str
    database: str  # "sqlite" or "postgresql"
    enqueuers: int
    # (done, all) orders, and the epoch seconds of the last completion, from the peer's state
    progress_sql: str


PEERS = (
    Peer(
        "dbos-sqlite",
        "DBOS Transact, SQLite",
        "dbos",
        "bench.peers.dbos_peer",
        "sqlite",
        CONCURRENCY,  # each caller awaits its workflow: CONCURRENCY orders in flight
        "SELECT sum(status = 'SUCCESS'), count(*), max(updated_at) / 1000.0 FROM workflow_status",
    ),
    Peer(
        "dbos-pg",
        "DBOS Transact, PostgreSQL",
        "dbos",
        "bench.peers.dbos_peer",
        "postgresql",
        CONCURRENCY,
        "SELECT count(*) FILTER (WHERE status = 'SUCCESS'), count(*), "
        "max(updated_at) / 1000.0 FROM dbos.workflow_status",
    ),
    Peer(
        "procrastinate-pg",
        "procrastinate, PostgreSQL",
        "procrastinate",
        "bench.peers.procrastinate_peer",
        "postgresql",
        ENQUEUERS,
        "SELECT (SELECT count(*) FILTER (WHERE status = 'succeeded') FROM procrastinate_jobs), "
        "(SELECT count(*) FROM procrastinate_jobs), "
        "(SELECT extract(epoch FROM max(at)) FROM procrastinate_events WHERE type = 'succeeded')",
    ),
)


class PeerFailed(Exception):
    pass


class State:
    """The peer's own record of its orders, read the way the peer stores it."""

    def __init__(self, peer: Peer, database: str) -> None:
        self.peer = peer
        self.database = database

    def _read(self) -> tuple[int, int, float | None]:
        if self.peer.database == "sqlite":
            conn = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=30)
            try:
                row = conn.execute(self.peer.progress_sql).fetchone()
            finally:
                conn.close()
        else:
            with psycopg.connect(self.database, autocommit=True) as pg:
                row = pg.execute(self.peer.progress_sql).fetchone()
        assert row is not None
        done, total, last = row
        return int(done or 0), int(total or 0), None if last is None else float(last)

    async def read(self) -> tuple[int, int, float | None]:
        return await asyncio.to_thread(self._read)

    async def wait_until_done(self, count: int, until: float) -> tuple[int, int, float | None]:
        """Poll until ``count`` orders are done or the monotonic clock passes ``until``."""
        while True:
            found = await self.read()
            if found[0] >= count or time.monotonic() > until:
                return found
            await asyncio.sleep(0.1)


class PeerProcess:
    """One peer program in the peers' venv, in a session of its own, spoken to by lines."""

    def __init__(self, python: Path, peer: Peer, config: Path, log: Path) -> None:
        with log.open("ab") as err:
            self.process = subprocess.Popen(
                [str(python), "-m", peer.module, str(config)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    async def expect(self, key: str, until: float) -> dict[str, Any]:
        """The next JSON line with ``key``; the peer is killed if none comes by ``until``."""
        stdout: IO[bytes] | None = self.process.stdout
        assert stdout is not None
        while True:
            try:
                line = await asyncio.wait_for(
                    asyncio.to_thread(stdout.readline), max(0.1, until - time.monotonic())
                )
            except TimeoutError:
                self.kill()
                raise PeerFailed(f"no {key!r} from the peer in time") from None
            if not line:
                raise PeerFailed(f"the peer exited (code {self.process.poll()}) before {key!r}")
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if isinstance(message, dict) and key in message:
                    return message

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError):
            self.process.stdin.write(command.encode() + b"\n")
            self.process.stdin.flush()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def stop(self) -> None:
        self.send("stop")
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            self.process.wait(STOP_TIMEOUT)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _snapshot(peer_pid: int, postmaster_pid: int | None, receiver_pid: int) -> dict[str, float]:
    seconds = {"engine": procstat.tree_cpu(peer_pid)}
    if postmaster_pid is not None:
        seconds["postgres"] = procstat.tree_cpu(postmaster_pid)
    seconds["receiver"] = procstat.tree_cpu(receiver_pid)
    seconds["harness"] = time.process_time()
    seconds["box"] = procstat.busy_seconds()
    seconds["wall"] = time.monotonic()
    return seconds


async def _measure(
    peer: Peer,
    process: PeerProcess,
    state: State,
    receiver: ReceiverProcess,
    postmaster_pid: int | None,
    orders: int,
    until: float,
) -> dict[str, Any]:
    ready = await process.expect("ready", min(until, time.monotonic() + START_TIMEOUT))
    await receiver.reset()
    before = _snapshot(process.pid, postmaster_pid, receiver.pid)
    process.send("go")
    enqueued = await process.expect("enqueued", until)
    delivered = await receiver.wait_for(orders, max(0.0, until - time.monotonic()))
    done, total, last = await state.wait_until_done(orders, max(until, time.monotonic() + 3.0))
    after = _snapshot(process.pid, postmaster_pid, receiver.pid)
    ms = cpu_delta(before, after)
    ours = sum(value for role, value in ms.items() if role not in ("box", "wall"))
    seconds = last - enqueued["first_enqueue"] if last is not None else None
    return {
        "versions": ready.get("versions", {}),
        "sent": orders,
        "stored": total,
        "delivered": delivered,
        "completed": done,
        "timed_out": done < orders,
        "seconds": round(seconds, 3) if seconds else None,
        "orders_per_second": round(done / seconds, 1) if seconds and done else None,
        "enqueue_seconds": round(enqueued["enqueue_seconds"], 3),
        "cpu_ms_per_order": {
            role: round(ms[role] / done, 3) if done else None
            for role in ("engine", "postgres", "receiver", "harness")
            if role in ms
        },
        "box": {
            "busy_cores": round(ms["box"] / ms["wall"], 2),
            "others_cores": round(max(0.0, (ms["box"] - ours) / ms["wall"]), 2),
        },
    }


async def run_peer(
    peer: Peer, python: Path, receiver: ReceiverProcess, workdir: Path, orders: int, seconds: float
) -> dict[str, Any]:
    until = time.monotonic() + seconds
    directory = workdir / f"peer-{peer.name}"
    directory.mkdir()
    result: dict[str, Any] = {
        "peer": peer.name,
        "label": peer.label,
        "package": peer.package,
        "database": peer.database,
    }
    server: PostgresServer | None = None
    process: PeerProcess | None = None
    try:
        postmaster_pid = None
        if peer.database == "postgresql":
            server = await asyncio.to_thread(PostgresServer.launch)
            await asyncio.to_thread(server.create_database, "peer")
            database = server.conninfo("peer")
            postmaster_pid = int((server.data_dir / "postmaster.pid").read_text().split()[0])
        else:
            database = str(directory / "dbos.sqlite")
        body = connector_like_body().decode()
        if TEMPLATE_ID not in body:
            raise PeerFailed(f"the connector-like body has no {TEMPLATE_ID!r} to replace")
        config = directory / "config.json"
        config.write_text(
            json.dumps(
                {
                    "receiver_url": receiver.url("/orders"),
                    "ca_file": str(receiver.ca_file),
                    "body": body,
                    "orders": orders,
                    "enqueuers": peer.enqueuers,
                    "concurrency": CONCURRENCY,
                    "database": database,
                    "prefix": "ord_peer",
                }
            )
        )
        process = PeerProcess(python, peer, config, directory / "peer.log")
        state = State(peer, database)
        result.update(await _measure(peer, process, state, receiver, postmaster_pid, orders, until))
    except Exception as exc:  # a peer that breaks is reported, never fails the benchmark
        log = directory / "peer.log"
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
        result["error"] = f"{exc}" + (f" ({' / '.join(tail)})" if tail else "")
    finally:
        if process is not None:
            await asyncio.to_thread(process.stop)
        if server is not None:
            await asyncio.to_thread(server.close)
    return result


async def run_peers(
    receiver: ReceiverProcess, workdir: Path, orders: int, seconds: float
) -> dict[str, Any]:
    """Every peer in turn, or ``{"skipped": reason}`` when the peers' venv cannot be made."""
    print("installing the peers (DBOS Transact, procrastinate) …", flush=True, file=sys.stderr)
    try:
        python = await asyncio.to_thread(venv.ensure)
    except venv.Unavailable as exc:
        return {"skipped": str(exc)}
    runs = []
    for peer in PEERS:
        print(f"running peer {peer.name} …", flush=True, file=sys.stderr)
        runs.append(await run_peer(peer, python, receiver, workdir, orders, seconds))
    return {"venv": str(python.parent.parent), "orders": orders, "runs": runs}
