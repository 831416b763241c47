"""A flow's page: its graph, its versions, and the stages editor validated as you type."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated

from fastapi import Form, Query, Request, Response
from pydantic import TypeAdapter, ValidationError

from ordermill.api.routes.steering import OutcomeIn
from ordermill.api.schemas import parse_order
from ordermill.dryrun import DryRun
from ordermill.errors import InvalidInput, Problem
from ordermill.flows.examples import reference_order
from ordermill.handlers.registry import problems_of
from ordermill.jsoncodec import parse_untrusted
from ordermill.service import Service
from ordermill.ui.graph import (
    Graph,
    TaskState,
    flow_graph,
    stages_of_definition,
    stages_of_document,
)
from ordermill.ui.jsonlines import line_of, pointer_lines
from ordermill.ui.routing import ui_router
from ordermill.ui.session import Session, SessionDep
from ordermill.ui.templating import Toast, redirect, render

router = ui_router()

StagesText = Annotated[str, Form(max_length=1_000_000)]
NameText = Annotated[str, Form(max_length=1000)]
SampleText = Annotated[str, Form(max_length=1_000_000)]
_OUTCOMES: TypeAdapter[dict[str, list[OutcomeIn]]] = TypeAdapter(dict[str, list[OutcomeIn]])


def sample_order() -> str:
    """The editor's sample order: the reference order, its space and flow left to the page."""
    order = reference_order()
    for name in ("spaceKey", "flowKey"):
        order.pop(name, None)
    return json.dumps(order, indent=2)


@dataclass(frozen=True)
class Located:
    """A validator problem and the editor line it points at (None: not in the stages text)."""

    pointer: str
    message: str
    line: int | None


@dataclass(frozen=True)
class Checked:
    problems: list[Located]
    preview: Graph | None  # None when the text is not JSON, so nothing can be drawn


def flow_document(name: str, parsed: object) -> object:
    """The flow the editor holds: its text is the stages array, or a whole flow document such
    as the reference page's ``{"stages": [...]}``. The Name field fills in a missing name; an
    empty one leaves the name to default to the key."""
    document = dict(parsed) if isinstance(parsed, dict) else {"stages": parsed}
    if name.strip() and document.get("name") is None:
        document["name"] = name
    return document


async def check(service: Service, session: Session, key: str, name: str, text: str) -> Checked:
    """Run the server's validator on the editor's content and place each problem on a line."""
    try:
        parsed = parse_untrusted(text)
    except InvalidInput as exc:
        return Checked([_json_problem(text, problem) for problem in exc.problems], None)
    problems = await service.validate_flow(
        session.space_key, flow_document(name, parsed), saved_under=key
    )
    located = _located(problems, text, parsed)
    stages = parsed.get("stages") if isinstance(parsed, dict) else parsed
    return Checked(located, flow_graph(stages_of_document(stages)))


def _json_problem(text: str, problem: Problem) -> Located:
    """Where the text breaks the JSON syntax or a limit of docs/reference/limits.md. A syntax
    error is parsed again for its line: the limits were checked, so the nesting is bounded."""
    if not problem.pointer:
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            message = f"this is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            return Located("/stages", message, exc.lineno)
    whole = text.lstrip().startswith("{")
    return Located(("" if whole else "/stages") + problem.pointer, problem.message, None)


def _located(problems: list[Problem], text: str, parsed: object) -> list[Located]:
    lines = pointer_lines(text)
    whole = isinstance(parsed, dict)
    return [_locate(problem, lines, whole=whole) for problem in problems]


def _locate(problem: Problem, lines: dict[str, int], *, whole: bool) -> Located:
    """The line of a problem: pointers are into the document, the text may be its stages."""
    line = None
    if whole:
        line = line_of(lines, problem.pointer)
    elif problem.pointer == "/stages" or problem.pointer.startswith("/stages/"):
        line = line_of(lines, problem.pointer.removeprefix("/stages"))
    return Located(problem.pointer, problem.message, line)


