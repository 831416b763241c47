"""/api/orders/{id}/…: operators steer an order in flight (pause, resume, skip, restart).

Each action is one event of the lifecycle core, written by the one writer; an action that does
not apply to the order's state is refused with 409 and the core's reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from ordermill.api.auth import PrincipalDep, ServiceDep
from ordermill.api.schemas import order_out
from ordermill.flows.explain import Explanation
from ordermill.times import iso

router = APIRouter(prefix="/api/orders", tags=["orders"])


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


@router.post("/{order_id}/pause", summary="Pause an order: nothing new of it starts")
async def pause_order(
    order_id: str, principal: PrincipalDep, service: ServiceDep, body: ReasonIn | None = None
) -> dict[str, Any]:
    """Attempts in flight finish and are recorded; timers that fall due while the order is
    paused fire when it is resumed; feedback is accepted and applied meanwhile."""
    reason = body.reason if body else None
    order = await service.store.pause_order(principal.space_key, order_id, principal.actor, reason)
    return order_out(order)


@router.post("/{order_id}/resume", summary="Resume a paused order")
async def resume_order(
    order_id: str, principal: PrincipalDep, service: ServiceDep, body: ReasonIn | None = None
) -> dict[str, Any]:
    reason = body.reason if body else None
    order = await service.store.resume_order(principal.space_key, order_id, principal.actor, reason)
    return order_out(order)


@router.post("/{order_id}/tasks/{task_key}/skip", summary="Mark a task succeeded by hand")
async def skip_task(
    order_id: str,
    task_key: str,
    principal: PrincipalDep,
    service: ServiceDep,
    body: SkipIn | None = None,
) -> dict[str, Any]:
    """For a FAILED, WAITING or TIMED_OUT task (for example, the ERP was booked by phone):
    the task becomes SUCCEEDED with ``result`` and its successors run as usual."""
    body = body or SkipIn()
    order = await service.store.skip_task(
        principal.space_key, order_id, task_key, principal.actor, body.reason, body.result
    )
    return order_out(order)


@router.post("/{order_id}/restart", summary="Move the order onto another version of its flow")
async def restart_order(
    order_id: str, principal: PrincipalDep, service: ServiceDep, body: RestartIn | None = None
) -> dict[str, Any]:
    """For FAILURE, UNHEALTHY and CANCELLED orders. With ``"from": "failed"`` the tasks that
    succeeded and whose key the new version still has keep their results; the rest run under
    the new version. 409 when the new version cannot hold the order's history."""
    body = body or RestartIn()
    version = None if body.flow_version == "latest" else body.flow_version
    order = await service.store.restart_order(
        principal.space_key,
        order_id,
        principal.actor,
        flow_version=version,
        from_start=body.from_ == "start",
        reason=body.reason,
    )
    return order_out(order)
