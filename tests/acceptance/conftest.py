"""Acceptance fixtures: the real `ordermill` CLI in a subprocess and real https receivers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.support.receiver import HttpsReceiver

ADMIN_KEY = "acceptance-admin-key"
ORDERMILL = str(Path(sys.executable).parent / "ordermill")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class CliProcess:
    """An `ordermill` subcommand in a child process, logging to a file; restartable."""

    def __init__(
        self, args: list[str], env: dict[str, str], log_path: Path, cwd: Path | None = None
    ) -> None:
        self.args, self.env, self.log_path, self.cwd = args, env, log_path, cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> CliProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [ORDERMILL, *self.args],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class ServeProcess(CliProcess):
    """`ordermill serve` in a subprocess, restartable on the same database."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, **env, "ORDERMILL_PORT": str(self.port)}
        super().__init__(["serve"], full_env, workdir / "serve.log", cwd=workdir)

    def start(self, *args: str) -> ServeProcess:
        self.args = ["serve", *args]
        super().start()
        assert self.process is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"ordermill serve exited early:\n{self.log()}")
            try:
                if httpx2.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx2.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"ordermill serve did not start in 30 s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def serve_env(tmp_path: Path, https_receiver: HttpsReceiver) -> dict[str, str]:
    return {
        "ORDERMILL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/ordermill.db",
        "ORDERMILL_DATA_DIR": str(tmp_path / "data"),
        "ORDERMILL_ADMIN_KEY": ADMIN_KEY,
        "ORDERMILL_CONNECTOR_CA_FILE": str(https_receiver.ca_pem_path),
        "ORDERMILL_CONNECTOR_ALLOW_NETWORKS": "127.0.0.1/32",
        "ORDERMILL_POLL_INTERVAL_SECONDS": "0.1",
        "ORDERMILL_LEASE_SECONDS": "5",
        "ORDERMILL_LOG_FORMAT": "json",
    }


@pytest.fixture
def serve(tmp_path: Path, serve_env: dict[str, str]) -> Iterator[ServeProcess]:
    process = ServeProcess(tmp_path, serve_env).start()
    try:
        yield process
    finally:
        process.stop()


class Api:
    """A small client for the running server, authenticated as one space."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx2.Client(base_url=base_url, timeout=10)
        self.headers = {"Authorization": f"Bearer {ADMIN_KEY}"}

    def create_space(self, key: str = "acme") -> None:
        response = self.http.post("/api/spaces", json={"key": key}, headers=self.headers)
        assert response.status_code == 201, response.text
        response = self.http.post(
            f"/api/spaces/{key}/api-keys", json={"name": "t"}, headers=self.headers
        )
        assert response.status_code == 201, response.text
        self.headers = {"Authorization": f"Bearer {response.json()['key']}"}

    def post(self, path: str, body: Any) -> httpx2.Response:
        return self.http.post(path, json=body, headers=self.headers)

    def get(self, path: str) -> Any:
        response = self.http.get(path, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for(self, order_id: str, *statuses: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        order: dict[str, Any] = {}
        while time.monotonic() < deadline:
            order = self.get(f"/api/orders/{order_id}")
            if order["status"] in statuses:
                return order
            time.sleep(0.05)
        raise AssertionError(f"order never reached {statuses}; last seen {order}")

    def wait_for_task(
        self, order_id: str, task_key: str, status: str, timeout: float = 30.0
    ) -> None:
        deadline = time.monotonic() + timeout
        task: dict[str, Any] = {}
        while time.monotonic() < deadline:
            order = self.get(f"/api/orders/{order_id}")
            task = next((t for t in order["tasks"] if t["key"] == task_key), {})
            if task.get("status") == status:
                return
            time.sleep(0.05)
        raise AssertionError(f"task {task_key} never reached {status}; last seen {task}")

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def api(serve: ServeProcess) -> Iterator[Api]:
    client = Api(serve.base_url)
    client.create_space()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def make_api() -> Iterator[Callable[[str], Api]]:
    clients: list[Api] = []

    def make(base_url: str) -> Api:
        client = Api(base_url)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
