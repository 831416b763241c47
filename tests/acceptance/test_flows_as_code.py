"""`ordermill flows push/pull/list` against a real `ordermill serve`, as CI would run them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import ADMIN_KEY, Api, ServeProcess, free_port
from tests.acceptance.test_cli import run
from tests.support.receiver import HttpsReceiver
from tests.support.reference import example_flow


def remote(api: Api, serve: ServeProcess) -> dict[str, str]:
    """The environment that points the CLI at the server with the space's key."""
    return {
        "ORDERMILL_URL": serve.base_url,
        "ORDERMILL_API_KEY": api.headers["Authorization"].removeprefix("Bearer "),
    }


@pytest.fixture
def env(api: Api, serve: ServeProcess) -> dict[str, str]:
    return remote(api, serve)


@pytest.fixture
def flow(https_receiver: HttpsReceiver) -> dict[str, Any]:
    """The reference page's example flow, calling the test receiver."""
    return example_flow(https_receiver.url("/orders"))


def write(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))
    return path


def test_push_creates_a_flow_then_says_unchanged_then_makes_a_new_version(
    tmp_path: Path, api: Api, env: dict[str, str], flow: dict[str, Any]
) -> None:
    path = write(tmp_path / "flows" / "seed-flow.json", flow)

    created = run("flows", "push", str(path), cwd=tmp_path, env=env)
    again = run("flows", "push", str(path), cwd=tmp_path, env=env)
    flow["stages"][0]["taskDefinitions"][0]["timeoutDuration"] = 2000
    write(path, flow)
    changed = run("flows", "push", str(path), cwd=tmp_path, env=env)

    assert (created.returncode, again.returncode, changed.returncode) == (0, 0, 0), created.stderr
    assert f"{path}: seed-flow created (version 1)" in created.stdout
    assert f"{path}: seed-flow unchanged (version 1)" in again.stdout
    assert f"{path}: seed-flow updated (version 2)" in changed.stdout
    stored = api.get("/api/flows/seed-flow")
    assert (stored["name"], stored["version"]) == ("seed-flow", 2)
    assert stored["stages"] == flow["stages"]


def test_push_with_a_key_and_several_files_with_their_own_keys(
    tmp_path: Path, api: Api, env: dict[str, str], flow: dict[str, Any]
) -> None:
    bare = write(tmp_path / "seed.json", flow)
    keyed = write(tmp_path / "b.json", {"key": "keyed-flow", "name": "Keyed flow", **flow})

    by_option = run("flows", "push", str(bare), "--key", "chosen", cwd=tmp_path, env=env)
    both = run("flows", "push", str(bare), str(keyed), cwd=tmp_path, env=env)

    assert by_option.returncode == 0, by_option.stdout + by_option.stderr
    assert "chosen created (version 1)" in by_option.stdout
    assert both.returncode == 0, both.stdout + both.stderr
    assert "seed created (version 1)" in both.stdout
    assert "keyed-flow created (version 1)" in both.stdout
    keys = [flow["key"] for flow in api.get("/api/flows")["items"]]
    assert keys == ["chosen", "keyed-flow", "seed"]


def test_an_invalid_file_prints_the_problem_table_and_nothing_is_saved(
    tmp_path: Path, api: Api, env: dict[str, str], flow: dict[str, Any]
) -> None:
    good = write(tmp_path / "good-flow.json", flow)
    broken = copy.deepcopy(flow)
    broken["stages"][0]["taskDefinitions"][0]["handlerKey"] = "consume-rest-apii"
    bad = write(tmp_path / "bad-flow.json", broken)

    result = run("flows", "push", str(good), str(bad), cwd=tmp_path, env=env)

    assert result.returncode == 1
    assert f"{bad}: 1 problem(s)" in result.stdout
    assert "/stages/0/taskDefinitions/0/handlerKey" in result.stdout
    assert "did you mean 'consume-rest-api'?" in result.stdout
    assert "Nothing was saved." in result.stderr
    assert api.get("/api/flows")["items"] == []


def test_dry_run_checks_with_the_servers_handlers_and_space_and_saves_nothing(
    tmp_path: Path, api: Api, env: dict[str, str]
) -> None:
    plain_http = write(tmp_path / "plain.json", example_flow("http://erp.example.com/orders"))
    https = write(tmp_path / "https.json", example_flow("https://erp.example.com/orders"))

    refused = run("flows", "push", "--dry-run", str(plain_http), cwd=tmp_path, env=env)
    accepted = run("flows", "push", "--dry-run", str(https), cwd=tmp_path, env=env)

    assert refused.returncode == 1
    assert "/stages/0/taskDefinitions/0/payload/uri" in refused.stdout
    assert "must use https" in refused.stdout
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert f"{https}: https valid (--dry-run: not saved)" in accepted.stdout
    assert api.get("/api/flows")["items"] == []


