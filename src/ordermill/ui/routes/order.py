"""The order page: header, flow graph by task status, task details, timeline, lines and actions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Form, Query, Request, Response

from ordermill.assets_view import download_path
from ordermill.errors import NotFound
from ordermill.flows.lifecycle import ARCHIVE_MARK, Operator
from ordermill.flows.status import OrderStatus, TaskStatus
from ordermill.service import Service
from ordermill.storage.assets import order_assets
from ordermill.storage.confirmations import Confirmation
from ordermill.storage.orders import OrderView, TaskView
from ordermill.ui.graph import TaskState, flow_graph, stages_of_definition
from ordermill.ui.present import LIVE_ORDER_STATUSES, is_overdue, link_url
from ordermill.ui.reads import CAUSE_STATUSES, failure_causes
from ordermill.ui.routing import ui_router
from ordermill.ui.session import Session, SessionDep
from ordermill.ui.templating import Toast, is_htmx, redirect, render

router = ui_router()
LINK_LIFETIME = timedelta(hours=1)

MESSAGES = {
    "start": "Order started.",
    "retry": "Retrying the failed and timed-out tasks.",
    "cancel": "Order cancelled.",
    "pause": "Order paused: nothing new starts until it is resumed.",
    "resume": "Order resumed.",
    "restart": "Order restarted on the latest version of its flow.",
}
TASK_MESSAGES = {
    "skip": "Task {key} marked as succeeded; what follows it runs now.",
    "retry": "Retrying task {key} alone; other failed tasks stay as they are.",
    "redeliver": "Task {key} is sent again under the same delivery id (webhook-id).",
}
RESTARTABLE = (OrderStatus.FAILURE, OrderStatus.UNHEALTHY, OrderStatus.CANCELLED)
SKIPPABLE = (TaskStatus.FAILED, TaskStatus.WAITING, TaskStatus.TIMED_OUT)
RETRYABLE_TASKS = (TaskStatus.FAILED, TaskStatus.TIMED_OUT)
REDELIVERABLE = (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.TIMED_OUT)
CONNECTOR = "consume-rest-api"


def archived_rows(order: OrderView) -> list[tuple[str, str, TaskView, str]]:
    """The tasks a restart archived (``key~n``), greyed in the list with the flow version they
    ran under: the version the first restart after their creation moved the order from."""
    moves = [(datetime.fromisoformat(r["at"]), r.get("fromVersion")) for r in order.restarts]
    rows = []
    for task in sorted(order.tasks, key=lambda task: (task.created_at, task.key)):
        if ARCHIVE_MARK in task.key:
            version = next((v for at, v in moves if at >= task.created_at), None)
            label = "archived" if version is None else f"from version {version}"
            rows.append((task.key, task.stage_key, task, label))
    return rows


async def open_confirmations(service: Service, session: Session, order: OrderView) -> list[Any]:
    """The manual confirmations of this order still waiting for an answer."""
    found: list[Confirmation] = []
    for task in order.tasks:
        if task.asks_question and task.status in (
            TaskStatus.WAITING,
            TaskStatus.TIMED_OUT,
        ):
            try:
                confirmation = await service.store.confirmations.get(
                    session.space_key, task.delivery_id
                )
            except NotFound:
                continue
            if confirmation.is_open:
                found.append(confirmation)
    return found


async def live_context(service: Service, session: Session, order_id: str) -> dict[str, Any]:
    """What the self-refreshing part of the page shows."""
    order = await service.store.get_order(session.space_key, order_id)
    version = await service.store.flows.version_by_id(order.flow_id, order.flow_version)
    states = {task.key: TaskState(task.status.value, task.attempts) for task in order.tasks}
    definition = version.definition
    tasks = {task.key: task for task in order.tasks}
    task_rows: list[tuple[str, str, TaskView | None, str | None]] = [
        (d.key, stage.key, tasks.get(d.key), None)
        for stage in definition.all_stages
        for d in stage.task_definitions
    ]
    task_rows += archived_rows(order)
    explanation = await service.store.explain_order(session.space_key, order_id)
    causes = await failure_causes(service.db, [order.id]) if order.status in CAUSE_STATUSES else {}
    cause = causes.get(order.id)
    failing = definition.task_definition(cause.task_key) if cause else None
    return {
        "order": order,
        "explanation": explanation.sentence,
        "cause": cause,
        "cause_url": link_url(failing.payload.get("uri")) if failing else None,
        "cause_handler": failing.handler_key if failing else None,
        "cause_error": tasks[cause.task_key].error if cause and cause.task_key in tasks else None,
        "flow_name": definition.name,
        "graph": flow_graph(stages_of_definition(definition), states),
        "task_rows": task_rows,
        "events": await service.store.list_events(session.space_key, order_id),
        "confirmations": await open_confirmations(service, session, order),
        "live": order.status in LIVE_ORDER_STATUSES,
        "overdue": is_overdue(order.deadline, order.status),
        "can_start": order.status is OrderStatus.CREATED,
        "can_retry": order.status in (OrderStatus.FAILURE, OrderStatus.UNHEALTHY),
        "can_cancel": not order.status.is_final,
        "can_pause": not order.status.is_final and order.pause is None,
        "can_restart": order.status in RESTARTABLE,
    }


async def produced_assets(service: Service, order_id: str) -> list[dict[str, Any]]:
    """Files the order gained (exports, connector assets), each with a download link."""
    expires_at = service.clock.now().replace(microsecond=0) + LINK_LIFETIME
    assets = []
    for row in await order_assets(service.db, order_id):
        if row.get("blob_key"):
            signed = urlsplit(service.links.sign(download_path(int(row["id"])), expires_at))
            href: str | None = f"{signed.path}?{signed.query}"
        else:
            href = row.get("url")
        assets.append({**row, "href": href})
    return assets


@router.get("/orders/{order_id}")
async def order_page(
    request: Request,
    session: SessionDep,
    order_id: str,
    task: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The order; ``?task=key`` opens that task's panel, as choosing it in the page would."""
    service: Service = request.app.state.service
    context = await live_context(service, session, order_id)
    opened = await task_context(service, session, order_id, task) if task else None
    return render(
        request,
        "order.html",
        active="orders",
        assets=await produced_assets(service, order_id),
        opened=opened,
        **context,
    )


