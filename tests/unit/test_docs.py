"""The documentation keeps up with the code: every setting, API route and CLI command is named.

These tests fail on purpose when someone adds a setting, a route, a command or an option
without documenting it in docs/reference/. Write the documentation in the same change.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import typer.main
from fastapi.routing import APIRoute
from starlette.routing import Route

import ordermill.cli
from ordermill.api.app import create_app
from ordermill.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
API_DOC = DOCS / "reference" / "api.md"
CLI_DOC = DOCS / "reference" / "cli.md"
CONFIG_DOC = DOCS / "reference" / "configuration.md"

# Served by the framework for the API docs themselves, not routes a client calls.
UNDOCUMENTED_PREFIXES = ("/api/static", "/api/docs")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ROUTE_IN_TEXT = re.compile(rf"\b({'|'.join(HTTP_METHODS)}) (/[^\s`)|,;]*)")


def normalised(path: str) -> str:
    """``/api/orders/{order_id}`` and ``/api/orders/{id}`` are the same route."""
    return re.sub(r"\{[^}]*\}", "{}", path.rstrip(".:"))


def api_routes() -> set[str]:
    """Every "METHOD /path" the application serves under /api."""
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"), run_worker=False)
    routes = set()
    for route in app.routes:
        if not isinstance(route, APIRoute | Route) or not route.path.startswith("/api"):
            continue
        if route.path.startswith(UNDOCUMENTED_PREFIXES):
            continue
        for method in route.methods or ():
            if method in HTTP_METHODS:
                routes.add(f"{method} {normalised(route.path)}")
    return routes


def documented_routes() -> set[str]:
    text = API_DOC.read_text()
    return {f"{method} {normalised(path)}" for method, path in ROUTE_IN_TEXT.findall(text)}


def cli_commands() -> dict[str, click.Command]:
    """Every command of the ``ordermill`` CLI by its full name, groups included."""
    found: dict[str, click.Command] = {}

    def walk(command: click.Command, name: str) -> None:
        found[name] = command
        if isinstance(command, click.Group):
            for sub_name, sub in command.commands.items():
                walk(sub, f"{name} {sub_name}")

    walk(typer.main.get_command(ordermill.cli.app), "ordermill")
    return found


def test_every_setting_is_documented_as_its_environment_variable() -> None:
    """Each Settings field appears as ORDERMILL_<NAME> in docs/reference/configuration.md."""
    text = CONFIG_DOC.read_text()
    missing = [
        f"ORDERMILL_{name.upper()}"
        for name in Settings.model_fields
        if not re.search(rf"\bORDERMILL_{name.upper()}\b", text)
    ]
    assert missing == [], f"document these settings in {CONFIG_DOC.relative_to(ROOT)}"


def test_the_configuration_reference_names_no_setting_that_does_not_exist() -> None:
    """An ORDERMILL_<NAME> in the configuration reference is a setting (or the config file)."""
    known = {f"ORDERMILL_{name.upper()}" for name in Settings.model_fields}
    known.add("ORDERMILL_CONFIG_FILE")
    named = set(re.findall(r"\bORDERMILL_[A-Z0-9_]+\b", CONFIG_DOC.read_text()))
    assert sorted(named - known) == []


def test_every_api_route_is_documented() -> None:
    """Each route under /api appears as "METHOD /path" in docs/reference/api.md."""
    missing = sorted(api_routes() - documented_routes())
    assert missing == [], f"document these routes in {API_DOC.relative_to(ROOT)}"


def test_the_api_reference_documents_no_route_that_does_not_exist() -> None:
    """A "METHOD /api/…" in the API reference is a route the application serves."""
    documented = {route for route in documented_routes() if route.split(" ")[1].startswith("/api")}
    assert sorted(documented - api_routes()) == []


def test_every_cli_command_is_documented() -> None:
    """Each command and command group appears as "ordermill …" in docs/reference/cli.md."""
    text = CLI_DOC.read_text()
    missing = [name for name in cli_commands() if name not in text]
    assert missing == [], f"document these commands in {CLI_DOC.relative_to(ROOT)}"


@pytest.mark.parametrize("name", sorted(cli_commands()))
def test_every_cli_option_is_documented(name: str) -> None:
    """Each option of each command (but --help) appears in docs/reference/cli.md."""
    text = CLI_DOC.read_text()
    options = [
        option
        for param in cli_commands()[name].params
        if isinstance(param, click.Option)
        for option in (*param.opts, *param.secondary_opts)
        if option.startswith("--") and option != "--help"
    ]
    assert [option for option in options if option not in text] == []


def test_the_readme_starts_with_the_two_set_up_commands() -> None:
    """The README's first code block is exactly `make run` and `make test`."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"^```[^\n]*\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert block is not None
    assert block.group(1).splitlines() == ["make run", "make test"]


def test_links_between_documentation_pages_lead_somewhere() -> None:
    """Every relative link in README.md and docs/ names a file that exists."""
    pages = [ROOT / "README.md", *DOCS.rglob("*.md")]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} → {target}")
    assert broken == []
