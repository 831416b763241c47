"""ordermill.flows stays pure: it imports only the standard library and ordermill.errors."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import importlib, json, pkgutil, sys
before = set(sys.modules)
import ordermill.flows
for module in pkgutil.walk_packages(ordermill.flows.__path__, "ordermill.flows."):
    importlib.import_module(module.name)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def is_allowed(name: str) -> bool:
    return (
        name.split(".")[0] in sys.stdlib_module_names
        or name in {"ordermill", "ordermill.errors", "ordermill.flows"}
        or name.startswith("ordermill.flows.")
    )


def test_importing_every_flows_module_loads_nothing_outside_the_standard_library() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(probe.stdout)
    assert "ordermill.flows.planner" in loaded
    assert [name for name in loaded if not is_allowed(name)] == []
