"""On PostgreSQL each intake wakes one worker, not every worker; the live workers take turns
(the turn passes every ``TURN_SECONDS``).

`ordermill api` and three `ordermill worker`s that poll only every 30 s: an order that starts
within a few seconds was started by a wake-up. Each worker's `ordermill_claims_total` says how
many of its claims found work and how many came back empty.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx2
import pytest

from ordermill.storage.notify import TURN_SECONDS
from tests.acceptance.cluster import Cluster, postgres_cluster
from tests.acceptance.conftest import ADMIN_KEY
from tests.support.factories import order_doc, rest_task, stage_doc, staged_flow
from tests.support.receiver import HttpsReceiver

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ORDERS = 24
STARTS_WITHIN = 5.0  # seconds; far below the 30 s poll


def claims(url: str) -> dict[str, float]:
    """A worker's claims by result (``tasks``, ``empty``)."""
    found = {"tasks": 0.0, "empty": 0.0}
    for line in httpx2.get(url, timeout=10).text.splitlines():
        if line.startswith("ordermill_claims_total{"):
            label, value = line.rsplit(" ", 1)
            result = label.split('result="', 1)[1].split('"', 1)[0]
            found[result] = float(value)
    return found


def run_one_at_a_time(
    cluster: Cluster, http: httpx2.Client, prefix: str, count: int, *, apart: float = 0.0
) -> None:
    """Post ``count`` orders, each ``apart`` seconds after the one before succeeded; each must
    succeed soon."""
    for n in range(count):
        time.sleep(apart)
        response = http.post("/api/orders", json=order_doc(f"{prefix}-{n}", flow_key="one"))
        assert response.status_code == 201, response.text
        order_id = response.json()["id"]
        deadline = time.monotonic() + STARTS_WITHIN
        status = ""
        while time.monotonic() < deadline:
            status = http.get(f"/api/orders/{order_id}").json()["status"]
            if status == "SUCCESS":
                break
            time.sleep(0.02)
        assert status == "SUCCESS", (
            f"order {n} of {prefix} is {status} after {STARTS_WITHIN} s: no wake-up reached a "
            f"worker\n{cluster.logs()}"
        )


def test_each_intake_wakes_one_live_worker_in_turn(
    postgres_url: str, https_receiver: HttpsReceiver, tmp_path: Path
) -> None:
    flow = staged_flow(
        "one",
        "One connector",
        stage_doc("only", ["call"], [rest_task(f"{https_receiver.base_url}/o", "call", [])]),
    )
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with postgres_cluster(
        postgres_url,
        https_receiver.ca_pem_path,
        tmp_path,
        workers=3,
        ORDERMILL_POLL_INTERVAL_SECONDS="30",
    ) as cluster:
        worker_urls = cluster.metrics_urls()[1:]
        with httpx2.Client(base_url=cluster.base_url, timeout=30, headers=admin) as http:
            assert http.post("/api/spaces", json={"key": "acme"}).status_code == 201
            assert http.post("/api/flows", json=flow).status_code == 201
            # The first order lets the api read the list of live workers.
            run_one_at_a_time(cluster, http, "WARM", 1)
            time.sleep(0.5)
            before = [claims(url) for url in worker_urls]
            # Orders further apart than a turn: each goes to the next worker.
            run_one_at_a_time(cluster, http, "TURN", ORDERS, apart=TURN_SECONDS + 0.02)
            after = [claims(url) for url in worker_urls]

            took = [a["tasks"] - b["tasks"] for a, b in zip(after, before, strict=True)]
            empty = sum(a["empty"] - b["empty"] for a, b in zip(after, before, strict=True))
            summary = f"claims with tasks per worker {took}, empty claims {empty}"
            print(summary)
            assert sum(took) >= ORDERS, summary
            assert all(n >= ORDERS / 3 - 2 for n in took), f"not in turn: {summary}"
            # The list of workers is read anew every 2 s; meanwhile wake-ups reach every worker.
            assert empty <= 6, f"wake-ups reached more than one worker: {summary}"

            # A killed worker drops out of the list; the other two get every wake-up.
            cluster.workers[0].kill()
            time.sleep(3.0)  # longer than the api's 2 s between readings of the list
            run_one_at_a_time(cluster, http, "LEFT", 8)
