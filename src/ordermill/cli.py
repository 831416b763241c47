"""The ``ordermill`` command: serve, api, worker, migrate, flows, spaces, users, orders,
connector."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import json
import os
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.table import Table

from ordermill import __version__
from ordermill.config import Settings
from ordermill.errors import InvalidInput, OrdermillError, Problem
from ordermill.flows.status import OrderStatus, TaskStatus
from ordermill.flows.validation import validate_flow
from ordermill.handlers.registry import build_registry
from ordermill.logs import configure_logging_for
from ordermill.remote import Pushed, RemoteApi, flow_file, key_for, read_flow_file

app = typer.Typer(
    help="ordermill: an order-flow engine for made-to-order and digital manufacturing.",
    no_args_is_help=True,
    add_completion=False,
)
flows_app = typer.Typer(help="Work with flow definitions.", no_args_is_help=True)
spaces_app = typer.Typer(help="Manage spaces and their API keys.", no_args_is_help=True)
orders_app = typer.Typer(help="Follow and steer orders.", no_args_is_help=True)
connector_app = typer.Typer(help="Tools for connector authors.", no_args_is_help=True)
users_app = typer.Typer(
    help="Manage people: invite, create, reset passwords.", no_args_is_help=True
)
subscriptions_app = typer.Typer(
    help="Subscribe connector endpoints to a space's order events.", no_args_is_help=True
)
app.add_typer(flows_app, name="flows")
app.add_typer(spaces_app, name="spaces")
app.add_typer(orders_app, name="orders")
app.add_typer(connector_app, name="connector")
app.add_typer(users_app, name="users")
app.add_typer(subscriptions_app, name="subscriptions")

out = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _settings() -> Settings:
    config_file = os.environ.get("ORDERMILL_CONFIG_FILE")
    if config_file and not Path(config_file).is_file():
        err.print(f"[red]ORDERMILL_CONFIG_FILE names {config_file}, which is not a file.[/red]")
        raise typer.Exit(2)
    try:
        return Settings()
    except ValidationError as exc:
        err.print("[red]The configuration is invalid:[/red]")
        for error in exc.errors():
            name = "ORDERMILL_" + "_".join(str(part) for part in error["loc"]).upper()
            err.print(f"  {name}: {error['msg']}")
        raise typer.Exit(2) from exc


def _run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()

    try:
        if sys.platform != "win32":
            import uvloop

            return uvloop.run(main())
        return asyncio.run(main())
    except OrdermillError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc


def _version(value: bool) -> None:
    if value:
        out.print(f"ordermill {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Configuration comes from ORDERMILL_* variables (docs/reference/configuration.md)."""


def _settle() -> None:
    """A long-running process, its code loaded: the objects alive now (modules, classes,
    compiled statements) live as long as the process, so the cyclic garbage collector need not
    walk them again in every full collection of the orders' short-lived objects."""
    gc.collect()
    gc.freeze()


def _uvicorn(settings: Settings, *, run_worker: bool, demo: bool) -> None:
    import uvicorn

    from ordermill.api.app import create_app

    loop = "uvloop" if sys.platform != "win32" else "asyncio"
    application = create_app(settings, run_worker=run_worker, demo=demo)
    _settle()
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_config=None,
        loop=loop,
        timeout_graceful_shutdown=15,
    )


@app.command()
def serve(
    demo: Annotated[bool, typer.Option(help="Create and show the demo space and flow.")] = False,
) -> None:
    """Run the API, the engine and the UI in one process (migrates the database first)."""
    settings = _settings()
    configure_logging_for(settings)
    _run(lambda: _prepare(settings, demo=demo))
    _uvicorn(settings, run_worker=True, demo=demo)


@app.command()
def api() -> None:
    """Run the API (and UI) only; run engines with `ordermill worker`."""
    settings = _settings()
    configure_logging_for(settings)
    _run(lambda: _prepare(settings, demo=False))
    _uvicorn(settings, run_worker=False, demo=False)


