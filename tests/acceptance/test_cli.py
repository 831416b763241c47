"""The `ordermill` command as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.acceptance.conftest import ORDERMILL
from tests.support.factories import flow_doc


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ORDERMILL, *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_flows_validate_prints_valid_for_the_reference_flow(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(flow_doc("https://erp.example.com/orders")))

    result = run("flows", "validate", str(path), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_flows_validate_prints_every_problem_with_its_pointer(tmp_path: Path) -> None:
    flow = flow_doc("http://erp.example.com/orders", nxt=[])
    flow["name"] = "abc"
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(flow))

    result = run("flows", "validate", str(path), cwd=tmp_path)

    assert result.returncode == 1
    assert "3 problem(s)" in result.stdout
    for pointer in (
        "/name",
        "/stages/0/taskDefinitions/0/nxt",
        "/stages/0/taskDefinitions/0/payload/uri",
    ):
        assert pointer in result.stdout


def test_flows_validate_explains_broken_json(tmp_path: Path) -> None:
    path = tmp_path / "flow.json"
    path.write_text('{"key": ')

    result = run("flows", "validate", str(path), cwd=tmp_path)

    assert result.returncode == 1
    assert "not valid JSON" in result.stderr
    assert "line 1" in result.stderr


def test_spaces_create_prints_a_working_key_once(tmp_path: Path) -> None:
    env = {"ORDERMILL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/om.db"}

    result = run("spaces", "create", "acme", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("om_")
    again = run("spaces", "create", "acme", cwd=tmp_path, env=env)
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_migrate_reports_what_it_did(tmp_path: Path) -> None:
    env = {"ORDERMILL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/om.db"}

    first = run("migrate", cwd=tmp_path, env=env)
    second = run("migrate", cwd=tmp_path, env=env)

    assert first.returncode == 0, first.stderr
    assert "Migrated the database from empty" in first.stdout
    assert "up to date" in second.stdout


def test_a_bad_setting_is_named(tmp_path: Path) -> None:
    result = run("migrate", cwd=tmp_path, env={"ORDERMILL_CONNECTOR_ALLOW_NETWORKS": "10.0.0.0/33"})

    assert result.returncode == 2
    assert "ORDERMILL_CONNECTOR_ALLOW_NETWORKS" in result.stderr
