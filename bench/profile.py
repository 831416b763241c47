"""Optional sampling profiles of the engine processes during the peak phase (``--profile DIR``).

py-spy is not a project dependency: install it into the venv by hand to use this
(``.venv/bin/pip install py-spy``). Profiling costs CPU on the same cores, so the figures of a
profiled run are not the ones to quote. ``python -m bench.profile FILE.txt`` summarises a
profile: samples by kind of work (intake parsing, database, outbound HTTP, signing, the HTTP
server, bookkeeping), by package, and ordermill's functions by inclusive samples.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

PY_SPY = Path(sys.executable).parent / "py-spy"


def py_spy() -> str:
    found = PY_SPY if PY_SPY.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    return str(found)


class Profiler:
    """``py-spy record`` of each named process, collapsed stacks written to ``DIR/name.txt``."""

    def __init__(self, directory: Path, pids: dict[str, int], rate: int = 100) -> None:
        self.directory = directory
        self.pids = pids
        self.rate = rate
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        binary = py_spy()
        for name, pid in self.pids.items():
            argv = [binary, "record", "--pid", str(pid), "--rate", str(self.rate)]
            argv += ["--format", "raw", "--nolineno", "--gil"]
            argv += ["--output", str(self.directory / f"{name}.txt")]
            with (self.directory / f"{name}.py-spy.log").open("ab") as log:
                self.processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))

    def stop(self) -> None:
        """SIGINT makes py-spy write its file; wait for that, bounded."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _package(frame: str) -> str:
    """``func (sqlalchemy/engine/base.py)`` -> ``sqlalchemy``."""
    _, _, where = frame.rpartition(" (")
    top = where.rstrip(")").split("/", 1)[0]
    return top.removesuffix(".py")


# Where a sample's time goes, by the innermost frame of its stack that one of these names
# (file path fragments, first match wins): the split docs/performance.md shows.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("signing", ("ordermill/signatures.py", "(hmac.py", "(hashlib.py", "standardwebhooks/")),
    (
        "database",
        ("sqlalchemy/", "psycopg/", "psycopg_pool/", "sqlite3/", "ordermill/storage/"),
    ),
    ("outbound HTTP", ("aiohttp/", "(ssl.py", "yarl/", "multidict/", "ordermill/handlers/")),
    (
        "intake parsing",
        ("pydantic", "ordermill/jsoncodec.py", "ordermill/api/schemas.py", "orjson"),
    ),
    ("HTTP server", ("uvicorn/", "starlette/", "fastapi/", "httptools/", "h11/")),
)


def category(frames: list[str]) -> str:
    """The category of one sample's stack (innermost frame last); bookkeeping otherwise."""
    for frame in reversed(frames):
        for name, needles in CATEGORIES:
            if any(needle in frame for needle in needles):
                return name
    return "bookkeeping"


def summarize(path: Path, top: int = 25) -> str:
    """Samples by package (self), and the ordermill functions with most samples (inclusive)."""
    packages: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        packages[_package(frames[-1])] += count
        kinds[category(frames)] += count
        for frame in set(frames):
            if "(ordermill/" in frame:
                ours[frame] += count
    if not total:
        return f"{path.name}: no samples"
    lines = [f"{path.name}: {total} samples", "by kind of work:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in kinds.most_common()]
    lines.append("self time by package:")
    lines += [f"  {n / total:6.1%}  {name}" for name, n in packages.most_common(top)]
    lines.append("ordermill functions, inclusive:")
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in ours.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("files", type=Path, nargs="+", help="collapsed stacks from --profile")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    for path in args.files:
        print(summarize(path, args.top))


if __name__ == "__main__":
    main()
