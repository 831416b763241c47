"""The Handler protocol: what a task does, and what it tells the engine when it is done.

A handler's ``run`` returns ``Succeeded`` or ``Waiting``, or raises a ``HandlerError``:
``RetryableError`` (another attempt may help), ``AttemptTimeout``, or ``PermanentError``.
The engine turns that into the task's next status with the flow's retry policy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from ordermill.flows.model import RetryPolicy
from ordermill.flows.work import AssetRecord, ClaimedTask, Question
from ordermill.links import LinkSigner


@dataclass(frozen=True)
class Succeeded:
    """The task is done; ``assets`` are files it produced, stored with the order."""

    result: dict[str, Any] | None = None
    assets: tuple[AssetRecord, ...] = ()


@dataclass(frozen=True)
class Waiting:
    """The task now waits on the outside world until ``until``.

    With ``fire=False`` (feedback, confirmations) the task times out then; with ``fire=True``
    (timers) it succeeds then. Either way an answer that comes first ends the wait.
    """

    until: datetime
    fire: bool = False
    result: dict[str, Any] | None = None
    heartbeat_ms: int | None = None  # each progress note pushes ``until`` this far from now
    question: Question | None = None  # the task waits for a person's answer to this


Outcome = Succeeded | Waiting


@dataclass
class AttemptLog:
    """What a handler reports about its attempt for the delivery log (secrets redacted)."""

    request: dict[str, Any] | None = None
    status_code: int | None = None
    response_body: str | None = None


@asynccontextmanager
async def _not_queued(_target: str) -> AsyncIterator[None]:
    yield


@dataclass
class TaskContext:
    """Everything a handler may use to run one attempt of one task."""

    order_id: str
    space_key: str
    flow_key: str
    flow_version: int
    stage_key: str
    task_key: str
    attempt: int
    delivery_id: str
    delivery_epoch: datetime  # when this delivery began (creation, retry or redelivery)
    update_url: str | None  # None for a subscription's event: it takes no feedback
    order: dict[str, Any]  # the order as stored (the connector's order shape, no updateUrl)
    payload: Any  # the handler's validated payload model
    timeout_seconds: float  # bound of each wait on the outside world
    now: datetime
    allow_networks: tuple[str, ...] = ()  # the space's extra connector allowances
    allow_http_hosts: tuple[str, ...] = ()
    signing_secrets: tuple[str, ...] = ()  # the space's whsec_ secrets; all sign in a rotation
    log: AttemptLog = field(default_factory=AttemptLog)
    links: LinkSigner | None = None  # signs links to ordermill (asset downloads, answers)
    # Links put in a request stay valid until then: the delivery's whole retry horizon.
    links_valid_until: datetime | None = None
    assets: tuple[dict[str, Any], ...] = ()  # files the order gained so far (exports, feedback)
    context: dict[str, Any] | None = None  # members added to the request's context (``trigger``)
    body: bytes | None = None  # the request body when made elsewhere (a subscription's event)
    # Wrap a wait for a busy target in ``async with ctx.queued(target):`` so the task does not
    # hold a worker slot meanwhile.
    queued: Callable[[str], AbstractAsyncContextManager[None]] = _not_queued

    @classmethod
    def of_claimed(
        cls,
        task: ClaimedTask,
        *,
        payload: Any,
        update_url: str,
        timeout_seconds: float,
        now: datetime,
        **extra: Any,
    ) -> TaskContext:
        """The context of one attempt of a claimed ``task``; ``extra`` sets the other fields."""
        return cls(
            order_id=task.order_id,
            space_key=task.space_key,
            flow_key=task.flow_key,
            flow_version=task.flow_version,
            stage_key=task.stage_key,
            task_key=task.task_key,
            attempt=task.attempt,
            delivery_id=task.delivery_id,
            delivery_epoch=task.delivery_epoch,
            update_url=update_url,
            order=task.order,
            payload=payload,
            timeout_seconds=timeout_seconds,
            now=now,
            **extra,
        )


class Handler(Protocol):
    """A task type, registered under ``key``.

    Implementers must guarantee:
    - ``run`` is safe to call again for the same task (at-least-once: a worker may die after the
      side effect and before its outcome is recorded); use ``ctx.delivery_id`` to deduplicate;
    - ``run`` bounds every wait on the outside world by ``ctx.timeout_seconds`` and raises
      ``AttemptTimeout`` when it runs out;
    - ``run`` never lets secrets into ``ctx.log`` or into exception messages.
    """

    key: ClassVar[str]
    payload_model: ClassVar[type[BaseModel]]
    default_timeout_ms: ClassVar[int]
    default_retry: ClassVar[RetryPolicy]

    async def run(self, ctx: TaskContext) -> Outcome: ...

    async def close(self) -> None:
        """Release connections and other resources (called once at shutdown)."""
        ...
