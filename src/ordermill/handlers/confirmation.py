"""``manual-confirmation``: the task waits until a person confirms (success) or rejects (failure).

Running the task renders its title and description over the order, keeps them in the task's
result (the inbox reads them from there), and with ``notify`` e-mails each assignee a pair of
signed, expiring Confirm and Reject links. The answer itself arrives through the API or a link
(see ordermill.storage.confirmations).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, ClassVar, Literal

from jinja2 import Environment
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ordermill.errors import PermanentError
from ordermill.flows.model import RetryPolicy
from ordermill.flows.work import Question
from ordermill.handlers.base import Outcome, TaskContext, Waiting
from ordermill.handlers.email import checked_mailbox, compose, mailbox, message_id
from ordermill.handlers.mailer import Mailer
from ordermill.handlers.templates import ShortTemplate, TemplateStr, render, template_context

Action = Literal["confirm", "reject"]
NOTIFY_TIME_LIMIT = 30.0  # seconds for one notification, however long the confirmation waits
MIN_LINK_LIFETIME = timedelta(hours=1)


def _one_address(value: str) -> str:
    if mailbox(value) is None:
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


def notify_subject(title: str) -> str:
    return f"Please confirm: {title}"


def notify_text(
    title: str, description: str | None, order: str, confirm: str, reject: str, expires: str
) -> str:
    """The plain text of the mail that asks an assignee to confirm or reject."""
    parts = (
        title,
        description,
        f"Order {order}",
        f"Confirm: {confirm}",
        f"Reject: {reject}",
        f"The links work once and expire {expires}.",
    )
    return "\n\n".join(part for part in parts if part)


class ManualConfirmationPayload(BaseModel):
    """Payload of a ``manual-confirmation`` task definition."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    title: ShortTemplate = Field(
        description="What to confirm, e.g. Print {{ order.thirdPartyOrderId }}?"
    )
    description: TemplateStr | None = Field(
        default=None, description="Details for the person answering (a template over the order)."
    )
    assignees: list[Annotated[str, AfterValidator(_one_address)]] = Field(
        default_factory=list, max_length=50, description="E-mail addresses of who should answer."
    )
    notify: bool = Field(
        default=False, description="E-mail the assignees signed Confirm and Reject links."
    )

    @model_validator(mode="after")
    def _notify_needs_assignees(self) -> ManualConfirmationPayload:
        if self.notify and not self.assignees:
            raise ValueError("notify is true but there are no assignees to notify; add assignees")
        return self


def answer_path(confirmation_id: str, action: Action, assignee: int) -> str:
    """The signed path of an e-mailed answer link (the assignee's index says who answered)."""
    return f"/confirmations/{confirmation_id}/answer/{action}/{assignee}"


# Our own trusted template; autoescape makes the interpolated order text safe.
_HTML = Environment(autoescape=True).from_string(
    """<p>{{ title }}</p>{% if description %}<p style="white-space: pre-wrap">{{ description }}</p>
{% endif %}<p>Order {{ order }}</p>
<p><a href="{{ confirm }}">Confirm</a> &nbsp; <a href="{{ reject }}">Reject</a></p>
<p>The links work once and expire {{ expires }}.</p>"""
)


class ManualConfirmation:
    """Waits for a person's answer; optionally e-mails the assignees answer links."""

    key: ClassVar[str] = "manual-confirmation"
    payload_model: ClassVar[type[BaseModel]] = ManualConfirmationPayload
    default_timeout_ms: ClassVar[int] = 7 * 24 * 3_600_000
    # Only the notification can fail; a confirmation without notify never needs a retry.
    default_retry: ClassVar[RetryPolicy] = RetryPolicy(max_attempts=3)

    def __init__(self, mailer: Mailer, *, default_from: str | None = None) -> None:
        self.mailer = mailer
        self.default_from = default_from

    async def run(self, ctx: TaskContext) -> Outcome:
        payload: ManualConfirmationPayload = ctx.payload
        variables = template_context(ctx)
        title = " ".join((await render(payload.title, variables, field="title")).split())
        description = (
            await render(payload.description, variables, field="description")
            if payload.description is not None
            else None
        )
        until = ctx.now + timedelta(seconds=ctx.timeout_seconds)
        notified = None
        if payload.notify:
            notified = tuple(await self._notify(ctx, payload, title, description))
        question = Question(title, description, tuple(payload.assignees), notified)
        return Waiting(until=until, fire=False, question=question)

    async def _notify(
        self,
        ctx: TaskContext,
        payload: ManualConfirmationPayload,
        title: str,
        description: str | None,
    ) -> list[str]:
        if ctx.links is None:
            raise PermanentError("answer links cannot be signed here (no link signer configured)")
        if not self.default_from:
            raise PermanentError("notify needs a sender: set ORDERMILL_SMTP_FROM")
        sender = checked_mailbox(self.default_from, "ORDERMILL_SMTP_FROM")
        sender_address = mailbox(sender)
        assert sender_address is not None
        expires_at = ctx.now + max(timedelta(seconds=ctx.timeout_seconds), MIN_LINK_LIFETIME)
        expires = expires_at.isoformat(timespec="minutes").replace("+00:00", " UTC")
        order = str(ctx.order.get("thirdPartyOrderId") or ctx.order_id)
        message_ids = []
        for index, assignee in enumerate(payload.assignees):
            confirm = ctx.links.sign(answer_path(ctx.delivery_id, "confirm", index), expires_at)
            reject = ctx.links.sign(answer_path(ctx.delivery_id, "reject", index), expires_at)
            text = notify_text(title, description, order, confirm, reject, expires)
            msg_id = message_id(ctx.delivery_id, sender_address[1], part=f"notify-{index}")
            message = compose(
                sender=sender,
                recipients=[assignee],
                subject=notify_subject(title),
                text=text,
                html=_HTML.render(
                    title=title,
                    description=description,
                    order=order,
                    confirm=confirm,
                    reject=reject,
                    expires=expires,
                ),
                msg_id=msg_id,
                now=ctx.now,
                headers={"X-Ordermill-Order": ctx.order_id, "X-Ordermill-Task": ctx.task_key},
            )
            address = mailbox(assignee)
            assert address is not None
            await self.mailer.send(message, [address[1]], NOTIFY_TIME_LIMIT)
            message_ids.append(msg_id)
        # The log shows who was notified, never the links: they are the credential.
        ctx.log.request = {"notified": list(payload.assignees), "messageIds": message_ids}
        ctx.log.status_code = 250
        return list(payload.assignees)

    async def close(self) -> None:
        await self.mailer.close()
