"""The engine under test: the real ``ordermill`` CLI in subprocesses, and a view of its database.

SQLite runs one ``ordermill serve`` (API and engine in one process). PostgreSQL runs
``ordermill migrate``, then one ``ordermill api`` and N ``ordermill worker`` processes. Each
process gets a session (process group) of its own, so stopping it takes everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

_CLAIMS = re.compile(r'^ordermill_claims_total\{result="(?P<result>\w+)"\} (?P<value>\S+)$')
ORDERMILL = str(Path(sys.executable).parent / "ordermill")
ADMIN_KEY = "bench-admin-key"
SPACE = "bench"
FLOW = "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def flow_document(uri: str) -> dict[str, Any]:
    """One stage, one ``consume-rest-api`` task, no feedback: the issue's benchmark flow."""
    task = {
        "key": "task-1",
        "handlerKey": "consume-rest-api",
        "payload": {"uri": uri, "sendsFeedback": False},
        "timeoutDuration": 10_000,
        "next": [],
    }
    stage = {"key": "stage-1", "initialTaskDefinitionKeys": ["task-1"], "taskDefinitions": [task]}
    return {"key": FLOW, "name": "Benchmark flow", "stages": [stage]}


WAIT_MS = 200


def realistic_flow_document(uri: str, feedback_uri: str) -> dict[str, Any]:
    """Two stages; the first fans out and joins, with a feedback task and a timer beside it.

    Stage 1: ``a`` → (``b`` with ``sendsFeedback``, answered through its ``updateUrl`` by the
    receiver at ``feedback_uri``; ``c``, a ``wait`` of 200 ms) → ``d``, which joins both.
    Stage 2: ``e``. Four connector requests and one feedback per order.
    """

    def connector(
        key: str, next_keys: list[str], *, to: str = uri, feedback: bool = False
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"uri": to, "sendsFeedback": feedback}
        if feedback:
            payload["feedbackTimeoutDuration"] = 60_000
        return {
            "key": key,
            "handlerKey": "consume-rest-api",
            "payload": payload,
            "timeoutDuration": 10_000,
            "next": next_keys,
        }

    wait = {
        "key": "c",
        "handlerKey": "wait",
        "payload": {"durationMs": WAIT_MS},
        "next": ["d"],
    }
    first = {
        "key": "stage-1",
        "initialTaskDefinitionKeys": ["a"],
        "taskDefinitions": [
            connector("a", ["b", "c"]),
            connector("b", ["d"], to=feedback_uri, feedback=True),
            wait,
            connector("d", []),
        ],
    }
    second = {
        "key": "stage-2",
        "initialTaskDefinitionKeys": ["e"],
        "taskDefinitions": [connector("e", [])],
    }
    return {"key": FLOW, "name": "Benchmark flow (realistic)", "stages": [first, second]}


