"""Two predecessors of a join that end on different paths at the same moment, on PostgreSQL.

`b` ends when its connector answers (a worker records the attempt) and `c` when its timer fires
(the timer loop); both have `next: [d]`. Each completion must see the other, so that exactly one
of them queues `d`, whichever commits last; otherwise the order stays IN_PROGRESS for ever.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.acceptance.cluster import RECONCILED, judge, postgres_cluster, wait_settled
from tests.acceptance.conftest import ADMIN_KEY
from tests.support.factories import order_doc, rest_task, stage_doc, staged_flow, wait_task
from tests.support.receiver import HttpsReceiver, Reply

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ORDERS = 200
POSTERS = 8


def join_flow(base: str) -> dict[str, Any]:
    def rest(key: str, next_: list[str]) -> dict[str, Any]:
        return rest_task(f"{base}/{key}", key, next_, timeoutDuration=10_000)

    fan = [rest("a", ["b", "c"]), rest("b", ["d"]), wait_task("c", 500, ["d"]), rest("d", [])]
    return staged_flow(
        "join",
        "Join of a connector and a timer",
        stage_doc("fan", ["a"], fan),
        stage_doc("after", ["e"], [rest("e", [])]),
    )


def post_orders(base_url: str, flow: dict[str, Any], prefix: str, count: int) -> list[str]:
    """Create the space and the flow, then `count` orders, `POSTERS` at a time."""
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx2.Client(base_url=base_url, timeout=30, headers=admin) as http:
        assert http.post("/api/spaces", json={"key": "acme"}).status_code == 201
        response = http.post("/api/flows", json=flow)
        assert response.status_code == 201, response.text

        def create(n: int) -> str:
            body = order_doc(f"{prefix}-{n}", flow_key=flow["key"])
            response = http.post("/api/orders", json=body)
            assert response.status_code == 201, response.text
            order_id: str = response.json()["id"]
            return order_id

        with ThreadPoolExecutor(POSTERS) as pool:
            return list(pool.map(create, range(count)))


def test_a_join_of_a_connector_and_a_timer_always_starts(
    postgres_url: str, https_receiver: HttpsReceiver, tmp_path: Path
) -> None:
    """api + 2 workers, 200 orders: every one ends SUCCESS, no invariant breaks, and the
    reconcile pass had nothing to repair."""
    https_receiver.script("/b", Reply(status=201, body={"ok": True}, delay=0.5))
    flow = join_flow(https_receiver.base_url)
    with postgres_cluster(postgres_url, https_receiver.ca_pem_path, tmp_path) as cluster:
        ids = post_orders(cluster.base_url, flow, "JOIN", ORDERS)
        settled = wait_settled(postgres_url, timeout=90)
        verdict = judge(cluster, https_receiver)

    stuck = sorted({v.order_id for v in verdict.violations if v.rule == "not-final"})
    summary = (
        f"{len(ids)} orders: {dict(Counter(settled.orders))}; {len(stuck)} stuck; "
        f"{RECONCILED} = {verdict.reconciled} (not exported by {verdict.unexported or 'none'})"
    )
    print(summary)
    verdict.assert_clean(summary)
    assert settled.orders == {"SUCCESS": ORDERS}, summary
