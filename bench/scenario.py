"""One scenario: start ordermill on a database, then run its phases one after the other.

warm-up (not reported), drain (PostgreSQL only: API alone, then workers alone), idle, peak
(closed loop) and half (open loop at half the peak rate). Each phase resets the receiver,
snapshots CPU of every process, sends its load, waits (bounded) until its orders are delivered
and ended, and reads throughput from the orders' own end times.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench import procstat
from bench.engine import Engine, Outcomes, flow_document, realistic_flow_document
from bench.load import Deadline, OrderClient, Sent, closed_loop, idle, paced
from bench.meters import CpuMeter, RssSampler, cpu_delta
from bench.profile import Profiler
from bench.receiver import ReceiverProcess
from bench.stats import latency


@dataclass(frozen=True)
class Spec:
    name: str
    database: str  # "sqlite" or "postgresql"
    workers: int  # 0: one `ordermill serve`; N: `ordermill api` + N `ordermill worker`
    # "one-connector": one stage, one connector task. "realistic": two stages, fan-out and
    # join, a feedback task and a wait (bench.engine.realistic_flow_document).
    flow: str = "one-connector"
    # A realistic order (five tasks, one feedback, a timer) costs three to four one-connector
    # orders, so its scenarios get longer before their hard limit (--timeout × this).
    timeout_factor: float = 1.0


SPECS = {
    "sqlite": Spec("sqlite", "sqlite", 0),
    "pg1": Spec("pg1", "postgresql", 1),
    "pg2": Spec("pg2", "postgresql", 2),
    "pg4": Spec("pg4", "postgresql", 4),
    "sqlite-flow": Spec("sqlite-flow", "sqlite", 0, "realistic", timeout_factor=3.0),
    "pg1-flow": Spec("pg1-flow", "postgresql", 1, "realistic", timeout_factor=3.0),
    "pg4-flow": Spec("pg4-flow", "postgresql", 4, "realistic", timeout_factor=3.0),
}


@dataclass(frozen=True)
class Options:
    orders: int
    idle_orders: int
    warmup: int
    connections: int
    timeout: float
    idle_pause: float
    half_seconds: float
    drain_orders: int
    extra_env: dict[str, str]
    profile_dir: Path | None = None
    profile_rate: int = 100


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
        self.deadline = Deadline(options.timeout * spec.timeout_factor)

    async def run(self) -> dict[str, Any]:
        """Every figure of the scenario; ``error`` is set when it could not finish."""
        result: dict[str, Any] = {
            "scenario": self.spec.name,
            "database": self.spec.database,
            "flow": self.spec.flow,
            "workers": self.spec.workers,
            "load_average_at_start": os.getloadavg()[0],
        }
        flow = self._flow()
        result["tasks_per_order"] = sum(len(stage["taskDefinitions"]) for stage in flow["stages"])
        started = time.monotonic()
        try:
            self.engine.start()
            async with aiohttp.ClientSession() as session:
                await self.engine.wait_ready(session)
                api_key = await self.engine.create_space_and_flow(session, flow)
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

    def _flow(self) -> dict[str, Any]:
        if self.spec.flow == "realistic":
            return realistic_flow_document(
                self.receiver.url("/orders"), self.receiver.url("/feedback")
            )
        return flow_document(self.receiver.url("/orders"))

    async def _phases(self, client: OrderClient, result: dict[str, Any]) -> None:
        options, phases = self.options, {}
        result["phases"] = phases
        cpu = CpuMeter(self.engine, self.receiver.pid, self.postmaster_pid)
        warm = await self._phase(
            cpu, "warm-", closed_loop(client, "warm-", options.warmup, self.deadline, connections=4)
        )
        if not warm["completed"]:
            raise RuntimeError(f"no warm-up order completed: {warm}")
        if self.spec.workers:
            phases["drain"] = await self._drain(cpu, client)
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
            profiler = Profiler(
                options.profile_dir / self.spec.name, self._named_pids(), options.profile_rate
            )
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
                count = min(options.orders, max(200, math.ceil(rate * options.half_seconds)))
                phases["half"] = await self._phase(
                    cpu, "half-", paced(client, "half-", count, self.deadline, rate=rate)
                )
                phases["half"]["target_rate"] = round(rate, 1)
        finally:
            await sampler.stop()
            if profiler is not None:
                await asyncio.to_thread(profiler.stop)
        processed = sum(phases[name]["completed"] for name in ("peak", "half") if name in phases)
        result["memory"] = sampler.summary(processed)
        result["peak_rss_kib"] = self._peak_rss()

    async def _phase(self, cpu: CpuMeter, prefix: str, load: Awaitable[Sent]) -> dict[str, Any]:
        await self.receiver.reset()
        claims_before = await self.engine.claims()
        before = cpu.snapshot()
        sent = await load
        expected = len(sent.created)
        grace = max(self.deadline.remaining(), 3.0)
        delivered = await self.receiver.wait_for(expected, grace)
        counts, last_end = await self.outcomes.wait_until_ended(prefix, expected, grace)
        after = cpu.snapshot()
        claims = {k: v - claims_before[k] for k, v in (await self.engine.claims()).items()}
        first, last = await self.receiver.arrivals()
        received = await self.receiver.counts()
        completed = counts.get("SUCCESS", 0)
        seconds = last_end.timestamp() - sent.first_post_wall if last_end else None
        cpu_ms = cpu_delta(before, after)
        # Everything else on the machine (other people's work) competed for the same cores.
        box = {
            "busy_cores": round(cpu_ms["box"] / cpu_ms["wall"], 2),
            "others_cores": _others(cpu_ms),
        }
        system_ms = cpu_ms.pop("engine_system")
        del cpu_ms["wall"], cpu_ms["box"]
        engine_ms = sum(cpu_ms.get(role, 0.0) for role in ("serve", "api", "worker"))
        per_order = {"engine": engine_ms, **cpu_ms}
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
            "latency_ms": latency(sent.created, first),
            # Equal to latency_ms for one request per order; else up to the order's last one.
            "last_request_latency_ms": latency(sent.created, last),
            "requests_per_order": _per(received["deliveries"], completed),
            "feedback": received["feedback"],
            "box": box,
            "engine_system_share": round(system_ms / engine_ms, 3) if engine_ms else None,
            "claims_per_order": _per(claims["tasks"] + claims["empty"], completed),
            "empty_claims_per_order": _per(claims["empty"], completed),
            "cpu_ms_per_order": {
                role: round(ms / completed, 3) if completed else None
                for role, ms in per_order.items()
            },
        }

    async def _drain(self, cpu: CpuMeter, client: OrderClient) -> dict[str, Any]:
        """PostgreSQL only: the API takes N orders while the workers are stopped (SIGSTOP), then
        the workers drain them alone — each side's rate and CPU without the other's."""
        await self.receiver.reset()
        self.engine.signal_workers(signal.SIGSTOP)
        try:
            before = cpu.snapshot()
            sent = await closed_loop(
                client,
                "drain-",
                self.options.drain_orders,
                self.deadline,
                connections=self.options.connections,
            )
            queued = cpu.snapshot()
        finally:
            released = time.time()
            self.engine.signal_workers(signal.SIGCONT)
        expected = len(sent.created)
        grace = max(self.deadline.remaining(), 3.0)
        delivered = await self.receiver.wait_for(expected, grace)
        counts, last_end = await self.outcomes.wait_until_ended("drain-", expected, grace)
        intake, drain = cpu_delta(before, queued), cpu_delta(queued, cpu.snapshot())
        completed = counts.get("SUCCESS", 0)
        seconds = last_end.timestamp() - released if last_end else None

        def per_order(ms: dict[str, float], roles: tuple[str, ...], n: int) -> dict[str, Any]:
            return {role: round(ms[role] / n, 3) if n else None for role in roles if role in ms}

        return {
            "sent": expected,
            "errors": sent.errors,
            "first_error": sent.first_error,
            "delivered": delivered,
            "completed": completed,
            "statuses": counts,
            "intake_per_second": _round(sent.intake_per_second),
            "intake_cpu_ms_per_order": per_order(intake, ("api", "postgres", "loadgen"), expected),
            "seconds": round(seconds, 3) if seconds else None,
            "orders_per_second": round(completed / seconds, 1) if seconds else None,
            "drain_cpu_ms_per_order": per_order(drain, ("worker", "postgres", "api"), completed),
            "others_cores_intake": _others(intake),
            "others_cores_drain": _others(drain),
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


def _ours(ms: dict[str, float]) -> float:
    return sum(value for role, value in ms.items() if role not in ("wall", "box", "engine_system"))


def _others(ms: dict[str, float]) -> float:
    """Cores the rest of the machine used; clock-tick rounding can make a quiet one dip below 0."""
    return round(max(0.0, (ms["box"] - _ours(ms)) / ms["wall"]), 2)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _per(count: float, orders: int) -> float | None:
    return round(count / orders, 3) if orders else None