async def _prepare(settings: Settings, *, demo: bool) -> None:
    from ordermill.service import Service

    service = await Service.open(settings)
    try:
        if demo:
            from ordermill.demo import (
                DEMO_FLOW,
                DEMO_SPACE,
                ensure_demo,
                ensure_demo_user,
                example_order,
            )

            key = await ensure_demo(service)
            email, link = await ensure_demo_user(service)
            base = settings.base_url
            order = json.dumps(example_order())
            out.rule("[bold]ordermill demo")
            out.print(
                f"Space [bold]{DEMO_SPACE}[/bold] with flow [bold]{DEMO_FLOW}[/bold] is ready."
            )
            if key:
                out.print(f"API key: [bold]{key}[/bold]")
            out.print(f"Operator UI: {base}/ — sign in as [bold]{email}[/bold]:")
            out.print("  set a password with this one-time link (valid one hour):", highlight=False)
            print(f"  {link}")
            out.print(f"API docs: {base}/api/docs")
            out.print("Post an example order:")
            out.print(
                f"  curl -s -X POST {base}/api/orders -H 'Authorization: Bearer {key}' "
                f"-H 'Content-Type: application/json' -d '{order}'",
                soft_wrap=True,
                highlight=False,
            )
            out.print(
                f"then follow it: {base}/api/orders/<id>  or  ordermill orders watch <id>",
                soft_wrap=True,
            )
            out.rule()
    finally:
        await service.close()


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Tasks run at once.")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve Prometheus metrics on this port (on ORDERMILL_HOST)."),
    ] = None,
) -> None:
    """Run the engine only. Start as many as you like against one PostgreSQL database."""
    from ordermill.service import Service

    settings = _settings()
    configure_logging_for(settings)

    async def run() -> None:
        service = await Service.open(settings, run_migrations=False, pre_ping=False)
        engine = service.worker(concurrency=concurrency)
        if metrics_port is not None:
            from prometheus_client import start_http_server

            from ordermill.metrics import REGISTRY

            start_http_server(metrics_port, addr=settings.host, registry=REGISTRY)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, engine.stop)
        _settle()
        try:
            await engine.run()
        finally:
            await service.close()

    _run(run)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from ordermill.storage import migrate as migrations
    from ordermill.storage.database import Database

    settings = _settings()

    async def run() -> None:
        db = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
        try:
            before = await migrations.current_revision(db)
            await migrations.upgrade(db)
            after = await migrations.current_revision(db)
        finally:
            await db.dispose()
        if before == after:
            out.print(f"The database is up to date (revision {after}).")
        else:
            out.print(f"Migrated the database from {before or 'empty'} to {after}.")

    _run(run)


@flows_app.command("validate")
def flows_validate(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A flow JSON file.")],
    key: Annotated[
        str | None,
        typer.Option(help="The key it is saved under (default: its own key, else its file name)."),
    ] = None,
) -> None:
    """Print every problem of a flow with its JSON pointer, or "valid"."""
    settings = _settings()
    document = _read_flow_file(file)
    registry = build_registry(settings).with_context(
        allow_http_hosts=tuple(settings.connector_allow_http)
    )
    saved_under = key_for(document, file, key)
    problems = validate_flow(document, registry, saved_under=saved_under)
    if problems:
        _print_problems(file, problems)
        if "key" not in document and saved_under is None:
            err.print(f"{file} has no key: give one with --key KEY.")
        raise typer.Exit(1)
    out.print(f"{file}: [green]valid[/green]")
    if document.get("key") is None:
        push = f"ordermill flows push {file}" + (f" --key {key}" if key is not None else "")
        source = "--key" if key is not None else "its file name"
        out.print(
            f"It has no key of its own; it is saved under [bold]{saved_under}[/bold] ({source}): "
            f"`{push}` or PUT /api/flows/{saved_under}.",
            soft_wrap=True,
            highlight=False,
        )


