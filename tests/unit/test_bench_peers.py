"""The peers' side of the benchmark: the order each peer posts, and the table beside ordermill."""

from __future__ import annotations

import json
from typing import Any

from bench.ceilings import connector_like_body
from bench.peers.program import TEMPLATE_ID, Config
from bench.report import peers_section


def config() -> Config:
    return Config(
        receiver_url="https://127.0.0.1:1/orders",
        ca_file="ca.pem",
        body=connector_like_body().decode(),
        orders=3,
        enqueuers=1,
        concurrency=1,
        database="peer.sqlite",
        prefix="ord_peer",
    )


def test_each_peer_order_is_the_connector_body_with_its_own_order_id() -> None:
    peer = config()
    first, second = peer.order_id(7), peer.order_id(8)
    assert first != second
    assert len(first) == len(TEMPLATE_ID)
    document = json.loads(peer.body_of(first))
    template = json.loads(peer.body)
    assert document["context"]["orderId"] == first
    assert document["order"] == template["order"]


def scenario(name: str, engine: float, postgres: float | None) -> dict[str, Any]:
    cpu = {"engine": engine, "postgres": postgres}
    peak = {
        "completed": 10,
        "sent": 10,
        "orders_per_second": 100.0,
        "cpu_ms_per_order": cpu,
        "box": {"others_cores": 0.1},
    }
    return {"scenario": name, "phases": {"peak": peak}}


def peer_run(engine: float) -> dict[str, Any]:
    return {
        "peer": "procrastinate-pg",
        "label": "procrastinate, PostgreSQL",
        "package": "procrastinate",
        "versions": {"procrastinate": "3.10.0"},
        "sent": 10,
        "completed": 10,
        "timed_out": False,
        "orders_per_second": 200.0,
        "cpu_ms_per_order": {"engine": engine, "postgres": 1.0},
        "box": {"others_cores": 0.2},
    }


def test_the_peers_table_gives_ordermills_cpu_as_a_multiple_of_each_peers() -> None:
    results = {
        "scenarios": [scenario("sqlite", 3.0, None), scenario("pg1", 4.0, 1.5)],
        "peers": {"runs": [peer_run(2.0)]},
    }
    text = "\n".join(peers_section(results))
    row = next(line for line in text.splitlines() if line.startswith("| procrastinate"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[0] == "procrastinate, PostgreSQL (procrastinate 3.10.0; enqueued in-process)"
    assert cells[3:7] == ["2.00", "1.00", "3.00", "2.00×"]  # pg1 4.0 ÷ 2.0
    assert cells[8] == "1.50×"  # sqlite 3.0 ÷ 2.0
    assert any(line.startswith("| ordermill pg1 (peak") for line in text.splitlines())


def test_skipped_and_broken_peers_are_reported_not_raised() -> None:
    skipped = {"scenarios": [], "peers": {"skipped": "pip install … exited with 1: no network"}}
    assert "Peers skipped: pip install … exited with 1: no network" in "\n".join(
        peers_section(skipped)
    )
    broken = {
        "scenarios": [scenario("pg1", 4.0, 1.5)],
        "peers": {"runs": [{"label": "DBOS Transact, SQLite", "error": "no 'ready' in time"}]},
    }
    assert "failed: no 'ready' in time" in "\n".join(peers_section(broken))
    assert peers_section({"scenarios": []}) == []
