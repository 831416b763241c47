"""/api/orders/{id}/…: operators steer an order in flight (pause, resume, skip, restart).

Each action is one event of the lifecycle core, written by the one writer; an action that does
not apply to the order's state is refused with 409 and the core's reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ordermill.api.auth import Principal, PrincipalDep, ServiceDep
from ordermill.api.idempotency import Answered, OnceDep
from ordermill.api.limits import BoundedRoute
from ordermill.api.schemas import KEY_PATTERN, order_out, parse_order
from ordermill.errors import InvalidInput, Problem
from ordermill.flows.explain import Explanation
from ordermill.flows.lifecycle import Operator
from ordermill.flows.status import OrderStatus
from ordermill.service import BulkAction, Service
from ordermill.storage.orders import OrderFilter
from ordermill.times import iso

router = APIRouter(prefix="/api/orders", tags=["orders"], route_class=BoundedRoute)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReasonIn(_Strict):
    reason: str | None = Field(default=None, max_length=2000)


class SkipIn(ReasonIn):
    result: dict[str, Any] | None = None  # stored as the task's result


class RestartIn(ReasonIn):
    flow_version: Literal["latest"] | Annotated[int, Field(ge=1)] = Field(
        default="latest", alias="flowVersion"
    )
    from_: Literal["failed", "start"] = Field(default="failed", alias="from")


OrderStatusName = Literal["CREATED", "IN_PROGRESS", "UNHEALTHY", "FAILURE", "SUCCESS", "CANCELLED"]


class BulkIn(ReasonIn):
    """Which orders: by status (each action has its default), flow and creation time; with
    ``dryRun`` nothing changes and the answer says which orders would."""

    spaceKey: str | None = Field(default=None, pattern=KEY_PATTERN)  # noqa: N815 (the API's names)
    status: list[OrderStatusName] | None = Field(default=None, min_length=1)
    flowKey: str | None = None  # noqa: N815 (the API's names)
    createdFrom: AwareDatetime | None = None  # noqa: N815 (the API's names)
    createdTo: AwareDatetime | None = None  # noqa: N815 (the API's names)
    deadlineFrom: AwareDatetime | None = None  # noqa: N815 (the API's names)
    deadlineTo: AwareDatetime | None = None  # noqa: N815 (the API's names)
    q: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=100, ge=1, le=1000)
    dryRun: bool = False  # noqa: N815 (the API's names)


class BulkRestartIn(BulkIn):
    flow_version: Literal["latest"] | Annotated[int, Field(ge=1)] = Field(
        default="latest", alias="flowVersion"
    )
    from_: Literal["failed", "start"] = Field(default="failed", alias="from")


def bulk_filter(body: Any, statuses: tuple[OrderStatus, ...] = ()) -> OrderFilter:
    """The orders a bulk action's body names (``flowKey``, ``createdFrom``/``createdTo``,
    ``deadlineFrom``/``deadlineTo``, the search ``q``, as the list of orders reads them) among
    ``statuses`` (none: the action's default)."""
    return OrderFilter(
        status=statuses,
        flow_key=body.flowKey,
        created_from=body.createdFrom,
        created_to=body.createdTo,
        deadline_from=body.deadlineFrom,
        deadline_to=body.deadlineTo,
        search=(body.q or "").strip() or None,
    )


async def bulk(
    principal: Principal,
    service: Service,
    body: BulkIn,
    action: BulkAction,
    *,
    flow_version: int | None = None,
    from_start: bool = False,
) -> dict[str, Any]:
    """Apply ``action`` to every order matching the filter (up to ``limit``), or only ask."""
    statuses = tuple(OrderStatus(s) for s in body.status) if body.status else ()
    outcome = await service.act_on_orders(
        principal.space(body.spaceKey),
        action,
        bulk_filter(body, statuses),
        actor=principal.actor,
        reason=body.reason,
        limit=body.limit,
        dry_run=body.dryRun,
        flow_version=flow_version,
        from_start=from_start,
    )
    return {
        "action": action.value,
        "dryRun": body.dryRun,
        "matched": outcome.matched,
        "changed": list(outcome.changed),
        "skipped": outcome.skipped,
    }


def _bulk_route(action: BulkAction, summary: str) -> None:
    """``POST /api/orders/{action}``: the bulk form of pause, resume or cancel."""

    async def steer_many(
        principal: PrincipalDep, service: ServiceDep, body: BulkIn, once: OnceDep
    ) -> Answered:
        return await once(lambda: bulk(principal, service, body, action))

    steer_many.__name__ = f"{action.value}_many"
    router.post(
        f"/{action.value}", summary=summary, description=BULK_HELP, response_model=dict[str, Any]
    )(steer_many)


BULK_HELP = (
    "The default filter is CREATED, IN_PROGRESS and UNHEALTHY orders. ``changed`` lists the "
    "orders changed (with ``dryRun``: that would be); ``skipped`` counts those the action "
    "does not fit."
)
_bulk_route(BulkAction.PAUSE, "Pause many orders at once")
_bulk_route(BulkAction.RESUME, "Resume many paused orders at once")
_bulk_route(BulkAction.CANCEL, "Cancel many orders at once")


@router.post(
    "/restart",
    summary="Restart many orders onto another version of their flow",
    response_model=dict[str, Any],
)
async def restart_many(
    principal: PrincipalDep, service: ServiceDep, body: BulkRestartIn, once: OnceDep
) -> Answered:
    """Default filter: FAILURE, UNHEALTHY and CANCELLED orders; each moves onto ``flowVersion``
    of its own flow (``latest`` by default)."""
    version = None if body.flow_version == "latest" else body.flow_version
    return await once(
        lambda: bulk(
            principal,
            service,
            body,
            BulkAction.RESTART,
            flow_version=version,
            from_start=body.from_ == "start",
        )
    )


@router.get("/{order_id}/explain", summary="What the order waits for, and its deadline")
async def explain_order(
    order_id: str, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    """Per unfinished task what it waits for, in words and as data; for the order the critical
    path, the earliest possible finish and whether it misses the earliest line deadline."""
    return explanation_out(await service.store.explain_order(principal.space_key, order_id))


def explanation_out(explanation: Explanation) -> dict[str, Any]:
    def value(item: Any) -> Any:
        return iso(item) if isinstance(item, datetime) else item

    return {
        "sentence": explanation.sentence,
        "tasks": [
            {
                "taskKey": wait.task_key,
                "status": wait.status,
                "waitsFor": wait.waits.value,
                "words": wait.words,
                "since": value(wait.since),
                "until": value(wait.until),
                "on": list(wait.on),
                "detail": {key: value(item) for key, item in wait.detail.items()},
            }
            for wait in explanation.tasks
        ],
        "criticalPath": list(explanation.critical_path),
        "earliestFinish": value(explanation.earliest_finish),
        "deadline": value(explanation.deadline),
        "deadlineLine": explanation.deadline_line,
        "missesDeadline": explanation.late_by is not None,
        "lateBySeconds": (
            None if explanation.late_by is None else int(explanation.late_by.total_seconds())
        ),
    }


def _order_route(action: Operator, summary: str, description: str) -> None:
    """``POST /api/orders/{id}/{action}`` for pause, resume and cancel, with an optional
    reason."""

    async def steer_one(
        order_id: str,
        principal: PrincipalDep,
        service: ServiceDep,
        once: OnceDep,
        body: ReasonIn | None = None,
    ) -> Answered:
        reason = body.reason if body else None
        store = service.store

        async def act() -> dict[str, Any]:
            return order_out(
                await store.steer(principal.space_key, order_id, action, principal.actor, reason)
            )

        return await once(act)

    steer_one.__name__ = f"{action.value}_order"
    route = f"/{{order_id}}/{action.value}"
    router.post(route, summary=summary, description=description, response_model=dict[str, Any])(
        steer_one
    )


_order_route(
    Operator.PAUSE,
    "Pause an order: nothing new of it starts",
    "Attempts in flight finish and are recorded; timers that fall due while the order is "
    "paused fire when it is resumed; feedback is accepted and applied meanwhile.",
)
_order_route(Operator.RESUME, "Resume a paused order", "What fell due meanwhile runs at once.")
_order_route(
    Operator.CANCEL,
    "Cancel an order",
    "The ``reason`` is stored on the order and written to its timeline.",
)


@router.post(
    "/{order_id}/tasks/{task_key}/skip",
    summary="Mark a task succeeded by hand",
    response_model=dict[str, Any],
)
async def skip_task(
    order_id: str,
    task_key: str,
    principal: PrincipalDep,
    service: ServiceDep,
    once: OnceDep,
    body: SkipIn | None = None,
) -> Answered:
    """For a FAILED, WAITING or TIMED_OUT task (for example, the ERP was booked by phone):
    the task becomes SUCCEEDED with ``result`` and its successors run as usual."""
    given = body or SkipIn()

    async def act() -> dict[str, Any]:
        order = await service.store.skip_task(
            principal.space_key, order_id, task_key, principal.actor, given.reason, given.result
        )
        return order_out(order)

    return await once(act)


@router.post(
    "/{order_id}/restart",
    summary="Move the order onto another version of its flow",
    response_model=dict[str, Any],
)
async def restart_order(
    order_id: str,
    principal: PrincipalDep,
    service: ServiceDep,
    once: OnceDep,
    body: RestartIn | None = None,
) -> Answered:
    """For FAILURE, UNHEALTHY and CANCELLED orders. With ``"from": "failed"`` the tasks that
    succeeded and whose key the new version still has keep their results; the rest run under
    the new version. 409 when the new version cannot hold the order's history."""
    given = body or RestartIn()
    version = None if given.flow_version == "latest" else given.flow_version

    async def act() -> dict[str, Any]:
        order = await service.store.restart_order(
            principal.space_key,
            order_id,
            principal.actor,
            flow_version=version,
            from_start=given.from_ == "start",
            reason=given.reason,
        )
        return order_out(order)

    return await once(act)


flows_router = APIRouter(prefix="/api/flows", tags=["flows"], route_class=BoundedRoute)


class OutcomeIn(_Strict):
    status: int = Field(default=201, ge=100, le=599)
    feedback: Literal["success", "failure"] | None = None
    confirmed: bool = True
    afterMs: int = Field(default=0, ge=0, le=366 * 86_400_000)  # noqa: N815 (the API's names)
    timeout: bool = False


class DryRunIn(_Strict):
    spaceKey: str | None = Field(default=None, pattern=KEY_PATTERN)  # noqa: N815 (the API's names)
    flow: dict[str, Any] | None = None
    flowKey: str | None = None  # noqa: N815 (the API's names)
    version: int | None = Field(default=None, ge=1)
    order: dict[str, Any]
    outcomes: dict[str, list[OutcomeIn]] = Field(default_factory=dict, max_length=1000)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)  # the retries' jitter


@flows_router.post("/dry-run", summary="Run a flow against a sample order, with no side effects")
async def dry_run_flow(
    principal: PrincipalDep, service: ServiceDep, body: DryRunIn
) -> dict[str, Any]:
    """The flow (``flow``, or ``flowKey`` and ``version``) runs on the real lifecycle core with
    a simulated clock and the scripted ``outcomes`` per task key: nothing is sent, mailed,
    written or stored. Answers the timeline, the final status, each task's attempts, the
    connector bodies, the rendered e-mails and confirmation texts, and the problems found."""
    space_key = principal.space(body.spaceKey)
    if body.flow is not None:
        definition = await service.parse_flow(space_key, body.flow)
    elif body.flowKey is not None:
        flow = await service.store.flows.get(space_key, body.flowKey)
        number = body.version or flow.current_version
        definition = (await service.store.flows.version(space_key, body.flowKey, number)).definition
    else:
        raise InvalidInput([Problem("/flow", "give a flow, or a flowKey")], "No flow to run.")
    order, _ = parse_order({**body.order, "spaceKey": space_key, "flowKey": definition.key})
    outcomes = {key: [item.model_dump() for item in items] for key, items in body.outcomes.items()}
    run = await service.dry_run(space_key, definition, order, outcomes, body.seed)
    return run.wire()
