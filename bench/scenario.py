"""One scenario: start ordermill on a database, then run the idle, peak and half-peak phases.

Each phase resets the receiver, snapshots CPU of every process, sends its load, waits (bounded)
until its orders are delivered and ended, and reads throughput from the orders' own end times.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench import procstat
from bench.engine import Engine, Outcomes
from bench.load import Deadline, OrderClient, Sent, closed_loop, idle, paced
from bench.profile import Profiler
from bench.receiver import ReceiverProcess
from bench.stats import latency, thirds

FLAT_GROWTH = 0.05  # a worker is "flat" when its RSS grows less than 5 % …
FLAT_SLACK_KIB = 1024  # … or less than 1 MiB, whichever is larger (allocator noise)


@dataclass(frozen=True)
class Spec:
    name: str
    database: str  # "sqlite" or "postgresql"
    workers: int  # 0: one `ordermill serve`; N: `ordermill api` + N `ordermill worker`


SPECS = {
    "sqlite": Spec("sqlite", "sqlite", 0),
    "pg1": Spec("pg1", "postgresql", 1),
    "pg2": Spec("pg2", "postgresql", 2),
    "pg4": Spec("pg4", "postgresql", 4),
}


@dataclass(frozen=True)
class Options:
    orders: int
    idle_orders: int
    warmup: int
    connections: int
    timeout: float
    idle_pause: float
    extra_env: dict[str, str]
    profile_dir: Path | None = None


class CpuMeter:
    """CPU seconds so far of each role: engine processes, PostgreSQL, receiver, this process."""

    def __init__(self, engine: Engine, receiver_pid: int, postmaster_pid: int | None) -> None:
        self.engine = engine
        self.receiver_pid = receiver_pid
        self.postmaster_pid = postmaster_pid

    def snapshot(self) -> dict[str, float]:
        seconds: dict[str, float] = {}
        for role, pids in self.engine.roles().items():
            seconds[role] = sum(c.total for c in map(procstat.cpu, pids) if c is not None)
        if self.postmaster_pid is not None:
            seconds["postgres"] = procstat.tree_cpu(self.postmaster_pid)
        seconds["receiver"] = procstat.tree_cpu(self.receiver_pid)
        seconds["loadgen"] = time.process_time()
        seconds["box"] = procstat.busy_seconds()
        seconds["wall"] = time.monotonic()
        return seconds


class RssSampler:
    """VmRSS of the engine processes every ``interval`` seconds, to show (no) growth."""

    def __init__(self, pids: dict[str, int], interval: float = 0.2) -> None:
        self.pids = pids
        self.interval = interval
        self.samples: dict[str, list[int]] = {name: [] for name in pids}
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            for name, pid in self.pids.items():
                value = procstat.rss_kib(pid)
                if value is not None:
                    self.samples[name].append(value)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def summary(self, orders: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, samples in self.samples.items():
            means = thirds(samples)
            if means is None:
                out[name] = {"samples": len(samples)}
                continue
            first, last = means
            growth = last - first
            out[name] = {
                "samples": len(samples),
                "first_third_kib": round(first),
                "last_third_kib": round(last),
                "growth_kib": round(growth),
                "bytes_per_order": round(growth * 1024 / orders, 1) if orders else None,
                "flat": growth <= max(FLAT_SLACK_KIB, FLAT_GROWTH * first),
            }
        return out


class Scenario:
    def __init__(
        self,
        spec: Spec,
        options: Options,
        receiver: ReceiverProcess,
        workdir: Path,
        database_url: str,
        outcomes: Outcomes,
        postmaster_pid: int | None,
    ) -> None:
        self.spec = spec
        self.options = options
        self.receiver = receiver
        self.outcomes = outcomes
        self.engine = Engine(
            workdir,
            database_url,
            receiver.ca_file,
            workers=spec.workers,
            extra_env=options.extra_env,
        )
        self.postmaster_pid = postmaster_pid
        self.deadline = Deadline(options.timeout)

    async def run(self) -> dict[str, Any]:
        """Every figure of the scenario; ``error`` is set when it could not finish."""
        result: dict[str, Any] = {
            "scenario": self.spec.name,
            "workers": self.spec.workers,
            "load_average_at_start": os.getloadavg()[0],
        }
        started = time.monotonic()
        try:
            self.engine.start()
            async with aiohttp.ClientSession() as session:
                await self.engine.wait_ready(session)
                api_key = await self.engine.create_space_and_flow(
                    session, self.receiver.url("/orders")
                )
            result["pids"] = self.engine.roles()
            client = OrderClient(self.engine.base_url, api_key, self.options.connections)
            try:
                await self._phases(client, result)
            finally:
                await client.close()
        except Exception as exc:  # reported with the logs; the other scenarios still run
            result["error"] = f"{type(exc).__name__}: {exc}"
            result["logs"] = {name: self.engine.log_tail(name) for name in self.engine.processes}
        finally:
            self.engine.stop()
            await self.outcomes.close()
        result["seconds"] = round(time.monotonic() - started, 1)
        result["timed_out"] = self.deadline.passed
        return result

    async def _phases(self, client: OrderClient, result: dict[str, Any]) -> None:
        options, phases = self.options, {}
        result["phases"] = phases
        cpu = CpuMeter(self.engine, self.receiver.pid, self.postmaster_pid)
        warm = await self._phase(
            cpu, "warm-", closed_loop(client, "warm-", options.warmup, self.deadline, connections=4)
        )
        if not warm["completed"]:
            raise RuntimeError(f"no warm-up order completed: {warm}")
        phases["idle"] = await self._phase(
            cpu,
            "idle-",
            idle(
                client, "idle-", options.idle_orders, self.deadline, mean_pause=options.idle_pause
            ),
        )
        watched = {name: pid for name, pid in self._named_pids().items() if name != "api"}
        sampler = RssSampler(watched)
        sampler.start()
        profiler = None
        if options.profile_dir is not None:
            profiler = Profiler(options.profile_dir / self.spec.name, self._named_pids())
            profiler.start()
        try:
            phases["peak"] = await self._phase(
                cpu,
                "peak-",
                closed_loop(
                    client,
                    "peak-",
                    options.orders,
                    self.deadline,
                    connections=options.connections,
                ),
            )
            if profiler is not None:
                await asyncio.to_thread(profiler.stop)
                profiler = None
            rate = (phases["peak"]["orders_per_second"] or 0) / 2
            if rate > 0 and not self.deadline.passed:
                phases["half"] = await self._phase(
                    cpu,
                    "half-",
                    paced(client, "half-", options.orders, self.deadline, rate=rate),
                )
                phases["half"]["target_rate"] = round(rate, 1)
        finally:
            await sampler.stop()
            if profiler is not None:
                await asyncio.to_thread(profiler.stop)
        processed = sum(phase.get("completed", 0) for phase in phases.values()) - phases[
            "idle"
        ].get("completed", 0)
        result["memory"] = sampler.summary(processed)
        result["peak_rss_kib"] = self._peak_rss()

    async def _phase(self, cpu: CpuMeter, prefix: str, load: Awaitable[Sent]) -> dict[str, Any]:
        await self.receiver.reset()
        before = cpu.snapshot()
        sent = await load
        expected = len(sent.created)
        grace = max(self.deadline.remaining(), 3.0)
        delivered = await self.receiver.wait_for(expected, grace)
        counts, last_end = await self.outcomes.wait_until_ended(prefix, expected, grace)
        after = cpu.snapshot()
        arrivals = await self.receiver.arrivals()
        completed = counts.get("SUCCESS", 0)
        seconds = last_end.timestamp() - sent.first_post_wall if last_end else None
        cpu_ms = {role: (after[role] - before[role]) * 1000 for role in after}
        wall_ms, box_ms = cpu_ms.pop("wall"), cpu_ms.pop("box")
        engine_ms = sum(cpu_ms.get(role, 0.0) for role in ("serve", "api", "worker"))
        per_order = {"engine": engine_ms, **cpu_ms}
        # Everything else on the machine (other people's work) competed for the same cores.
        box = {
            "busy_cores": round(box_ms / wall_ms, 2),
            "others_cores": round((box_ms - sum(cpu_ms.values())) / wall_ms, 2),
        }
        return {
            "sent": expected,
            "errors": sent.errors,
            "first_error": sent.first_error,
            "stopped_early": sent.stopped_early,
            "delivered": delivered,
            "completed": completed,
            "statuses": counts,
            "seconds": round(seconds, 3) if seconds else None,
            "orders_per_second": round(completed / seconds, 1) if seconds else None,
            "intake_per_second": _round(sent.intake_per_second),
            "latency_ms": latency(sent.created, arrivals),
            "box": box,
            "cpu_ms_per_order": {
                role: round(ms / completed, 3) if completed else None
                for role, ms in per_order.items()
            },
        }

    def _named_pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.engine.processes.items()}

    def _peak_rss(self) -> dict[str, Any]:
        peaks: dict[str, Any] = {
            name: procstat.peak_rss_kib(pid) for name, pid in self._named_pids().items()
        }
        if self.postmaster_pid is not None:
            total, processes = procstat.tree_peak_rss_kib(self.postmaster_pid)
            peaks["postgres"] = {"sum_kib": total, "processes": processes}
        peaks["receiver"] = procstat.peak_rss_kib(self.receiver.pid)
        return peaks


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