@router.get("/orders/{order_id}/live")
async def order_live(request: Request, session: SessionDep, order_id: str) -> Response:
    service: Service = request.app.state.service
    context = await live_context(service, session, order_id)
    return render(request, "partials/order_live.html", oob=True, **context)


async def task_context(
    service: Service, session: Session, order_id: str, task_key: str
) -> dict[str, Any]:
    """What a task's panel shows: its definition, state, delivery log and the actions it fits."""
    order = await service.store.get_order(session.space_key, order_id)
    version = await service.store.flows.version_by_id(order.flow_id, order.flow_version)
    try:
        definition = version.definition.task_definition(task_key)
    except KeyError as exc:
        raise NotFound(f"the flow of this order has no task {task_key!r}") from exc
    task = next((t for t in order.tasks if t.key == task_key), None)
    attempts = (
        await service.store.list_attempts(session.space_key, order_id, task_key) if task else []
    )
    result = task.result if task is not None and isinstance(task.result, dict) else {}
    status = task.status if task is not None else None
    return {
        "order": order,
        "definition": definition,
        "task": task,
        "attempts": attempts,
        "feedback": result.get("feedback"),
        "result": result,
        "can_skip": status in SKIPPABLE and not order.status.is_final,
        "can_retry_task": status in RETRYABLE_TASKS
        and order.status in (OrderStatus.FAILURE, OrderStatus.UNHEALTHY)
        and not version.definition.is_failure_task(task_key),
        "can_redeliver": definition.handler_key == CONNECTOR
        and status in REDELIVERABLE
        and order.status is not OrderStatus.CANCELLED,
    }


@router.get("/orders/{order_id}/tasks/{task_key}")
async def task_detail(
    request: Request, session: SessionDep, order_id: str, task_key: str
) -> Response:
    service: Service = request.app.state.service
    context = await task_context(service, session, order_id, task_key)
    return render(request, "partials/task_detail.html", **context)


@router.post("/orders/{order_id}/tasks/{task_key}/{action}")
async def task_action(
    request: Request,
    session: SessionDep,
    order_id: str,
    task_key: str,
    action: str,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Skip (mark succeeded by hand), retry or redeliver one task; the answer is the refreshed
    page part, the task's panel in its new state and a toast."""
    service: Service = request.app.state.service
    store, space, actor = service.store, session.space_key, session.actor
    match action:
        case "skip":
            await store.skip_task(space, order_id, task_key, actor, reason or None)
        case "retry":
            await store.retry_order(space, order_id, actor, task_key=task_key)
        case "redeliver":
            await store.redeliver_task(space, order_id, task_key, actor)
        case _:
            raise NotFound(f"there is no task action {action!r}")
    toast = Toast(TASK_MESSAGES[action].format(key=task_key))
    if not is_htmx(request):  # a plain form (no script yet): back to the page, panel open
        return redirect(request, f"/orders/{order_id}?task={quote(task_key, safe='')}", toast)
    context = await live_context(service, session, order_id)
    panel = await task_context(service, session, order_id, task_key)
    toasts = [toast]
    return render(
        request, "partials/order_live.html", oob=True, toasts=toasts, panel=panel, **context
    )


@router.post("/orders/{order_id}/{action}")
async def order_action(
    request: Request,
    session: SessionDep,
    order_id: str,
    action: str,
    reason: Annotated[str, Form(max_length=2000)] = "",
    source: Annotated[str, Form(alias="from", max_length=10)] = "failed",
) -> Response:
    """Start, retry, cancel, pause, resume or restart (on the latest version); the answer is
    the refreshed page part and a toast."""
    service: Service = request.app.state.service
    store = service.store
    why = reason.strip() or None
    space, actor = session.space_key, session.actor
    match action:
        case "start":
            await store.start_order(space, order_id, actor)
        case "retry":
            await store.retry_order(space, order_id, actor)
        case "cancel" | "pause" | "resume":
            await store.steer(space, order_id, Operator(action), actor, why)
        case "restart":
            await store.restart_order(
                space, order_id, actor, from_start=source == "start", reason=why
            )
        case _:
            raise NotFound(f"there is no order action {action!r}")
    toast = Toast(MESSAGES[action])
    if not is_htmx(request):  # a plain form (no script yet): back to the page
        return redirect(request, f"/orders/{order_id}", toast)
    context = await live_context(service, session, order_id)
    return render(request, "partials/order_live.html", oob=True, toasts=[toast], **context)
