"""ordermill at scale in child processes: one `ordermill api` and N `ordermill worker`s sharing
one PostgreSQL database, each worker serving its own /metrics."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import sqlalchemy

from tests.acceptance.conftest import ADMIN_KEY, ORDERMILL, CliProcess, free_port
from tests.support.invariants import (
    Snapshot,
    Violation,
    check_database,
    report,
    snapshot,
    sync_engine,
)
from tests.support.receiver import HttpsReceiver


def engine_env(database_url: str, ca_file: Path, tmp_path: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "ORDERMILL_DATABASE_URL": database_url,
        "ORDERMILL_PORT": str(port),
        "ORDERMILL_ADMIN_KEY": ADMIN_KEY,
        "ORDERMILL_DATA_DIR": str(tmp_path / "data"),
        "ORDERMILL_CONNECTOR_CA_FILE": str(ca_file),
        "ORDERMILL_CONNECTOR_ALLOW_NETWORKS": "127.0.0.1/32",
        "ORDERMILL_LEASE_SECONDS": "3",
        "ORDERMILL_POLL_INTERVAL_SECONDS": "0.2",
        "ORDERMILL_WORKER_CONCURRENCY": "16",
        "ORDERMILL_LOG_LEVEL": "WARNING",
    }


def wait_healthy(base_url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base_url} did not come up")


@dataclass
class Cluster:
    """The running processes; a worker restarted keeps its slot and its metrics port."""

    base_url: str
    env: dict[str, str]
    tmp_path: Path
    api: CliProcess
    workers: list[CliProcess]
    metrics_ports: list[int]
    restarts: int = 0

    def start_worker(self, index: int) -> CliProcess:
        self.restarts += 1
        log = self.tmp_path / f"worker{index}.{self.restarts}.log"
        args = ["worker", "--metrics-port", str(self.metrics_ports[index])]
        process = CliProcess(args, self.env, log).start()
        if index < len(self.workers):
            self.workers[index] = process
        else:
            self.workers.append(process)
        return process

    def metrics_urls(self) -> list[str]:
        workers = [f"http://127.0.0.1:{port}/metrics" for port in self.metrics_ports]
        return [f"{self.base_url}/metrics", *workers]

    def logs(self) -> str:
        """Tracebacks and errors from every process log, for failure messages."""
        lines = []
        for path in sorted(self.tmp_path.glob("*.log")):
            text = path.read_text(errors="replace")
            lines += [f"{path.name}: {line}" for line in text.splitlines() if "Traceback" in line]
        return "\n".join(lines[-20:])


def metric_total(urls: list[str], name: str) -> tuple[float, list[str]]:
    """The sum of metric `name` over every process; and the processes that do not export it."""
    total, missing = 0.0, []
    for url in urls:
        text = _metrics_text(url)
        samples = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and line[len(name)] in " {"
        ]
        if not samples:
            missing.append(url)
        total += sum(samples)
    return total, missing


def _metrics_text(url: str, *, within: float = 30.0) -> str:
    """A process's metrics page; a worker restarted moments ago may still be starting."""
    deadline = time.monotonic() + within
    while True:
        try:
            return httpx2.get(url, timeout=10).text
        except httpx2.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextmanager
def postgres_cluster(
    postgres_url: str, ca_file: Path, tmp_path: Path, *, workers: int = 2, **env: str
) -> Iterator[Cluster]:
    """A migrated database, one `ordermill api` and `workers` workers, stopped on exit."""
    port = free_port()
    full_env = {**engine_env(postgres_url, ca_file, tmp_path, port), **env}
    migrate = [ORDERMILL, "migrate"]
    subprocess.run(migrate, env=full_env, check=True, capture_output=True, timeout=60)
    api = CliProcess(["api"], full_env, tmp_path / "api.log").start()
    cluster = Cluster(
        base_url=f"http://127.0.0.1:{port}",
        env=full_env,
        tmp_path=tmp_path,
        api=api,
        workers=[],
        metrics_ports=[free_port() for _ in range(workers)],
    )
    try:
        for index in range(workers):
            cluster.start_worker(index)
        wait_healthy(cluster.base_url)
        yield cluster
    finally:
        for process in (cluster.api, *cluster.workers):
            process.stop()


def wait_settled(
    database_url: str,
    *,
    timeout: float,
    quiet: float = 3.0,
    busy: Callable[[], bool] = lambda: False,
    between: Callable[[], None] = lambda: None,
) -> Snapshot:
    """Poll the database until every order is final, or no task is live (and the test is not
    `busy` answering) for `quiet` seconds: an order stuck without live work never moves again.
    `between` runs at each poll. Gives up after `timeout`."""
    engine = sync_engine(database_url)
    deadline = time.monotonic() + timeout
    idle_since: float | None = None
    try:
        while True:
            try:
                now = snapshot(engine)
            except sqlalchemy.exc.OperationalError:  # the database is restarting
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
                continue
            if now.unsettled == 0 or time.monotonic() > deadline:
                return now
            if now.live_tasks or busy():
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= quiet:
                return now
            between()
            time.sleep(0.25)
    finally:
        engine.dispose()


RECONCILED = "ordermill_orders_reconciled_total"


@dataclass(frozen=True)
class Verdict:
    """The end of a run: the invariant checker's findings and the reconcile counter."""

    violations: list[Violation]
    reconciled: float  # summed over the processes running now
    unexported: list[str]  # the /metrics URLs without the counter
    logs: str

    def assert_clean(self, summary: str) -> None:
        assert not self.violations, f"{summary}\n{report(self.violations)}\n{self.logs}"
        assert not self.unexported, f"{RECONCILED} is not exported by {self.unexported}: {summary}"
        assert self.reconciled == 0, f"{RECONCILED} = {self.reconciled}: {summary}"


def judge(cluster: Cluster, receiver: HttpsReceiver) -> Verdict:
    """Read every process's reconcile counter while it runs, then check the database against
    the invariants and the receiver's deliveries."""
    reconciled, unexported = metric_total(cluster.metrics_urls(), RECONCILED)
    database_url = cluster.env["ORDERMILL_DATABASE_URL"]
    violations = check_database(database_url, deliveries=receiver.delivery_ids())
    return Verdict(violations, reconciled, unexported, cluster.logs())