def _read_flow_file(file: Path) -> dict[str, Any]:
    try:
        return read_flow_file(file)
    except InvalidInput as exc:
        err.print(f"[red]{exc.message}[/red]", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from exc


def _print_problems(file: Path | str, problems: list[Problem]) -> None:
    table = Table(title=f"{file}: {len(problems)} problem(s)", title_justify="left")
    table.add_column("pointer", style="cyan", no_wrap=True)
    table.add_column("problem")
    for problem in problems:
        table.add_row(problem.pointer or "/", problem.message)
    out.print(table)


ServerUrl = Annotated[
    str, typer.Option("--url", envvar="ORDERMILL_URL", help="The server's base URL.")
]
ApiKey = Annotated[
    str,
    typer.Option(
        "--api-key", envvar="ORDERMILL_API_KEY", help="A space API key.", show_default=False
    ),
]
SpaceKey = Annotated[
    str | None, typer.Option("--space", help="The space (needed with the admin key only).")
]
DEFAULT_URL = "http://127.0.0.1:8000"


@flows_app.command("push")
def flows_push(
    files: Annotated[
        list[Path], typer.Argument(exists=True, dir_okay=False, help="Flow JSON files.")
    ],
    api_key: ApiKey,
    url: ServerUrl = DEFAULT_URL,
    key: Annotated[
        str | None,
        typer.Option(
            help="Save the one FILE under this key (default: its key, else its file name)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate on the server; save nothing.")
    ] = False,
    space: SpaceKey = None,
) -> None:
    """Save flow files on a server: each becomes a new version, or is unchanged.

    Every file is validated by the server first; if one is invalid, nothing is saved.
    """
    if key is not None and len(files) > 1:
        err.print("--key names the key of one file; give one FILE with it.")
        raise typer.Exit(2)
    documents = [(file, _read_flow_file(file)) for file in files]

    async def run() -> bool:
        async with RemoteApi.connect(url, api_key, space) as remote:
            invalid = False
            for file, document in documents:
                try:
                    await remote.push(key_for(document, file, key), document, dry_run=True)
                except InvalidInput as exc:
                    _print_problems(file, exc.problems)
                    invalid = True
            if invalid:
                err.print("Nothing was saved.")
                return False
            for file, document in documents:
                try:
                    result = await remote.push(
                        key_for(document, file, key), document, dry_run=dry_run
                    )
                except InvalidInput as exc:  # what only saving checks, such as the space
                    _print_problems(file, exc.problems)
                    return False
                if result.outcome is Pushed.VALID:
                    out.print(f"{file}: {result.key} valid (--dry-run: not saved)")
                else:
                    out.print(f"{file}: {result.key} {result.outcome} (version {result.version})")
            return True

    if not _run(run):
        raise typer.Exit(1)


@flows_app.command("dry-run")
def flows_dry_run(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A flow JSON file.")],
    order: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="A sample order JSON file.")
    ],
    api_key: ApiKey,
    outcomes: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help='Scripted answers per task key, e.g. {"book-erp": [{"status": 500}]}.',
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Draw the retries' jitter from this seed (a run prints its seed).", min=0
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the server's answer.")] = False,
    url: ServerUrl = DEFAULT_URL,
    space: SpaceKey = None,
) -> None:
    """Run a flow against a sample order on the server's simulated clock: nothing is sent,
    mailed or stored. Exits 1 unless the order would end in SUCCESS without problems."""
    body: dict[str, Any] = {"flow": _read_flow_file(file), "order": _read_json(order)}
    if outcomes is not None:
        body["outcomes"] = _read_json(outcomes)
    if seed is not None:
        body["seed"] = seed

    async def run() -> dict[str, Any]:
        async with RemoteApi.connect(url, api_key, space) as remote:
            return await remote.dry_run(body)

    answer = _run(run)
    if as_json:
        sys.stdout.write(json.dumps(answer, indent=2, ensure_ascii=False) + "\n")
    else:
        out.print(f"Final status: {answer['status']} (seed {answer['seed']})", highlight=False)
        for key, task in answer["tasks"].items():
            tries = ", ".join(
                f"{a['outcome']} at {a['at']}" + (f": {a['error']}" if a.get("error") else "")
                for a in task["attempts"]
            )
            out.print(f"  {key}: {task['status']} ({tries})", highlight=False)
        for request in answer["requests"]:
            out.print(f"POST {request['url']} (attempt {request['attempt']})", highlight=False)
        for email in answer["emails"]:
            out.print(f"E-mail to {', '.join(email['to'])}: {email['subject']}", highlight=False)
        for export in answer["exports"]:
            names = ", ".join(f["fileName"] for f in export["files"])
            out.print(f"Export {export['taskKey']}: {names}", highlight=False)
        for problem in answer["problems"]:
            err.print(f"problem in {problem['taskKey']}: {problem['message']}", highlight=False)
    if answer["status"] != "SUCCESS" or answer["problems"]:
        raise typer.Exit(1)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        err.print(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}")
        raise typer.Exit(2) from exc


@flows_app.command("pull")
def flows_pull(
    key: Annotated[str, typer.Argument(help="The flow key.")],
    api_key: ApiKey,
    url: ServerUrl = DEFAULT_URL,
    version: Annotated[
        int | None, typer.Option(min=1, help="This version, not the current one.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", dir_okay=False, help="Write it to this file.")
    ] = None,
    space: SpaceKey = None,
) -> None:
    """Print a flow as a flow file (key, name, stages), which push takes back unchanged."""

    async def run() -> dict[str, Any]:
        async with RemoteApi.connect(url, api_key, space) as remote:
            return await remote.get_flow(key, version)

    flow = _run(run)
    text = json.dumps(flow_file(flow), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text)
    out.print(f"Wrote {output}: {key} version {flow['version']}.")


@flows_app.command("list")
def flows_list(api_key: ApiKey, url: ServerUrl = DEFAULT_URL, space: SpaceKey = None) -> None:
    """List the space's flows with their current version."""

    async def run() -> list[dict[str, Any]]:
        async with RemoteApi.connect(url, api_key, space) as remote:
            return await remote.list_flows()

    flows = _run(run)
    table = Table(title=f"{len(flows)} flow(s) at {url}", title_justify="left")
    for column in ("key", "name", "version", "orders", "updated"):
        table.add_column(column)
    for flow in flows:
        table.add_row(
            flow["key"],
            flow["name"],
            str(flow["version"]),
            str(flow["orderCount"]),
            flow["updatedAt"],
        )
    out.print(table)


