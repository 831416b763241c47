"""Statements per order on PostgreSQL, from pg_stat_statements: a figure no noise can move.

``enable`` loads the extension into a server we launched (one restart); ``per_order`` reads
what ordermill executed in its database, divided by the orders in it.
"""

from __future__ import annotations

import re
from typing import Any

from tests.support.postgres import PostgresServer

TRANSACTION_ENDS = ("COMMIT", "ROLLBACK")


def enable(server: PostgresServer, dbname: str) -> None:
    """Preload pg_stat_statements (restarting the server) and create it in ``dbname``."""
    with server.connect() as conn:
        conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    server.stop()
    server.start()
    with server.connect(dbname) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")


def _short(query: str, width: int = 90) -> str:
    text = re.sub(r"\s+", " ", query).strip()
    # "INSERT INTO events (order_id, …) VALUES …" -> keep the verb and the table.
    text = re.sub(r"\(([^()]{40,})\)", "(…)", text)
    return text if len(text) <= width else text[: width - 1] + "…"


def per_order(server: PostgresServer, dbname: str, top: int = 40) -> dict[str, Any]:
    """Calls per order of ordermill's statements (the benchmark's own probes left out)."""
    with server.connect(dbname) as conn:
        orders = conn.execute("SELECT count(*) FROM orders").fetchone()
        rows = conn.execute(
            "SELECT s.query, s.calls, s.total_exec_time, s.rows FROM pg_stat_statements s "
            "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = %s ORDER BY s.calls DESC",
            (dbname,),
        ).fetchall()
    count = int(orders[0]) if orders else 0
    mine = [row for row in rows if "third_party_order_id LIKE" not in row[0]]
    if not count or not mine:
        return {"orders": count}
    ends = sum(calls for query, calls, _, _ in mine if query.strip().upper() in TRANSACTION_ENDS)
    statements = sum(calls for query, calls, _, _ in mine)
    return {
        "orders": count,
        "statements_per_order": round(statements / count, 2),
        "transactions_per_order": round(ends / count, 2),
        "exec_ms_per_order": round(sum(row[2] for row in mine) / count, 3),
        "top": [
            {
                "calls_per_order": round(calls / count, 2),
                "rows_per_call": round(n_rows / calls, 2) if calls else None,
                "mean_exec_ms": round(total / calls, 3) if calls else None,
                "query": _short(query),
            }
            for query, calls, total, n_rows in mine[:top]
        ],
    }
