"""The peers' own venv: ``.cache/bench-peers-venv``, made on first use and reused while its
requirements stay the same. Nothing of it reaches ordermill's venv or git."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT / ".cache" / "bench-peers-venv"
REQUIREMENTS = (
    "dbos>=3,<4",
    "procrastinate>=3,<4",
    "psycopg[binary]>=3.2,<4",
    "aiohttp>=3.9,<4",
)
INSTALL_TIMEOUT = 600.0


class Unavailable(Exception):
    """The peers' venv could not be made (no network, no venv module …): the peers are skipped."""


def _run(argv: list[str], timeout: float) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"{Path(argv[0]).name} {argv[1]}: {exc}") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        raise Unavailable(f"{' '.join(argv[1:4])} … exited with {done.returncode}: {lines[-1]}")


def ensure(directory: Path = DEFAULT_DIR) -> Path:
    """The venv's python, with REQUIREMENTS installed; raises Unavailable when it cannot be."""
    python = directory / "bin" / "python"
    marker = directory / "bench-requirements.txt"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    directory.parent.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", "--clear", str(directory)], timeout=120)
    _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *REQUIREMENTS,
        ],
        timeout=INSTALL_TIMEOUT,
    )
    marker.write_text(wanted)
    return python
