"""``python bench/volume.py``: reading orders when a million are stored (both databases).

For each database it makes a fresh one with ``ordermill``'s migrations, measures intake on the
empty database (``Store.create_order``, concurrent, group commit), then adds ``--orders``
synthetic orders in bulk (their rows and search texts, written straight to the tables, spread
over a year), measures intake again, and times the reads the API and the UI make: the first
page of the list, filters by status, flow, creation and deadline ranges, cursor paging, an
order by id, and the search box (a customer reference, an e-mail, a common city, an order id).
Each read runs ``--repeat`` times in-process (no HTTP), after two warm-up runs; the report gives
p50 and p95 in milliseconds against the 50 ms aim. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `tests.support` imports from the project root

from sqlalchemy import insert  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

from ordermill.config import Settings  # noqa: E402
from ordermill.flows.status import OrderStatus  # noqa: E402
from ordermill.service import Service  # noqa: E402
from ordermill.storage import tables as t  # noqa: E402
from ordermill.storage.orders import OrderFilter, body_hash  # noqa: E402
from ordermill.storage.search import insert_rows, search_row  # noqa: E402
from ordermill.ui.reads import status_counts  # noqa: E402

AIM_MS = 50.0
SPACE = "acme"
FLOWS = ("made-to-order", "reprint")
CITIES = [f"city-{n:02d}" for n in range(20)]
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
BATCH = 5_000
INTAKE_ORDERS = 2_000
INTAKE_CONCURRENCY = 32


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/volume.py", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders stored (1,000,000)")
    parser.add_argument("--databases", default="sqlite,postgresql", help="sqlite, postgresql")
    parser.add_argument("--repeat", type=int, default=30, help="runs of each read (30)")
    return parser.parse_args(argv)


def flow_document(key: str) -> dict[str, Any]:
    task = {
        "key": "book-erp",
        "handlerKey": "consume-rest-api",
        "payload": {"uri": "https://127.0.0.1:9/orders"},
        "next": [],
    }
    stage = {"key": "book", "initialTaskDefinitionKeys": ["book-erp"], "taskDefinitions": [task]}
    return {"key": key, "name": key, "stages": [stage]}


def order_id_at(at: datetime, rng: random.Random) -> str:
    """An order id as ``new_id`` makes it, for a past moment (ids sort by creation)."""
    value = (int(at.timestamp() * 1000) << 80) | rng.getrandbits(80)
    chars = []
    for _ in range(26):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return "ord_" + "".join(reversed(chars))


def order_body(n: int, flow_key: str, city: str, deadline: datetime) -> dict[str, Any]:
    return {
        "spaceKey": SPACE,
        "flowKey": flow_key,
        "thirdPartyOrderId": f"VOL-{n:07d}",
        "addresses": [{"addressType": "postal", "purpose": "shipping", "data": {"city": city}}],
        "data": {"customerReference": f"ACME-PO-{n:07d}", "customerEmail": f"c{n}@example.com"},
        "orderLines": [
            {
                "orderId": f"VOL-{n:07d}-1",
                "title": "Custom bracelet",
                "deadline": deadline.isoformat().replace("+00:00", "Z"),
                "data": {},
                "items": [],
            }
        ],
    }


async def fill(service: Service, count: int, flow_ids: dict[str, int], seed: int) -> list[str]:
    """Store ``count`` orders straight into the tables, oldest first; returns a sample of ids."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / count
    dialect = service.db.dialect
    sample: list[str] = []
    written = 0
    began = time.perf_counter()
    while written < count:
        orders, search = [], []
        for n in range(written, min(written + BATCH, count)):
            at = start + step * n
            flow_key = FLOWS[1] if n % 10 == 0 else FLOWS[0]
            status = (
                OrderStatus.FAILURE
                if n % 50 == 0
                else OrderStatus.IN_PROGRESS
                if n > count - 2_000
                else OrderStatus.SUCCESS
            )
            body = order_body(n, flow_key, CITIES[n % len(CITIES)], at + timedelta(days=7))
            order_id = order_id_at(at, rng)
            orders.append(
                {
                    "id": order_id,
                    "space_key": SPACE,
                    "flow_id": flow_ids[flow_key],
                    "flow_key": flow_key,
                    "flow_version": 1,
                    "third_party_order_id": body["thirdPartyOrderId"],
                    "status": status.value,
                    "body": body,
                    "body_hash": body_hash(flow_key, body),
                    "value": 0.0,
                    "deadline": at + timedelta(days=7),
                    "created_at": at,
                    "updated_at": at,
                    "ended_at": None if status is OrderStatus.IN_PROGRESS else at,
                }
            )
            search.append(search_row(order_id, SPACE, body))
            if n % max(1, count // 500) == 0:
                sample.append(order_id)
        async with service.db.transaction() as conn:
            await conn.execute(insert(t.orders), orders)
            await conn.execute(insert_rows(dialect), search)
        written += len(orders)
        if written % 100_000 < BATCH:
            rate = written / (time.perf_counter() - began)
            print(f"  {written:,} orders stored ({rate:,.0f}/s)", flush=True)
    if dialect == "postgresql":
        async with service.db.autocommit() as conn:
            await conn.exec_driver_sql("ANALYZE")
    return sample


async def intake_rate(service: Service, prefix: str) -> float:
    """Orders per second through ``Store.create_order``, ``INTAKE_CONCURRENCY`` at a time."""
    queue = list(range(INTAKE_ORDERS))
    deadline = datetime.now(UTC) + timedelta(days=7)

    async def post() -> None:
        while queue:
            n = queue.pop()
            body = order_body(n, FLOWS[0], "Gent", deadline)
            body["thirdPartyOrderId"] = f"{prefix}-{n}"
            await service.store.create_order(SPACE, FLOWS[0], body, start=True, actor="bench")

    began = time.perf_counter()
    await asyncio.gather(*(post() for _ in range(INTAKE_CONCURRENCY)))
    return INTAKE_ORDERS / (time.perf_counter() - began)


async def timed(read: Callable[[], Awaitable[int]], repeat: int) -> tuple[float, float, int]:
    """p50 and p95 in ms, and the rows of the last run."""
    rows = 0
    for _ in range(2):
        rows = await read()
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        rows = await read()
        runs.append((time.perf_counter() - began) * 1000)
    runs.sort()
    return statistics.median(runs), runs[min(len(runs) - 1, int(len(runs) * 0.95))], rows


def reads(service: Service, count: int, sample: list[str]) -> dict[str, Callable[[], Any]]:
    store = service.store
    rng = random.Random(7)
    now = datetime.now(UTC)
    day = now - timedelta(days=200)

    async def listing(filters: OrderFilter, after: str | None = None) -> int:
        return len(await store.list_orders(SPACE, filters, limit=50, after=after))

    failed = OrderFilter(status=(OrderStatus.FAILURE,))
    cursor: list[str | None] = [None]

    async def deep_page() -> int:
        """The 11th page of FAILURE orders, by the cursor the 10th page ended with."""
        if cursor[0] is None:
            after = None
            for _ in range(10):
                page = await store.list_orders(SPACE, failed, limit=50, after=after)
                after = page[-1].id if page else after
            cursor[0] = after
        return await listing(failed, cursor[0])

    async def by_id() -> int:
        await store.get_order(SPACE, rng.choice(sample))
        return 1

    async def counts() -> int:
        return len(await status_counts(service.db, SPACE, OrderFilter()))

    def search(text: Callable[[], str]) -> Callable[[], Awaitable[int]]:
        return lambda: listing(OrderFilter(search=text()))

    return {
        "list: first page, newest first": lambda: listing(OrderFilter()),
        "filter: status FAILURE": lambda: listing(OrderFilter(status=(OrderStatus.FAILURE,))),
        "filter: flow (a tenth of the orders)": lambda: listing(OrderFilter(flow_key=FLOWS[1])),
        "filter: created within one day": lambda: listing(
            OrderFilter(created_from=day, created_to=day + timedelta(days=1))
        ),
        "filter: deadline within one day": lambda: listing(
            OrderFilter(deadline_from=day, deadline_to=day + timedelta(days=1))
        ),
        "paging: the 11th page of FAILURE": deep_page,
        "get: one order by id": by_id,
        "search: a customer reference": search(lambda: f"ACME-PO-{rng.randrange(count):07d}"),
        "search: an e-mail": search(lambda: f"c{rng.randrange(count)}@example.com"),
        "search: a city (1 in 20 orders)": search(lambda: rng.choice(CITIES)),
        "search: an order id": search(lambda: rng.choice(sample)),
        "UI: orders per status (the list's counts)": counts,
        "search: city and status FAILURE": lambda: listing(
            OrderFilter(search=rng.choice(CITIES), status=(OrderStatus.FAILURE,))
        ),
    }


async def measure(database: str, url: str, args: argparse.Namespace, work: Path) -> list[str]:
    settings = Settings(database_url=url, data_dir=work / "data", admin_key="volume-bench")
    service = await Service.open(settings)
    lines = [f"### {database}: {args.orders:,} orders stored", ""]
    try:
        await service.store.spaces.create_space(SPACE)
        flow_ids = {}
        for key in FLOWS:
            record, _ = await service.save_flow(SPACE, flow_document(key))
            flow_ids[key] = record.id
        empty = await intake_rate(service, "EMPTY")
        print(f"{database}: intake on the empty database {empty:,.0f} orders/s", flush=True)
        began = time.perf_counter()
        sample = await fill(service, args.orders, flow_ids, seed=1)
        filled = time.perf_counter() - began
        full = await intake_rate(service, "FULL")
        ratio = full / empty
        lines += [
            f"Stored in {filled:,.0f} s. Intake ({INTAKE_ORDERS:,} orders, "
            f"{INTAKE_CONCURRENCY} at a time): {empty:,.0f}/s empty, {full:,.0f}/s full "
            f"({ratio:.0%}; aim ≥ 80 %: {'met' if ratio >= 0.8 else 'NOT MET'}).",
            "",
            "| read | p50 ms | p95 ms | rows | p95 ≤ 50 ms |",
            "|---|---|---|---|---|",
        ]
        for name, read in reads(service, args.orders, sample).items():
            p50, p95, rows = await timed(read, args.repeat)
            verdict = "met" if p95 <= AIM_MS else "**NOT MET**"
            lines.append(f"| {name} | {p50:.1f} | {p95:.1f} | {rows} | {verdict} |")
            print(f"  {name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms", flush=True)
    finally:
        await service.close()
    return [*lines, ""]


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = ["## Stored volume", ""]
    with tempfile.TemporaryDirectory(prefix="ordermill-volume-") as tmp:
        work = Path(tmp)
        for database in args.databases.split(","):
            if database == "sqlite":
                url = f"sqlite+aiosqlite:///{work}/volume.db"
                report += await measure(database, url, args, work)
            elif database == "postgresql":
                server = await asyncio.to_thread(PostgresServer.launch)
                try:
                    url = server.create_database("volume")
                    report += await measure(database, url, args, work)
                finally:
                    server.close()
            else:
                print(f"unknown database {database!r}: sqlite or postgresql", file=sys.stderr)
                return 2
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
