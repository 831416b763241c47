"""Chaos: real processes are killed and the database goes away; every order still ends SUCCESS.

Bounded in time: each scenario gives up after a few minutes and says what it saw.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest

from tests.acceptance.cluster import engine_env, postgres_cluster
from tests.acceptance.conftest import ADMIN_KEY, ServeProcess
from tests.support.factories import order_doc
from tests.support.postgres import PostgresServer
from tests.support.receiver import ReceiverProcess

pytestmark = pytest.mark.slow

ORDERS = 200


def two_stage_flow(uri: str) -> dict[str, Any]:
    def task(key: str) -> dict[str, Any]:
        return {
            "key": key,
            "handlerKey": "consume-rest-api",
            "payload": {"uri": f"{uri}/{key}"},
            "timeoutDuration": 10_000,
            "retry": {"maxAttempts": 20, "initialIntervalMs": 100, "maxIntervalMs": 1000},
            "next": [],
        }

    return {
        "key": "chaos",
        "name": "Chaos two-stage",
        "stages": [
            {
                "key": "make",
                "initialTaskDefinitionKeys": ["produce"],
                "taskDefinitions": [task("produce")],
            },
            {
                "key": "ship",
                "initialTaskDefinitionKeys": ["dispatch"],
                "taskDefinitions": [task("dispatch")],
            },
        ],
    }


@pytest.fixture
def slow_receiver(tmp_path: Path) -> Iterator[ReceiverProcess]:
    receiver = ReceiverProcess(tmp_path / "receiver", delay_ms=150).start()
    try:
        yield receiver
    finally:
        receiver.stop()


def post_orders(base_url: str, receiver: ReceiverProcess, prefix: str) -> list[str]:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx2.Client(base_url=base_url, timeout=30, headers=admin) as http:
        assert http.post("/api/spaces", json={"key": "acme"}).status_code == 201
        flow = {**two_stage_flow(receiver.url("").rstrip("/")), "spaceKey": "acme"}
        response = http.post("/api/flows", json=flow)
        assert response.status_code == 201, response.text
        ids = []
        for n in range(ORDERS):
            body = order_doc(f"{prefix}-{n}", flow_key="chaos")
            response = http.post("/api/orders", json=body)
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        return ids


def count_succeeded(base_url: str) -> int:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    try:
        response = httpx2.get(
            f"{base_url}/api/orders",
            params={"spaceKey": "acme", "status": "SUCCESS", "limit": 500},
            headers=admin,
            timeout=10,
        )
    except httpx2.TransportError:
        return -1
    if response.status_code != 200:
        return -1
    return len(response.json()["items"])


def wait_all_succeeded(base_url: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline:
        done = count_succeeded(base_url)
        if done == ORDERS:
            return
        time.sleep(0.5)
    raise AssertionError(f"only {done} of {ORDERS} orders reached SUCCESS in {timeout:.0f} s")


def wait_deliveries(receiver: ReceiverProcess, at_least: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(receiver.deliveries()) < at_least:
        time.sleep(0.05)


def assert_delivery_ids_consistent(receiver: ReceiverProcess) -> None:
    """Every request seen more than once carried the same webhook-id as its delivery id."""
    pairs = {(d["deliveryId"], d["webhookId"]) for d in receiver.deliveries()}
    per_delivery = Counter(delivery for delivery, _ in pairs)
    assert all(count == 1 for count in per_delivery.values())
    assert all(delivery == webhook for delivery, webhook in pairs)


def assert_no_double_success(conninfo: str) -> None:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT task_id, count(*) FROM attempts WHERE outcome = 'succeeded' "
            "GROUP BY task_id HAVING count(*) > 1"
        ).fetchall()
        tasks = conn.execute("SELECT count(*) FROM tasks WHERE status = 'SUCCEEDED'").fetchone()
    assert rows == []
    assert tasks is not None
    assert tasks[0] == 2 * ORDERS


@pytest.mark.postgres
def test_a_worker_killed_mid_run_loses_nothing_on_postgres(
    postgres_server: PostgresServer,
    postgres_url: str,
    slow_receiver: ReceiverProcess,
    tmp_path: Path,
) -> None:
    with postgres_cluster(postgres_url, slow_receiver.ca_pem_path, tmp_path) as cluster:
        post_orders(cluster.base_url, slow_receiver, "PG")
        wait_deliveries(slow_receiver, ORDERS // 2)
        cluster.workers[0].kill()
        cluster.start_worker(0)

        wait_all_succeeded(cluster.base_url)

    dbname = postgres_url.rsplit("/", 1)[-1]
    assert_no_double_success(postgres_server.conninfo(dbname))
    assert_delivery_ids_consistent(slow_receiver)


@pytest.mark.postgres
def test_postgres_stopped_for_five_seconds_mid_run(
    postgres_server: PostgresServer,
    postgres_url: str,
    slow_receiver: ReceiverProcess,
    tmp_path: Path,
) -> None:
    with postgres_cluster(postgres_url, slow_receiver.ca_pem_path, tmp_path) as cluster:
        base_url = cluster.base_url
        post_orders(base_url, slow_receiver, "DOWN")
        wait_deliveries(slow_receiver, ORDERS // 3)
        postgres_server.stop("fast")
        try:
            response = httpx2.get(
                f"{base_url}/api/orders",
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                params={"spaceKey": "acme"},
                timeout=30,
            )
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"
            ready = httpx2.get(f"{base_url}/readyz", timeout=30)
            assert ready.status_code == 503
            time.sleep(5)  # the outage itself, not a synchronisation
        finally:
            postgres_server.start()

        wait_all_succeeded(base_url)
    assert "Traceback" not in (tmp_path / "api.log").read_text()


def test_the_single_sqlite_process_killed_mid_run_loses_nothing(
    slow_receiver: ReceiverProcess, tmp_path: Path
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/ordermill.db"
    env = engine_env(database_url, slow_receiver.ca_pem_path, tmp_path, 0)
    env = {key: value for key, value in env.items() if key != "ORDERMILL_PORT"}
    serve = ServeProcess(tmp_path, env).start()
    try:
        post_orders(serve.base_url, slow_receiver, "LITE")
        wait_deliveries(slow_receiver, ORDERS // 2)
        serve.kill()
        serve.start()

        wait_all_succeeded(serve.base_url)
    finally:
        serve.stop()
    assert_delivery_ids_consistent(slow_receiver)
