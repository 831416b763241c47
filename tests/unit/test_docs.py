"""The documentation keeps up with the code: every setting, API route and CLI command is named.

These tests fail on purpose when someone adds a setting, a route, a command or an option
without documenting it in docs/reference/. Write the documentation in the same change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from starlette.routing import BaseRoute, Route

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
# A route is named in code style: `GET /api/orders/{id}`.
ROUTE_IN_TEXT = re.compile(rf"`({'|'.join(HTTP_METHODS)}) (/[^\s`]*)")


def normalised(path: str) -> str:
    """``/api/orders/{order_id}`` and ``/api/orders/{id}`` are the same route."""
    return re.sub(r"\{[^}]*\}", "{}", path.rstrip(".:"))


def served_routes(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every route, looking inside included routers.

    FastAPI may keep an included router as one entry of ``app.routes`` that wraps the router's
    own routes; those are walked with the prefix they were included under.
    """
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from served_routes(included.routes, prefix + getattr(context, "prefix", ""))
        elif isinstance(route, Route):
            for method in route.methods or ():
                yield method, prefix + route.path


def api_routes() -> set[str]:
    """Every "METHOD /path" the application serves under /api."""
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"), run_worker=False)
    return {
        f"{method} {normalised(path)}"
        for method, path in served_routes(app.routes)
        if method in HTTP_METHODS
        and path.startswith("/api")
        and not path.startswith(UNDOCUMENTED_PREFIXES)
    }


def documented_routes() -> set[str]:
    text = API_DOC.read_text()
    return {f"{method} {normalised(path)}" for method, path in ROUTE_IN_TEXT.findall(text)}


def cli_commands() -> dict[str, Any]:
    """Every command of the ``ordermill`` CLI by its full name, groups included.

    Typer builds on its own copy of click, so groups are recognised by their ``commands``.
    """
    found: dict[str, Any] = {}

    def walk(command: Any, name: str) -> None:
        found[name] = command
        for sub_name, sub in (getattr(command, "commands", None) or {}).items():
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
    assert not missing, f"document in {CONFIG_DOC.relative_to(ROOT)}: {', '.join(missing)}"


def test_the_configuration_reference_names_no_setting_that_does_not_exist() -> None:
    """An ORDERMILL_<NAME> in the configuration reference is a setting (or the config file)."""
    known = {f"ORDERMILL_{name.upper()}" for name in Settings.model_fields}
    known.add("ORDERMILL_CONFIG_FILE")
    named = set(re.findall(r"\bORDERMILL_[A-Z0-9_]+\b", CONFIG_DOC.read_text()))
    assert sorted(named - known) == []


def test_every_api_route_is_documented() -> None:
    """Each route under /api appears as `METHOD /path` in docs/reference/api.md."""
    missing = sorted(api_routes() - documented_routes())
    assert not missing, f"document in {API_DOC.relative_to(ROOT)}: {', '.join(missing)}"


def test_the_api_reference_documents_no_route_that_does_not_exist() -> None:
    """A "METHOD /api/…" in the API reference is a route the application serves."""
    documented = {
        route
        for route in documented_routes()
        if route.split(" ")[1].startswith("/api")
        and not route.split(" ")[1].startswith(UNDOCUMENTED_PREFIXES)
    }
    assert sorted(documented - api_routes()) == []


def test_every_cli_command_is_documented() -> None:
    """Each command and command group appears as "ordermill …" in docs/reference/cli.md."""
    text = CLI_DOC.read_text()
    missing = [name for name in cli_commands() if name not in text]
    assert not missing, f"document in {CLI_DOC.relative_to(ROOT)}: {', '.join(missing)}"


@pytest.mark.parametrize("name", sorted(cli_commands()))
def test_every_cli_option_is_documented(name: str) -> None:
    """Each option of each command (but --help) appears in docs/reference/cli.md."""
    text = CLI_DOC.read_text()
    options = [
        option
        for param in cli_commands()[name].params
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


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes for the headings of a Markdown page."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_links_between_documentation_pages_lead_somewhere() -> None:
    """Every relative link in README.md and docs/ names a file, and a heading, that exist."""
    pages = [ROOT / "README.md", *DOCS.rglob("*.md")]
    broken = []
    for page in pages:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            linked = page.parent / target if target else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)} → {target}")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page.relative_to(ROOT)} → {target}#{anchor}")
    assert broken == []


def test_the_command_table_of_the_cli_reference_lists_every_command() -> None:
    """Each command (not group) is a row of the table at the top of docs/reference/cli.md."""
    rows = set(re.findall(r"^\| \[`(ordermill [a-z -]+)`\]", CLI_DOC.read_text(), re.MULTILINE))
    commands = {
        name for name, command in cli_commands().items() if not hasattr(command, "commands")
    }
    assert sorted(commands - rows) == []
    assert sorted(rows - commands) == []