@router.get("/flows/{key}")
async def flow_page(
    request: Request,
    session: SessionDep,
    key: str,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    service: Service = request.app.state.service
    flow = await service.store.flows.get(session.space_key, key)
    listed = await service.store.flows.list_flows(session.space_key)
    order_count = next((f.order_count for f in listed if f.key == key), 0)
    versions = await service.store.flows.versions(session.space_key, key)
    shown = flow.current
    if version is not None and version != flow.current_version:
        shown = await service.store.flows.version(session.space_key, key, version)
    definition = shown.definition
    text = json.dumps([stage.to_wire() for stage in definition.stages], indent=2)
    graph = flow_graph(stages_of_definition(definition))
    return render(
        request,
        "flow.html",
        active="flows",
        flow=flow,
        order_count=order_count,
        versions=versions,
        shown=shown,
        # A flow without a name of its own is named after its key: the field stays empty.
        name="" if definition.name == definition.key else definition.name,
        text=text,
        graph=graph,
        checked=Checked([], graph),
        sample=sample_order(),
    )


@router.post("/flows/{key}/validate")
async def validate(
    request: Request, session: SessionDep, key: str, stages: StagesText = "", name: NameText = ""
) -> Response:
    """Problems (and the preview graph, out of band) for the editor's current content."""
    service: Service = request.app.state.service
    checked = await check(service, session, key, name, stages)
    return render(request, "partials/problems.html", checked=checked, oob=True)


@router.post("/flows/{key}/save")
async def save(
    request: Request, session: SessionDep, key: str, stages: StagesText = "", name: NameText = ""
) -> Response:
    """A new version when valid; otherwise the problems, and nothing is saved."""
    service: Service = request.app.state.service
    flow = await service.store.flows.get(session.space_key, key)
    checked = await check(service, session, key, name, stages)
    if checked.problems:
        count = len(checked.problems)
        toast = Toast(
            f"Not saved: {count} problem{'' if count == 1 else 's'} to fix first (listed "
            "under the editor).",
            "error",
        )
        return render(request, "partials/problems.html", checked=checked, oob=True, toasts=[toast])
    parsed = json.loads(stages)
    try:
        saved, changed = await service.save_flow(
            session.space_key, flow_document(name, parsed), saved_under=key
        )
    except InvalidInput as exc:  # a handler or the space changed between check and save
        checked = Checked(_located(exc.problems, stages, parsed), checked.preview)
        toast = Toast("Not saved: the flow is invalid.", "error")
        return render(request, "partials/problems.html", checked=checked, toasts=[toast])
    if not changed:
        toast = Toast(
            f"No changes: version {flow.current_version} already has this content.", "info"
        )
    else:
        toast = Toast(f"Saved as version {saved.current_version}.")
        await service.people.record(
            session.space_key,
            session.audit_actor(request),
            "flow.saved",
            key,
            {"version": saved.current_version},
        )
    return redirect(request, f"/flows/{key}", toast)


@router.post("/flows/{key}/try")
async def try_sample(
    request: Request,
    session: SessionDep,
    key: str,
    stages: StagesText = "",
    name: NameText = "",
    order: SampleText = "",
    outcomes: SampleText = "",
) -> Response:
    """Dry-run the editor's flow against the sample order and scripted outcomes: the run's
    final status, timeline, attempts, connector bodies and problems, and (out of band) the
    preview graph coloured by each task's simulated final state. Nothing is sent or stored."""
    service: Service = request.app.state.service
    space_key = session.space_key
    problems: list[Problem] = []
    run: DryRun | None = None
    try:
        document = flow_document(name, _parse(stages, "/stages"))
        definition = await service.parse_flow(space_key, document, saved_under=key)
        sample = _parse(order, "/order")
        if not isinstance(sample, dict):
            raise InvalidInput([Problem("/order", "must be a JSON object")])
        body, _ = parse_order({"order": {**sample, "spaceKey": space_key, "flowKey": key}})
        scripted = _OUTCOMES.validate_python(_parse(outcomes or "{}", "/outcomes"))
    except InvalidInput as exc:
        problems = exc.problems
    except ValidationError as exc:
        problems = problems_of(exc, "/outcomes")
    else:
        wanted = {task: [item.model_dump() for item in items] for task, items in scripted.items()}
        run = await service.dry_run(space_key, definition, body, wanted)
    graph = None
    if run is not None:
        states = {
            task: TaskState(entry["status"], len(entry["attempts"]))
            for task, entry in run.tasks.items()
        }
        graph = flow_graph(stages_of_definition(definition), states)
    return render(request, "partials/try_result.html", run=run, problems=problems, graph=graph)


def _parse(text: str, pointer: str) -> object:
    """The JSON of one of the panel's fields; its problems point into that field."""
    try:
        return parse_untrusted(text)
    except InvalidInput as exc:
        located = [Problem(pointer + p.pointer, p.message) for p in exc.problems]
        raise InvalidInput(located, exc.message) from exc