SubscriptionSpace = Annotated[str, typer.Option("--space", help="The space key.")]
SubscriptionId = Annotated[str, typer.Argument(help="The subscription's id (sub_…).")]
Events = Annotated[
    list[str] | None,
    typer.Option(
        "--event",
        help="order.created, order.status, task.failed or order.amended (repeatable).",
    ),
]
FlowKeys = Annotated[
    list[str] | None, typer.Option("--flow", help="Only orders of this flow (repeatable).")
]


def _subscription_call(
    url: str, api_key: str, space: str, method: str, suffix: str = "", body: object = None
) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async with RemoteApi.connect(url, api_key) as remote:
            return await remote.subscriptions(space, method, suffix, body)

    return _run(run)


def _print_subscription(found: dict[str, Any]) -> None:
    state = "on" if found["enabled"] else f"OFF since {found['disabledAt']}"
    flows = ", ".join(found["flowKeys"] or ["every flow"])
    line = f"{found['id']}  {found['uri']}  [{', '.join(found['events'])}]  {flows}  {state}"
    out.print(line, markup=False, highlight=False)


@subscriptions_app.command("list")
def subscriptions_list(
    api_key: ApiKey, space: SubscriptionSpace, url: ServerUrl = DEFAULT_URL
) -> None:
    """List the space's subscriptions."""
    for found in _subscription_call(url, api_key, space, "GET")["items"]:
        _print_subscription(found)


@subscriptions_app.command("create")
def subscriptions_create(
    api_key: ApiKey,
    space: SubscriptionSpace,
    uri: Annotated[str, typer.Option(help="The connector endpoint (https).")],
    event: Events = None,
    flow: FlowKeys = None,
    url: ServerUrl = DEFAULT_URL,
) -> None:
    """Subscribe an endpoint (to every event unless --event says which)."""
    from ordermill.storage.subscriptions import EVENT_TYPES

    body = {"uri": uri, "events": event or list(EVENT_TYPES), "flowKeys": flow or None}
    _print_subscription(_subscription_call(url, api_key, space, "POST", "", body))


@subscriptions_app.command("update")
def subscriptions_update(
    api_key: ApiKey,
    space: SubscriptionSpace,
    subscription: SubscriptionId,
    uri: Annotated[str | None, typer.Option(help="A new endpoint.")] = None,
    event: Events = None,
    flow: FlowKeys = None,
    disable: Annotated[bool, typer.Option("--disable", help="Turn it off.")] = False,
    url: ServerUrl = DEFAULT_URL,
) -> None:
    """Change a subscription's endpoint, events or flows, or turn it off."""
    body: dict[str, Any] = {}
    if uri is not None:
        body["uri"] = uri
    if event:
        body["events"] = event
    if flow:
        body["flowKeys"] = flow
    if disable:
        body["enabled"] = False
    found = _subscription_call(url, api_key, space, "PATCH", f"/{subscription}", body)
    _print_subscription(found)


@subscriptions_app.command("enable")
def subscriptions_enable(
    api_key: ApiKey,
    space: SubscriptionSpace,
    subscription: SubscriptionId,
    redeliver: Annotated[
        bool,
        typer.Option("--redeliver", help="Also deliver again everything since its failures began."),
    ] = False,
    url: ServerUrl = DEFAULT_URL,
) -> None:
    """Turn a disabled subscription on again."""
    body = {"redeliver": redeliver}
    found = _subscription_call(url, api_key, space, "POST", f"/{subscription}/enable", body)
    _print_subscription(found)


@subscriptions_app.command("test")
def subscriptions_test(
    api_key: ApiKey,
    space: SubscriptionSpace,
    subscription: SubscriptionId,
    url: ServerUrl = DEFAULT_URL,
) -> None:
    """Send a signed subscription.test event now and say how the endpoint answered."""
    sent = _subscription_call(url, api_key, space, "POST", f"/{subscription}/test")
    if sent["delivered"]:
        out.print(f"delivered: the endpoint answered {sent['statusCode']}")
        return
    out.print(f"[red]not delivered[/red]: {sent['error'] or sent['statusCode']}")
    raise typer.Exit(1)


@subscriptions_app.command("delete")
def subscriptions_delete(
    api_key: ApiKey,
    space: SubscriptionSpace,
    subscription: SubscriptionId,
    url: ServerUrl = DEFAULT_URL,
) -> None:
    """Unsubscribe (its undelivered events are dropped)."""
    _subscription_call(url, api_key, space, "DELETE", f"/{subscription}")
    out.print(f"deleted {subscription}")