class Engine:
    """ordermill's processes for one scenario; ``workers == 0`` means one ``serve`` process."""

    def __init__(
        self,
        workdir: Path,
        database_url: str,
        ca_file: Path,
        *,
        workers: int,
        extra_env: dict[str, str],
    ) -> None:
        self.workdir = workdir
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("ORDERMILL_")}
        self.env = {
            **inherited,
            "ORDERMILL_DATABASE_URL": database_url,
            "ORDERMILL_HOST": "127.0.0.1",
            "ORDERMILL_PORT": str(self.port),
            "ORDERMILL_ADMIN_KEY": ADMIN_KEY,
            "ORDERMILL_SECRET_KEY": "bench-secret-key-bench-secret-key",
            "ORDERMILL_DATA_DIR": str(workdir / "data"),
            "ORDERMILL_CONNECTOR_CA_FILE": str(ca_file),
            "ORDERMILL_LOG_LEVEL": "WARNING",
            "ORDERMILL_LOG_FORMAT": "json",
            **extra_env,
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        # Where each engine process serves its Prometheus counters (the claims made).
        self.metrics_urls: list[str] = [f"{self.base_url}/metrics"] if workers == 0 else []

    def _spawn(self, name: str, *args: str) -> None:
        with (self.workdir / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [ORDERMILL, *args],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.workers == 0:
            self._spawn("serve", "serve")
            return
        with (self.workdir / "migrate.log").open("ab") as log:
            subprocess.run(
                [ORDERMILL, "migrate"],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=60,
            )
        self._spawn("api", "api")
        for number in range(1, self.workers + 1):
            port = free_port()
            self.metrics_urls.append(f"http://127.0.0.1:{port}/metrics")
            self._spawn(f"worker-{number}", "worker", "--metrics-port", str(port))

    async def claims(self) -> dict[str, float]:
        """Claims the engine processes made so far: ``{"tasks": n, "empty": n}``."""
        found = {"tasks": 0.0, "empty": 0.0}
        async with aiohttp.ClientSession() as session:
            for url in self.metrics_urls:
                async with session.get(url) as response:
                    text = await response.text()
                for line in text.splitlines():
                    match = _CLAIMS.match(line)
                    if match:
                        found[match["result"]] += float(match["value"])
        return found

    def pids(self, role: str) -> list[int]:
        """Process ids by role: ``serve``, ``api`` or ``worker``."""
        return [p.pid for name, p in self.processes.items() if name.split("-")[0] == role]

    def roles(self) -> dict[str, list[int]]:
        return {role: self.pids(role) for role in ("serve", "api", "worker") if self.pids(role)}

    def signal_workers(self, signum: int) -> None:
        """SIGSTOP / SIGCONT the workers, to queue orders while no engine runs."""
        for pid in self.pids("worker"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"ordermill {name} exited with {process.returncode}:\n{self.log_tail(name)}"
                )

    async def wait_ready(self, session: aiohttp.ClientSession, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{self.base_url}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"ordermill did not answer /healthz within {within} s")

    async def create_space_and_flow(
        self, session: aiohttp.ClientSession, flow: dict[str, Any]
    ) -> str:
        """Create the space (allowed to reach 127.0.0.1), its API key and the flow; return key."""
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        space = {"key": SPACE, "connectorAllowNetworks": ["127.0.0.1/32"]}
        key_url = f"{self.base_url}/api/spaces/{SPACE}/api-keys"
        async with session.post(f"{self.base_url}/api/spaces", json=space, headers=admin) as r:
            await _expect(r, 201)
        async with session.post(key_url, json={"name": "bench"}, headers=admin) as r:
            await _expect(r, 201)
            api_key = str((await r.json())["key"])
        headers = {"Authorization": f"Bearer {api_key}"}
        async with session.post(f"{self.base_url}/api/flows", json=flow, headers=headers) as r:
            await _expect(r, 201)
        return api_key

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every process group, then SIGKILL what is still there after ``timeout``."""
        self.signal_workers(signal.SIGCONT)  # a stopped process would not see SIGTERM
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


async def _expect(response: aiohttp.ClientResponse, status: int) -> None:
    if response.status != status:
        raise RuntimeError(
            f"{response.method} {response.url} answered {response.status}: "
            f"{(await response.text())[:500]}"
        )


class Outcomes:
    """Counts of a phase's orders by status, and when the last one ended (read from the DB).

    On PostgreSQL one connection is kept open, so polling forks no new backend each time.
    """

    QUERY = (
        "SELECT status, count(*), max(ended_at) FROM orders "
        "WHERE third_party_order_id LIKE {} GROUP BY status"
    )

    def __init__(self, *, sqlite_path: Path | None = None, conninfo: str | None = None) -> None:
        self.sqlite_path = sqlite_path
        self.conninfo = conninfo
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def of(self, prefix: str) -> tuple[dict[str, int], datetime | None]:
        if self.sqlite_path is not None:
            rows = await asyncio.to_thread(self._sqlite_rows, prefix)
        else:
            if self._conn is None:
                self._conn = await psycopg.AsyncConnection.connect(
                    str(self.conninfo), autocommit=True
                )
            cursor = await self._conn.execute(self.QUERY.format("%s"), (prefix + "%",))
            rows = await cursor.fetchall()
        counts = {str(status): int(count) for status, count, _ in rows}
        ended = [_aware(value) for status, _, value in rows if status == "SUCCESS" and value]
        return counts, (max(ended) if ended else None)

    async def wait_until_ended(
        self, prefix: str, count: int, seconds: float
    ) -> tuple[dict[str, int], datetime | None]:
        """Poll until ``count`` orders of the phase ended (any way) or ``seconds`` passed."""
        end = time.monotonic() + seconds
        ended_states = ("SUCCESS", "FAILURE", "CANCELLED")
        while True:
            counts, last = await self.of(prefix)
            if sum(counts.get(s, 0) for s in ended_states) >= count or time.monotonic() > end:
                return counts, last
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def _sqlite_rows(self, prefix: str) -> list[Any]:
        conn = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(self.QUERY.format("?"), (prefix + "%",)).fetchall()
        finally:
            conn.close()


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite keeps naive UTC text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
