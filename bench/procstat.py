"""CPU time and memory of processes, read from /proc (psutil is not a dependency).

CPU is user + system time from /proc/<pid>/stat; memory is VmRSS (now) and VmHWM (peak) from
/proc/<pid>/status. A process tree's CPU counts its live children and the reaped ones (cutime,
cstime), so a PostgreSQL backend that exited mid-run still counts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class Cpu:
    """CPU seconds of a process: its own (user + system), and those of its reaped children."""

    own: float
    reaped_children: float
    system: float  # the kernel's part of ``own``

    @property
    def total(self) -> float:
        return self.own + self.reaped_children


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; fields after it are plain.
    return text[text.rindex(")") + 2 :].split()


def cpu(pid: int) -> Cpu | None:
    """User + system seconds of ``pid``; None once it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # After the name: state ppid … utime(14) stime(15) cutime(16) cstime(17), 1-based overall.
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return Cpu((utime + stime) / TICKS, (cutime + cstime) / TICKS, stime / TICKS)


def parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


def children_of(pid: int) -> list[int]:
    """Live direct children of ``pid`` (a scan of /proc/*/stat)."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and parent_of(int(entry.name)) == pid:
            found.append(int(entry.name))
    return found


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid``, its live children and its reaped children (one level deep)."""
    root = cpu(pid)
    if root is None:
        return 0.0
    total = root.total
    for child in children_of(pid):
        child_cpu = cpu(child)
        if child_cpu is not None:
            total += child_cpu.own
    return total


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores; not idle, not waiting on I/O)."""
    fields = [int(value) for value in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICKS


def _status_kib(pid: int, field: str) -> int | None:
    try:
        lines = (PROC / str(pid) / "status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def rss_kib(pid: int) -> int | None:
    """Resident memory now (VmRSS), in KiB."""
    return _status_kib(pid, "VmRSS")


def peak_rss_kib(pid: int) -> int | None:
    """Peak resident memory so far (VmHWM), in KiB."""
    return _status_kib(pid, "VmHWM")


def tree_peak_rss_kib(pid: int) -> tuple[int, int]:
    """(VmHWM of ``pid`` + its live children, number of processes summed).

    For PostgreSQL this overstates real use: the shared buffers a backend touched count in
    each backend's RSS.
    """
    pids = [pid, *children_of(pid)]
    values = [value for value in map(peak_rss_kib, pids) if value is not None]
    return sum(values), len(values)