@spaces_app.command("create")
def spaces_create(
    key: Annotated[str, typer.Argument(help="The space key, e.g. acme.")],
    name: Annotated[str | None, typer.Option(help="A display name.")] = None,
    allow_network: Annotated[
        list[str] | None,
        typer.Option(help="A CIDR this space's connectors may reach (repeatable)."),
    ] = None,
    allow_http: Annotated[
        list[str] | None, typer.Option(help="A host this space's connectors may call over http.")
    ] = None,
) -> None:
    """Create a space and print its first API key (shown once)."""
    from ordermill.service import Service

    settings = _settings()

    async def run() -> str:
        service = await Service.open(settings)
        try:
            extra: dict[str, Any] = {}
            if allow_network:
                for network in allow_network:
                    try:
                        ipaddress.ip_network(network, strict=False)
                    except ValueError as exc:
                        raise InvalidInput(
                            [
                                Problem(
                                    "--allow-network",
                                    f"{network!r} is not a CIDR such as 10.0.0.0/8",
                                )
                            ],
                            f"--allow-network {network!r} is not a CIDR network such as 10.0.0.0/8",
                        ) from exc
                extra["connectorAllowNetworks"] = allow_network
            if allow_http:
                extra["connectorAllowHttp"] = allow_http
            await service.store.spaces.create_space(key, name, extra)
            secret, _ = await service.store.spaces.create_api_key(key, "initial")
            return secret
        finally:
            await service.close()

    secret = _run(run)
    out.print(f"Created space [bold]{key}[/bold]. Its API key (shown once, keep it safe):")
    print(secret)