def test_pull_prints_the_flow_file_that_push_takes_back_unchanged(
    tmp_path: Path, env: dict[str, str], flow: dict[str, Any]
) -> None:
    path = write(tmp_path / "seed-flow.json", flow)
    assert run("flows", "push", str(path), cwd=tmp_path, env=env).returncode == 0
    write(path, {**flow, "name": "Seed flow (EU)"})
    assert run("flows", "push", str(path), cwd=tmp_path, env=env).returncode == 0

    current = run("flows", "pull", "seed-flow", cwd=tmp_path, env=env)
    first = run("flows", "pull", "seed-flow", "--version", "1", cwd=tmp_path, env=env)
    pulled = tmp_path / "pulled" / "seed-flow.json"
    pulled.parent.mkdir()
    written = run("flows", "pull", "seed-flow", "-o", str(pulled), cwd=tmp_path, env=env)
    pushed_back = run("flows", "push", str(pulled), cwd=tmp_path, env=env)

    assert json.loads(current.stdout) == {"key": "seed-flow", "name": "Seed flow (EU)", **flow}
    assert json.loads(first.stdout) == {"key": "seed-flow", "name": "seed-flow", **flow}
    assert written.returncode == 0
    assert json.loads(pulled.read_text()) == json.loads(current.stdout)
    assert "seed-flow unchanged (version 2)" in pushed_back.stdout


def test_list_shows_each_flow_with_its_version(
    tmp_path: Path, serve: ServeProcess, env: dict[str, str], flow: dict[str, Any]
) -> None:
    path = write(tmp_path / "seed-flow.json", flow)
    assert run("flows", "push", str(path), cwd=tmp_path, env=env).returncode == 0

    result = run("flows", "list", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.stderr
    assert f"1 flow(s) at {serve.base_url}" in result.stdout
    row = next(line for line in result.stdout.splitlines() if "seed-flow" in line)
    assert row.split("│")[1:4] == [" seed-flow ", " seed-flow ", " 1       "]


def test_a_wrong_url_a_wrong_key_and_an_unknown_flow_are_explained(
    tmp_path: Path, serve: ServeProcess, env: dict[str, str]
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"

    refused = run("flows", "list", "--url", nobody, cwd=tmp_path, env=env)
    wrong_key = run("flows", "list", "--api-key", "om_wrong", cwd=tmp_path, env=env)
    unknown = run("flows", "pull", "nope", cwd=tmp_path, env=env)
    no_key = run("flows", "list", "--url", serve.base_url, cwd=tmp_path)

    assert refused.returncode == 1
    assert f"error: cannot reach {nobody}" in refused.stderr
    assert "--url or ORDERMILL_URL" in refused.stderr
    assert wrong_key.returncode == 1
    assert "refused the API key: The API key is unknown or revoked." in wrong_key.stderr
    assert "--api-key or ORDERMILL_API_KEY" in wrong_key.stderr
    assert unknown.returncode == 1
    assert "error: flow 'nope' does not exist in space 'acme'" in unknown.stderr
    assert no_key.returncode == 2
    assert "--api-key" in no_key.stderr


def test_the_admin_key_works_in_the_space_named_with_space(
    tmp_path: Path, serve: ServeProcess, api: Api, flow: dict[str, Any]
) -> None:
    admin = {"ORDERMILL_URL": serve.base_url, "ORDERMILL_API_KEY": ADMIN_KEY}
    path = write(tmp_path / "seed-flow.json", flow)

    unnamed = run("flows", "push", str(path), cwd=tmp_path, env=admin)
    pushed = run("flows", "push", str(path), "--space", "acme", cwd=tmp_path, env=admin)
    listed = run("flows", "list", "--space", "acme", cwd=tmp_path, env=admin)

    assert unnamed.returncode == 1
    assert "the admin key must name the space (spaceKey)" in unnamed.stdout
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "seed-flow created (version 1)" in pushed.stdout
    assert "seed-flow" in listed.stdout
    assert api.get("/api/flows/seed-flow")["spaceKey"] == "acme"
