"""The printed report: Markdown tables of the ceilings, each scenario's figures, and the aims."""

from __future__ import annotations

from typing import Any

AIM_SQLITE = 1000.0
AIM_SQLITE_STRETCH = 2000.0
AIM_POSTGRES = 700.0
AIM_IDLE_P50_MS = 5.0
AIM_HALF_P99_MS = 50.0


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(header: list[str], rows: list[list[Any]]) -> str:
    cells = [header, *[[_fmt(cell) for cell in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def ceilings_table(ceilings: dict[str, Any]) -> str:
    rows = []
    posts = ceilings.get("raw_post")
    if posts:
        rtt = posts["round_trip_ms"]
        rows.append(
            [
                f"raw aiohttp POST ({posts['concurrency']} keep-alive TLS connections)",
                posts["per_second"],
                _fmt(posts["cpu_ms_per_op"], 3),
                f"receiver {posts['receiver_cpu_ms_per_op']} ms/op; one at a time: "
                f"p50 {rtt['p50']} ms, p99 {rtt['p99']} ms",
            ]
        )
    for key, label in (
        ("sqlite3", "SQLite insert+commit, sqlite3 (WAL, synchronous=NORMAL)"),
        ("aiosqlite", "SQLite insert+commit, aiosqlite (a thread hop per statement)"),
    ):
        if ceilings.get(key):
            found = ceilings[key]
            rows.append([label, found["per_second"], _fmt(found["cpu_ms_per_op"], 3), ""])
    pg = ceilings.get("postgres")
    if pg:
        rows.append(
            [
                "PostgreSQL insert+commit, psycopg async",
                pg["per_second"],
                _fmt(pg["cpu_ms_per_op"], 3),
                f"postgres {pg['postgres_cpu_ms_per_op']} ms/op",
            ]
        )
    return table(["ceiling", "ops/s", "client CPU ms/op", "also"], rows)


def _commit_ceiling(scenario: dict[str, Any], ceilings: dict[str, Any]) -> float | None:
    # ordermill runs SQLite statements inline (storage/sqlite.py), as the sqlite3 ceiling does.
    database = scenario.get("database", scenario["scenario"])
    key = "sqlite3" if database == "sqlite" else "postgres"
    found = ceilings.get(key) or {}
    return found.get("per_second")


def _ratio(value: float | None, ceiling: float | None) -> str:
    if not value or not ceiling:
        return "–"
    return f"{value / ceiling:.1%}"


def throughput_table(scenarios: list[dict[str, Any]], ceilings: dict[str, Any]) -> str:
    rows = []
    raw_post = (ceilings.get("raw_post") or {}).get("per_second")
    for s in scenarios:
        peak = s.get("phases", {}).get("peak")
        if not peak:
            continue
        cpu = peak["cpu_ms_per_order"]
        split = " / ".join(_fmt(cpu.get(r), 2) for r in ("api", "worker") if r in cpu)
        engine_and_pg = (cpu["engine"] or 0) + (cpu.get("postgres") or 0)
        rows.append(
            [
                s["scenario"],
                f"{peak['completed']}/{peak['sent']}",
                peak["orders_per_second"],
                peak["intake_per_second"],
                f"{_fmt(cpu['engine'], 2)}" + (f" ({split})" if split else ""),
                f"{peak['engine_system_share']:.0%}",
                _fmt(cpu.get("postgres"), 2),
                _fmt(engine_and_pg, 2),
                _fmt(cpu.get("loadgen"), 2),
                _fmt(cpu.get("receiver"), 2),
                _ratio(peak["orders_per_second"], raw_post),
                _ratio(peak["orders_per_second"], _commit_ceiling(s, ceilings)),
                _fmt(peak.get("claims_per_order"), 2),
                _fmt(peak.get("empty_claims_per_order"), 2),
                _fmt(peak["box"]["others_cores"], 2),
            ]
        )
    return table(
        [
            "scenario",
            "done/sent",
            "orders/s",
            "intake/s",
            "engine CPU ms/order (api / workers)",
            "of it kernel",
            "postgres",
            "engine+pg",
            "loadgen",
            "receiver",
            "vs raw POST/s",
            "vs raw commit/s",
            "claims/order",
            "empty claims/order",
            "others' cores",
        ],
        rows,
    )


def flow_table(scenarios: list[dict[str, Any]]) -> str | None:
    """The realistic flow: CPU per order and per task, requests and feedback, 201 → last request."""
    rows = []
    for s in scenarios:
        if s.get("flow") != "realistic":
            continue
        for name in ("idle", "peak", "half"):
            phase = s.get("phases", {}).get(name)
            if not phase:
                continue
            cpu = phase["cpu_ms_per_order"]
            engine = cpu.get("engine")
            tasks = s.get("tasks_per_order")
            feedback = phase.get("feedback") or {}
            last = phase.get("last_request_latency_ms") or {}
            rows.append(
                [
                    s["scenario"],
                    name,
                    f"{phase['completed']}/{phase['sent']}",
                    phase["orders_per_second"],
                    _fmt(engine, 2),
                    _fmt(engine / tasks, 2) if engine is not None and tasks else "–",
                    _fmt(cpu.get("postgres"), 2),
                    _fmt(phase.get("requests_per_order"), 2),
                    f"{feedback.get('sent', '–')} / {feedback.get('failed', '–')}"
                    + (f" ({feedback['retried']} retried)" if feedback.get("retried") else ""),
                    phase["latency_ms"].get("p50"),
                    last.get("p50"),
                    last.get("p99"),
                    _fmt(phase["box"]["others_cores"], 2),
                ]
            )
    if not rows:
        return None
    header = [
        "scenario",
        "phase",
        "done/sent",
        "orders/s",
        "engine CPU ms/order",
        "ms/task",
        "postgres ms/order",
        "connector requests/order",
        "feedback ok / failed",
        "201 → first request p50",
        "201 → last request p50",
        "p99",
        "others' cores",
    ]
    return table(header, rows)


def latency_table(scenarios: list[dict[str, Any]]) -> str:
    rows = []
    for s in scenarios:
        for name, phase in s.get("phases", {}).items():
            if "latency_ms" not in phase:
                continue
            lat = phase["latency_ms"]
            label = name
            if name == "half":
                label = f"half ({phase['target_rate']}/s → {phase['orders_per_second']}/s)"
            rows.append(
                [
                    s["scenario"],
                    label,
                    lat.get("count"),
                    lat.get("p50"),
                    lat.get("p95"),
                    lat.get("p99"),
                    lat.get("max"),
                    lat.get("missing"),
                    _fmt(phase["box"]["others_cores"], 2),
                ]
            )
    header = ["scenario", "phase", "n", "p50", "p95", "p99", "max", "missing", "others' cores"]
    return table(header, rows)


def drain_table(scenarios: list[dict[str, Any]]) -> str | None:
    rows = []
    for s in scenarios:
        drain = s.get("phases", {}).get("drain")
        if not drain:
            continue
        intake, work = drain["intake_cpu_ms_per_order"], drain["drain_cpu_ms_per_order"]
        rows.append(
            [
                s["scenario"],
                f"{drain['completed']}/{drain['sent']}",
                drain["intake_per_second"],
                _fmt(intake.get("api"), 2),
                _fmt(intake.get("postgres"), 2),
                drain["orders_per_second"],
                _fmt(work.get("worker"), 2),
                _fmt(work.get("postgres"), 2),
                f"{drain['others_cores_intake']:.2f} / {drain['others_cores_drain']:.2f}",
            ]
        )
    if not rows:
        return None
    header = [
        "scenario",
        "done/sent",
        "API alone: orders/s",
        "API ms/order",
        "postgres",
        "workers alone: orders/s",
        "workers ms/order",
        "postgres",
        "others' cores",
    ]
    return table(header, rows)


def memory_table(scenarios: list[dict[str, Any]]) -> str:
    rows = []
    for s in scenarios:
        peaks = s.get("peak_rss_kib") or {}
        memory = s.get("memory") or {}
        for name, peak in peaks.items():
            if name == "postgres":
                rows.append(
                    [
                        s["scenario"],
                        f"postgres (sum of {peak['processes']} processes)",
                        peak["sum_kib"] / 1024,
                        "",
                        "",
                        "",
                    ]
                )
                continue
            trend = memory.get(name, {})
            first, last = trend.get("first_third_kib"), trend.get("last_third_kib")
            rows.append(
                [
                    s["scenario"],
                    name,
                    None if peak is None else peak / 1024,
                    "" if first is None else f"{first / 1024:.1f} → {last / 1024:.1f}",
                    "" if first is None else f"{trend['bytes_per_order']:+.0f}",
                    "" if first is None else ("yes" if trend["flat"] else "NO"),
                ]
            )
    return table(
        ["scenario", "process", "peak RSS MiB", "RSS MiB first → last third", "B/order", "flat"],
        rows,
    )


def _ordermill_rows(scenarios: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, label, figures) of ordermill's runs to set beside the peers: peak, and pg1's drain."""
    rows = []
    for s in scenarios:
        phases = s.get("phases", {})
        peak, drain = phases.get("peak"), phases.get("drain")
        if s["scenario"] in ("sqlite", "pg1") and peak:
            cpu = peak["cpu_ms_per_order"]
            label = f"ordermill {s['scenario']} (peak, HTTP intake)"
            figures = _figures(peak, cpu.get("engine"), cpu, peak["box"]["others_cores"])
            rows.append((s["scenario"], label, figures))
        if s["scenario"] == "pg1" and drain:
            work = drain["drain_cpu_ms_per_order"]
            label = "ordermill pg1 workers alone (drain, no intake)"
            figures = _figures(drain, work.get("worker"), work, drain["others_cores_drain"])
            rows.append(("pg1-drain", label, figures))
    return rows


def _figures(
    phase: dict[str, Any], engine: float | None, cpu: dict[str, Any], others: float
) -> dict[str, Any]:
    return {
        "done": f"{phase['completed']}/{phase['sent']}",
        "orders_per_second": phase["orders_per_second"],
        "engine": engine,
        "postgres": cpu.get("postgres"),
        "others_cores": others,
    }


def _times(ours: float | None, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}×" if ours and theirs else "–"


def peers_section(results: dict[str, Any]) -> list[str]:
    """The peers beside ordermill: orders/s, CPU per order, and ordermill's CPU as a multiple."""
    found = results.get("peers")
    if not found:
        return []
    title = "\n## Peers: the same one-step order to the same receiver\n"
    if "skipped" in found:
        return [title, f"Peers skipped: {found['skipped']}"]
    ordermill = _ordermill_rows(results["scenarios"])
    engine = {name: figures["engine"] for name, _, figures in ordermill}
    rows: list[list[Any]] = []
    for _, label, figures in ordermill:
        rows.append(
            [
                label,
                figures["done"],
                figures["orders_per_second"],
                _fmt(figures["engine"], 2),
                _fmt(figures["postgres"], 2),
                _fmt((figures["engine"] or 0) + (figures.get("postgres") or 0), 2),
                "",
                "",
                "",
                _fmt(figures["others_cores"], 2),
            ]
        )
    for run in found["runs"]:
        if run.get("error"):
            rows.append([run["label"], f"failed: {run['error']}", *[""] * 8])
            continue
        cpu = run["cpu_ms_per_order"]
        package = run.get("package", "")
        rows.append(
            [
                f"{run['label']} ({package} {run['versions'].get(package)}; enqueued in-process)",
                f"{run['completed']}/{run['sent']}" + (" (time limit)" if run["timed_out"] else ""),
                run["orders_per_second"],
                _fmt(cpu.get("engine"), 2),
                _fmt(cpu.get("postgres"), 2),
                _fmt((cpu.get("engine") or 0) + (cpu.get("postgres") or 0), 2),
                _times(engine.get("pg1"), cpu.get("engine")),
                _times(engine.get("pg1-drain"), cpu.get("engine")),
                _times(engine.get("sqlite"), cpu.get("engine")),
                _fmt(run["box"]["others_cores"], 2),
            ]
        )
    header = [
        "system",
        "done/sent",
        "orders/s",
        "engine CPU ms/order",
        "postgres",
        "engine+pg",
        "ordermill pg1 engine CPU ÷ this",
        "pg1 drain ÷ this",
        "sqlite ÷ this",
        "others' cores",
    ]
    note = (
        "The peers' orders are enqueued in their own process: they pay no HTTP intake, "
        "ordermill's peak rows do. Each step POSTs the same body, unsigned, with aiohttp.\n"
    )
    return [title, note, table(header, rows)]


def statements_section(scenarios: list[dict[str, Any]]) -> list[str]:
    parts = []
    for s in scenarios:
        found = s.get("statements")
        if not found or "top" not in found:
            continue
        parts.append(
            f"\n### {s['scenario']}: {found['statements_per_order']} statements and "
            f"{found['transactions_per_order']} transactions per order "
            f"({found['exec_ms_per_order']} ms of server execution; {found['orders']} orders)\n"
        )
        rows = [
            [
                _fmt(row["calls_per_order"], 2),
                _fmt(row["rows_per_call"], 2),
                _fmt(row["mean_exec_ms"], 3),
                row["query"],
            ]
            for row in found["top"][:15]
        ]
        parts.append(table(["calls/order", "rows/call", "mean ms", "statement"], rows))
    if parts:
        parts.insert(0, "\n## PostgreSQL statements per order (pg_stat_statements)")
    return parts


def aims(scenarios: list[dict[str, Any]]) -> list[tuple[str, bool | None, str]]:
    """(aim, met — None when not measured, the figures)."""
    by_name = {s["scenario"]: s for s in scenarios}

    def rate(name: str) -> float | None:
        return ((by_name.get(name) or {}).get("phases", {}).get("peak") or {}).get(
            "orders_per_second"
        )

    def drain_rate(name: str) -> float | None:
        return ((by_name.get(name) or {}).get("phases", {}).get("drain") or {}).get(
            "orders_per_second"
        )

    verdicts: list[tuple[str, bool | None, str]] = []
    sqlite = rate("sqlite")
    if sqlite is not None:
        verdicts.append(("SQLite ≥ 1,000 orders/s", sqlite >= AIM_SQLITE, f"{sqlite:,.0f}/s"))
        verdicts.append(
            ("SQLite ≥ 2,000 orders/s (stretch)", sqlite >= AIM_SQLITE_STRETCH, f"{sqlite:,.0f}/s")
        )
    pg = {name: rate(name) for name in ("pg1", "pg2", "pg4") if rate(name) is not None}
    if pg:
        best = max(pg, key=lambda name: pg[name] or 0)
        figures = ", ".join(f"{name} {value:,.0f}/s" for name, value in pg.items() if value)
        verdicts.append(("PostgreSQL ≥ 700 orders/s", (pg[best] or 0) >= AIM_POSTGRES, figures))
    if pg.get("pg1") and pg.get("pg2"):
        verdicts.append(
            (
                "PostgreSQL: 2 workers > 1 worker, end to end",
                pg["pg2"] > pg["pg1"],
                f"pg2 {pg['pg2']:,.0f}/s vs pg1 {pg['pg1']:,.0f}/s",
            )
        )
    drained = {name: drain_rate(name) for name in ("pg1", "pg2")}
    if drained["pg1"] and drained["pg2"]:
        verdicts.append(
            (
                "PostgreSQL: 2 workers > 1 worker, workers alone (drain)",
                drained["pg2"] > drained["pg1"],
                f"pg2 {drained['pg2']:,.0f}/s vs pg1 {drained['pg1']:,.0f}/s",
            )
        )
    for s in scenarios:
        phases = s.get("phases", {})
        p50 = (phases.get("idle") or {}).get("latency_ms", {}).get("p50")
        if p50 is not None:
            verdicts.append(
                (f"{s['scenario']}: idle p50 ≤ 5 ms", p50 <= AIM_IDLE_P50_MS, f"{p50} ms")
            )
        p99 = (phases.get("half") or {}).get("latency_ms", {}).get("p99")
        if p99 is not None:
            verdicts.append(
                (f"{s['scenario']}: half-peak p99 ≤ 50 ms", p99 <= AIM_HALF_P99_MS, f"{p99} ms")
            )
        memory = s.get("memory") or {}
        flags = {name: trend.get("flat") for name, trend in memory.items()}
        if flags and all(flag is not None for flag in flags.values()):
            detail = ", ".join(
                f"{name} {memory[name]['growth_kib']:+,} KiB" for name in sorted(memory)
            )
            verdicts.append((f"{s['scenario']}: worker RSS flat", all(flags.values()), detail))
    return verdicts


def _section(title: str, body: str | None) -> list[str]:
    return [f"\n## {title}\n", body] if body else []


def render(results: dict[str, Any]) -> str:
    scenarios = results["scenarios"]
    parts = [
        "## Machine\n",
        "\n".join(f"- {key}: {value}" for key, value in results["machine"].items()),
        "\n## Ceilings (same run, same machine)\n",
        ceilings_table(results["ceilings"]),
        "\n## Throughput and CPU per order (peak: closed loop)\n",
        "CPU in ms per completed order; others' cores: what the rest of the machine used.\n",
        throughput_table(scenarios, results["ceilings"]),
        *_section(
            "The realistic flow (`*-flow`): two stages, fan-out and join, feedback, a 200 ms wait",
            flow_table(scenarios),
        ),
        *_section(
            "PostgreSQL: the API alone (workers stopped), then the workers alone (drain)",
            drain_table(scenarios),
        ),
        "\n## Latency from the order's 201 to the receiver's request (ms)\n",
        "For the realistic flow (`*-flow`): to the order's first request (task `a`).\n",
        latency_table(scenarios),
        "\n## Memory\n",
        memory_table(scenarios),
        *statements_section(scenarios),
        *peers_section(results),
        "\n## Aims\n",
    ]
    for aim, met, figures in aims(scenarios):
        verdict = "met" if met else ("NOT MET" if met is False else "not measured")
        parts.append(f"- {aim}: **{verdict}** ({figures})")
    for s in scenarios:
        if s.get("error"):
            parts.append(f"\n**{s['scenario']} failed:** {s['error']}")
        if s.get("timed_out"):
            parts.append(f"\n**{s['scenario']} hit its time limit**; its figures are partial.")
    return "\n".join(parts)