@spaces_app.command("key")
def spaces_key(
    space: Annotated[str, typer.Argument(help="The space key.")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "cli",
    role: Annotated[
        list[str] | None,
        typer.Option(help="A role the key holds (repeatable; built-in or the space's own)."),
    ] = None,
) -> None:
    """Create another API key for a space and print it (shown once)."""
    from ordermill.service import Service

    settings = _settings()

    async def run() -> str:
        service = await Service.open(settings)
        try:
            secret, _ = await service.people.create_key(
                space, name, role or ["owner"], _cli_actor()
            )
            return secret
        finally:
            await service.close()

    print(_run(run))


def _cli_actor() -> Any:
    """Whoever runs the CLI can reach the database, so may do everything; recorded as ``cli``."""
    from ordermill.people import Actor
    from ordermill.permissions import ALL_PERMISSIONS

    return Actor("cli", None, ALL_PERMISSIONS)


EmailArg = Annotated[str, typer.Argument(help="The person's e-mail address.")]
SpaceOpt = Annotated[str, typer.Option("--space", help="The space key.")]
RoleOpt = Annotated[
    list[str], typer.Option("--role", help="A role in the space (repeatable), e.g. owner.")
]


def _add_person(email: str, space: str, roles: list[str], *, first_sign_in: bool) -> None:
    from ordermill.service import Service
    from ordermill.storage.users import TokenPurpose

    settings = _settings()

    async def run() -> Any:
        service = await Service.open(settings)
        try:
            return await service.people.invite(
                space,
                email,
                roles,
                _cli_actor(),
                purpose=TokenPurpose.SIGNIN if first_sign_in else TokenPurpose.INVITE,
            )
        finally:
            await service.close()

    invited = _run(run)
    out.print(f"{invited.user.email} is now {', '.join(roles)} in space [bold]{space}[/bold].")
    if invited.mailed:
        out.print("The invitation is on its way by e-mail (the link works once, within one hour).")
    elif invited.link is not None:
        out.print("One-time link to set a password and sign in (works once, within one hour):")
        print(invited.link)
    else:
        out.print("They already have a password and can sign in as before.")


@users_app.command("create")
def users_create(email: EmailArg, space: SpaceOpt, role: RoleOpt) -> None:
    """Add a person to a space and print a one-time sign-in link (never mailed)."""
    _add_person(email, space, role, first_sign_in=True)


@users_app.command("invite")
def users_invite(email: EmailArg, space: SpaceOpt, role: RoleOpt) -> None:
    """Invite a person to a space: the link is mailed with the send-email handler's SMTP
    settings (ORDERMILL_SMTP_*), or printed when no SMTP server is configured."""
    _add_person(email, space, role, first_sign_in=False)


@users_app.command("reset")
def users_reset(email: EmailArg) -> None:
    """Print a one-time link (valid one hour) with which the person sets a new password."""
    from ordermill.service import Service

    settings = _settings()

    async def run() -> str:
        service = await Service.open(settings)
        try:
            return await service.people.reset_link(email)
        finally:
            await service.close()

    print(_run(run))


_STYLE = {
    TaskStatus.PENDING: "yellow",
    TaskStatus.RUNNING: "cyan",
    TaskStatus.WAITING: "blue",
    TaskStatus.SUCCEEDED: "green",
    TaskStatus.FAILED: "red",
    TaskStatus.TIMED_OUT: "magenta",
    TaskStatus.CANCELLED: "dim",
}


@orders_app.command("watch")
def orders_watch(
    order_id: Annotated[str, typer.Argument(help="The order id (ord_…).")],
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 0.5,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
) -> None:
    """Show the live status of each task until the order ends (exit 1 unless SUCCESS)."""
    from ordermill.service import Service
    from ordermill.storage.orders import OrderView

    settings = _settings()
    ended = (OrderStatus.SUCCESS, OrderStatus.FAILURE, OrderStatus.CANCELLED)

    def render(order: OrderView) -> Table:
        table = Table(
            title=f"{order.third_party_order_id} ({order.id}) — {order.status.value}",
            title_justify="left",
        )
        for column in ("stage", "task", "handler", "status", "attempts", "error"):
            table.add_column(column)
        for task in order.tasks:
            error = (task.error or {}).get("message", "") if isinstance(task.error, dict) else ""
            table.add_row(
                task.stage_key,
                task.key,
                task.handler_key,
                f"[{_STYLE[task.status]}]{task.status.value}[/]",
                str(task.attempts),
                error,
            )
        return table

    async def run() -> OrderStatus:
        service = await Service.open(settings, run_migrations=False)
        try:
            order = await service.store.get_order(None, order_id)
            loop = asyncio.get_running_loop()
            deadline = None if timeout is None else loop.time() + timeout
            with Live(render(order), console=out, refresh_per_second=8) as live:
                while order.status not in ended:
                    if deadline is not None and loop.time() > deadline:
                        break
                    await asyncio.sleep(interval)
                    order = await service.store.get_order(None, order_id)
                    live.update(render(order))
            return order.status
        finally:
            await service.close()

    status = _run(run)
    if status is not OrderStatus.SUCCESS:
        raise typer.Exit(1)


Reason = Annotated[
    str | None, typer.Option("--reason", help="Why: kept on the order and in its timeline.")
]


def _order_action(
    order_id: str,
    action: str,
    body: dict[str, Any],
    *,
    url: str,
    api_key: str,
    space: str | None,
) -> None:
    """POST one operator action to the server and print how the order stands after it."""

    async def run() -> dict[str, Any]:
        async with RemoteApi.connect(url, api_key, space) as remote:
            return await remote.order_action(order_id, action, body)

    order = _run(run)
    paused = (
        f", paused ({order['pause'].get('reason') or 'no reason given'})" if order["paused"] else ""
    )
    out.print(f"{order['id']}: {order['status']}{paused}, flow version {order['flowVersion']}")
    for task in order["tasks"]:
        out.print(f"  {task['key']}: [{_STYLE[TaskStatus(task['status'])]}]{task['status']}[/]")


OrderId = Annotated[
    str | None,
    typer.Argument(help="The order id (ord_…); without it, every order the filter matches."),
]
Statuses = Annotated[
    list[str] | None,
    typer.Option(
        "--status", help="Bulk: orders in this status (repeat for more).", show_default=False
    ),
]
FlowFilter = Annotated[
    str | None, typer.Option("--flow", help="Bulk: orders of this flow (its key).")
]
CreatedFrom = Annotated[
    str | None, typer.Option("--created-from", help="Bulk: created at or after (ISO 8601).")
]
CreatedTo = Annotated[
    str | None, typer.Option("--created-to", help="Bulk: created before (ISO 8601).")
]
Limit = Annotated[int, typer.Option("--limit", help="Bulk: act on at most this many orders.")]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Bulk: only count the orders that would change.")
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Bulk: act without asking.")]

_DONE = {
    "retry": "retried",
    "pause": "paused",
    "resume": "resumed",
    "cancel": "cancelled",
    "restart": "restarted",
}


@dataclass(frozen=True)
class BulkFilter:
    """Which orders a bulk command acts on (``ordermill orders ACTION --status …``)."""

    status: list[str] | None = None
    flow: str | None = None
    created_from: str | None = None
    created_to: str | None = None
    limit: int = 100

    @property
    def given(self) -> bool:
        return bool(self.status or self.flow or self.created_from or self.created_to)

    def body(self) -> dict[str, Any]:
        fields = {
            "status": [s.upper() for s in self.status] if self.status else None,
            "flowKey": self.flow,
            "createdFrom": self.created_from,
            "createdTo": self.created_to,
            "limit": self.limit,
        }
        return {name: value for name, value in fields.items() if value is not None}


def _one_or_many(
    order_id: str | None,
    action: str,
    body: dict[str, Any],
    which: BulkFilter,
    *,
    dry_run: bool,
    yes: bool,
    url: str,
    api_key: str,
    space: str | None,
) -> None:
    """One order's action when ``order_id`` is given, else the bulk form by ``which``."""
    if order_id is not None:
        if which.given or dry_run:
            err.print("Give an order id or a filter (--status, --flow, --created-…), not both.")
            raise typer.Exit(2)
        _order_action(order_id, action, body, url=url, api_key=api_key, space=space)
        return
    _bulk_action(
        action,
        {**body, **which.body()},
        dry_run=dry_run,
        yes=yes,
        url=url,
        api_key=api_key,
        space=space,
    )


def _bulk_action(
    action: str,
    body: dict[str, Any],
    *,
    dry_run: bool,
    yes: bool,
    url: str,
    api_key: str,
    space: str | None,
) -> None:
    """Count the orders first; unless only counting, ask, then act once (an idempotency key
    makes a resend of the same request harmless)."""

    def changed(answer: dict[str, Any]) -> list[str]:
        ids: list[str] = answer.get("changed", answer.get("retried", []))
        return ids

    async def call(dry: bool) -> dict[str, Any]:
        async with RemoteApi.connect(url, api_key, space) as remote:
            key = None if dry else str(uuid.uuid4())
            return await remote.bulk_action(action, {**body, "dryRun": dry}, key)

    counted = _run(lambda: call(True))
    ids = changed(counted)
    out.print(
        f"{len(ids)} of {counted['matched']} matching orders would be {_DONE[action]}"
        f" ({counted['skipped']} do not fit):"
    )
    for order_id in ids:
        out.print(f"  {order_id}")
    if dry_run or not ids:
        return
    if not yes and not typer.confirm(f"{action.capitalize()} {_orders(len(ids))}?"):
        err.print("Nothing changed.")
        raise typer.Exit(1)
    done = changed(_run(lambda: call(False)))
    out.print(f"{_orders(len(done))} {_DONE[action]}.")


def _orders(count: int) -> str:
    return f"{count} order" if count == 1 else f"{count} orders"


def _steering_command(action: str, help_text: str) -> None:
    """``ordermill orders {action} [ORDER_ID] [--reason …]`` for pause, resume and cancel;
    without an order id, the bulk form by filter."""

    def command(
        api_key: ApiKey,
        order_id: OrderId = None,
        reason: Reason = None,
        status: Statuses = None,
        flow: FlowFilter = None,
        created_from: CreatedFrom = None,
        created_to: CreatedTo = None,
        limit: Limit = 100,
        dry_run: DryRun = False,
        yes: Yes = False,
        url: ServerUrl = DEFAULT_URL,
        space: SpaceKey = None,
    ) -> None:
        which = BulkFilter(status, flow, created_from, created_to, limit)
        _one_or_many(
            order_id,
            action,
            {"reason": reason},
            which,
            dry_run=dry_run,
            yes=yes,
            url=url,
            api_key=api_key,
            space=space,
        )

    command.__name__ = f"orders_{action}"
    orders_app.command(action, help=help_text)(command)


_steering_command("pause", "Pause an order: nothing new of it starts; attempts in flight finish.")
_steering_command("resume", "Resume a paused order; timers that fell due meanwhile fire now.")
_steering_command("cancel", "Cancel an order (for good).")


@orders_app.command("retry")
def orders_retry(
    api_key: ApiKey,
    order_id: OrderId = None,
    status: Statuses = None,
    flow: FlowFilter = None,
    created_from: CreatedFrom = None,
    created_to: CreatedTo = None,
    limit: Limit = 100,
    dry_run: DryRun = False,
    yes: Yes = False,
    url: ServerUrl = DEFAULT_URL,
    space: SpaceKey = None,
) -> None:
    """Retry the failed and timed-out tasks of a FAILURE or UNHEALTHY order (by default, in
    bulk: FAILURE and UNHEALTHY orders)."""
    which = BulkFilter(status, flow, created_from, created_to, limit)
    _one_or_many(
        order_id,
        "retry",
        {},
        which,
        dry_run=dry_run,
        yes=yes,
        url=url,
        api_key=api_key,
        space=space,
    )


@orders_app.command("skip")
def orders_skip(
    order_id: Annotated[str, typer.Argument(help="The order id (ord_…).")],
    task_key: Annotated[str, typer.Argument(help="The task to mark succeeded.")],
    api_key: ApiKey,
    reason: Reason = None,
    result: Annotated[
        str | None, typer.Option(help="The task's result, a JSON object.", show_default=False)
    ] = None,
    url: ServerUrl = DEFAULT_URL,
    space: SpaceKey = None,
) -> None:
    """Mark a FAILED, WAITING or TIMED_OUT task succeeded by hand; its successors run."""
    body: dict[str, Any] = {"reason": reason}
    if result is not None:
        try:
            body["result"] = json.loads(result)
        except json.JSONDecodeError as exc:
            err.print(f"--result is not JSON: {exc.msg}")
            raise typer.Exit(2) from exc
    action = f"tasks/{quote(task_key, safe='')}/skip"
    _order_action(order_id, action, body, url=url, api_key=api_key, space=space)


@orders_app.command("restart")
def orders_restart(
    api_key: ApiKey,
    order_id: OrderId = None,
    flow_version: Annotated[
        str, typer.Option("--flow-version", help="latest, or a version number.")
    ] = "latest",
    start: Annotated[
        bool,
        typer.Option(
            "--from-start/--from-failed",
            help="Run every task again, or keep what succeeded (the default).",
        ),
    ] = False,
    reason: Reason = None,
    status: Statuses = None,
    flow: FlowFilter = None,
    created_from: CreatedFrom = None,
    created_to: CreatedTo = None,
    limit: Limit = 100,
    dry_run: DryRun = False,
    yes: Yes = False,
    url: ServerUrl = DEFAULT_URL,
    space: SpaceKey = None,
) -> None:
    """Move a FAILURE, UNHEALTHY or CANCELLED order onto another version of its flow."""
    if flow_version != "latest" and not flow_version.isdigit():
        err.print("--flow-version is latest or a version number.")
        raise typer.Exit(2)
    body = {
        "flowVersion": flow_version if flow_version == "latest" else int(flow_version),
        "from": "start" if start else "failed",
        "reason": reason,
    }
    which = BulkFilter(status, flow, created_from, created_to, limit)
    _one_or_many(
        order_id,
        "restart",
        body,
        which,
        dry_run=dry_run,
        yes=yes,
        url=url,
        api_key=api_key,
        space=space,
    )


@orders_app.command("explain")
def orders_explain(
    order_id: Annotated[str, typer.Argument(help="The order id (ord_…).")],
    api_key: ApiKey,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's answer.")] = False,
    url: ServerUrl = DEFAULT_URL,
    space: SpaceKey = None,
) -> None:
    """Say what each unfinished task of an order waits for, and how it stands to its deadline."""

    async def run() -> dict[str, Any]:
        async with RemoteApi.connect(url, api_key, space) as remote:
            return await remote.get_order_part(order_id, "explain")

    answer = _run(run)
    if as_json:
        sys.stdout.write(json.dumps(answer, indent=2, ensure_ascii=False) + "\n")
        return
    out.print(answer["sentence"], highlight=False)
    for wait in answer["tasks"]:
        out.print(
            f"  {wait['taskKey']} ({wait['status']}) waits for {wait['words']}", highlight=False
        )
    if answer["criticalPath"]:
        out.print(f"Critical path: {' → '.join(answer['criticalPath'])}", highlight=False)
    if answer["earliestFinish"]:
        late = " — misses the deadline" if answer["missesDeadline"] else ""
        out.print(f"Earliest finish: {answer['earliestFinish']}{late}", highlight=False)


_VERDICT_STYLE = {"pass": "green", "warn": "yellow", "fail": "red"}


_CHECK_HELP = (
    "Check that a connector accepts ordermill's signed orders and refuses forged ones.\n\n"
    "Sends a signed sample order and the same delivery again (2xx expected), then requests "
    "without a signature and with a forged one (4xx required) and one with a timestamp an hour "
    "old (4xx expected; a warning otherwise). Redirects are not followed. Exits 0 only when "
    "every required check passes.\n\n"
    "The URL may be any address you can reach, 127.0.0.1 included: this is your own tool, so "
    "no network guard applies."
)


@connector_app.command("check", help=_CHECK_HELP)
def connector_check(
    url: Annotated[
        str, typer.Argument(help="The connector endpoint, e.g. https://erp.example.com/orders.")
    ],
    secret: Annotated[
        str, typer.Option(help="The space's signing secret (whsec_…) the connector verifies with.")
    ],
    ca_file: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="Also trust this CA bundle (a private or test CA)."
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait for each answer (and for feedback).")
    ] = 10.0,
    listen: Annotated[
        bool,
        typer.Option(
            help="Start a feedback sink on 127.0.0.1 for the sample order's updateUrl and assets "
            "(for a connector on this machine)."
        ),
    ] = False,
) -> None:
    """Send the conformance checks to URL and print the report."""
    import ssl

    from ordermill.connector.conformance import run_checks

    if not url.startswith(("https://", "http://")):
        err.print(f"[red]error:[/red] {url} is not an http(s) URL")
        raise typer.Exit(2)
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    report = _run(
        lambda: run_checks(url, secret, ssl_context=context, seconds=timeout, listen=listen)
    )
    table = Table(title=f"ordermill connector check: {url}", title_justify="left")
    for column in ("check", "expected", "got", "verdict", "note"):
        table.add_column(column)
    for result in report.results:
        style = _VERDICT_STYLE[result.verdict.value]
        table.add_row(
            result.name, result.expected, result.got, f"[{style}]{result.verdict}[/]", result.note
        )
    out.print(table)
    failed = [result for result in report.results if result.verdict.value == "fail"]
    warned = sum(result.verdict.value == "warn" for result in report.results)
    if failed:
        for result in failed:
            out.print(f"[red]FAIL[/red] {result.name}: {result.note}", soft_wrap=True)
        raise typer.Exit(1)
    out.print(f"[green]PASS[/green]: every required check passed ({warned} warning(s)).")
