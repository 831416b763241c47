"""What a phase measures besides the orders: CPU of every process, and engine memory over time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from bench import procstat
from bench.engine import Engine
from bench.stats import thirds

FLAT_GROWTH = 0.05  # a worker is "flat" when its RSS grows less than 5 % …
FLAT_SLACK_KIB = 1024  # … or less than 1 MiB, whichever is larger (allocator noise)


class CpuMeter:
    """CPU seconds so far of each role: engine processes, PostgreSQL, receiver, this process."""

    def __init__(self, engine: Engine, receiver_pid: int, postmaster_pid: int | None) -> None:
        self.engine = engine
        self.receiver_pid = receiver_pid
        self.postmaster_pid = postmaster_pid

    def snapshot(self) -> dict[str, float]:
        seconds: dict[str, float] = {"engine_system": 0.0}
        for role, pids in self.engine.roles().items():
            found = [c for c in map(procstat.cpu, pids) if c is not None]
            seconds[role] = sum(c.total for c in found)
            seconds["engine_system"] += sum(c.system for c in found)
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


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Milliseconds of CPU per role between two snapshots (``wall`` and ``box`` included)."""
    return {role: (after[role] - before[role]) * 1000 for role in after if role in before}
