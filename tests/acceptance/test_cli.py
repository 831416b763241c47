"""The `ordermill` command as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.acceptance.conftest import ORDERMILL
from tests.support.factories import flow_doc
from tests.support.reference import FLOW_FILE, FLOW_URI, copy_text


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, answer: str = ""
) -> subprocess.CompletedProcess[str]:
    """The CLI with ``args``; ``answer`` is what it reads from its standard input."""
    return subprocess.run(
        [ORDERMILL, *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        input=answer,
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


def test_flows_validate_accepts_the_reference_pages_bare_document_and_names_its_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "seed.json"
    path.write_text(copy_text(FLOW_FILE).replace(FLOW_URI, "https://erp.example.com/orders"))
    unusable = tmp_path / "my flow.json"
    unusable.write_text(path.read_text())

    by_name = run("flows", "validate", str(path), cwd=tmp_path)
    by_option = run("flows", "validate", str(unusable), "--key", "seed-flow", cwd=tmp_path)
    keyless = run("flows", "validate", str(unusable), cwd=tmp_path)

    assert by_name.returncode == 0, by_name.stdout + by_name.stderr
    assert f"{path}: valid" in by_name.stdout
    assert "it is saved under seed (its file name)" in by_name.stdout
    assert f"`ordermill flows push {path}` or PUT /api/flows/seed." in by_name.stdout
    assert by_option.returncode == 0
    assert "it is saved under seed-flow (--key)" in by_option.stdout
    assert keyless.returncode == 1
    assert "required field 'key' is missing" in keyless.stdout
    assert "has no key: give one with --key KEY." in keyless.stderr


@pytest.mark.slow
def test_users_create_and_invite_print_one_time_links_and_keys_take_roles(
    tmp_path: Path,
) -> None:
    import asyncio

    from ordermill.config import Settings
    from ordermill.service import Service
    from ordermill.storage.users import TokenPurpose

    url = f"sqlite+aiosqlite:///{tmp_path}/om.db"
    env = {"ORDERMILL_DATABASE_URL": url, "ORDERMILL_PUBLIC_URL": "https://om.example"}
    assert run("spaces", "create", "acme", cwd=tmp_path, env=env).returncode == 0

    owner = run(
        "users",
        "create",
        "Al@X.example",
        "--space",
        "acme",
        "--role",
        "owner",
        cwd=tmp_path,
        env=env,
    )
    invited = run(
        "users",
        "invite",
        "bo@x.example",
        "--space",
        "acme",
        "--role",
        "operator",
        "--role",
        "viewer",
        cwd=tmp_path,
        env=env,
    )
    unknown_role = run(
        "users",
        "invite",
        "cy@x.example",
        "--space",
        "acme",
        "--role",
        "chef",
        cwd=tmp_path,
        env=env,
    )
    reset_unknown = run("users", "reset", "nobody@x.example", cwd=tmp_path, env=env)
    key = run("spaces", "key", "acme", "--name", "shop", "--role", "viewer", cwd=tmp_path, env=env)

    assert owner.returncode == 0, owner.stderr
    assert invited.returncode == 0, invited.stderr
    links = [r.stdout.strip().splitlines()[-1] for r in (owner, invited)]
    assert all(link.startswith("https://om.example/signin/link/") for link in links)
    assert "al@x.example is now owner in space acme" in owner.stdout
    assert unknown_role.returncode == 1
    assert "'chef' is neither a built-in role" in unknown_role.stderr
    assert reset_unknown.returncode == 1
    assert key.returncode == 0, key.stderr

    async def check() -> tuple[list[str | None], list[tuple[str, ...]], list[tuple[str, ...]]]:
        service = await Service.open(Settings(database_url=url))
        try:
            rows = [
                await service.people.users.peek_link(link.rsplit("/", 1)[1], list(TokenPurpose))
                for link in links
            ]
            members = await service.people.members("acme")
            keys = await service.store.spaces.list_api_keys("acme")
            return (
                [row.purpose if row is not None else None for row in rows],
                [m.roles for m in members],
                [k.roles for k in keys],
            )
        finally:
            await service.close()

    purposes, roles, key_roles = asyncio.run(check())
    assert purposes == ["signin", "invite"]
    assert roles == [("owner",), ("operator", "viewer")]
    assert key_roles == [("owner",), ("viewer",)]
