"""``send-email``: render the payload's templates over the order and send one message by SMTP.

The Message-ID is derived from the task's delivery id, so a send retried after a crash carries
the same Message-ID as the first and mail systems can recognise the duplicate.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ordermill.errors import PermanentError
from ordermill.flows.model import RetryPolicy
from ordermill.handlers.base import Outcome, Succeeded, TaskContext
from ordermill.handlers.mailer import Mailer
from ordermill.handlers.templates import (
    BodyTemplate,
    ShortTemplate,
    TemplateStr,
    render,
    template_context,
)

BlobReader = Callable[[str], Awaitable[bytes]]
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
_ADDRESS = re.compile(r"[^@\s<>(),;:\"\[\]\\]+@[^@\s<>(),;:\"\[\]\\]+")


def mailbox(value: str) -> tuple[str, str] | None:
    """(display name, address) of one mailbox ("Jo <jo@example.com>" or "jo@example.com")."""
    if any(mark in value for mark in ",;\r\n"):
        return None  # one address per entry: a list here could smuggle in extra recipients
    name, address = parseaddr(value)
    return (name, address) if _ADDRESS.fullmatch(address) else None


def address_of(value: str) -> str | None:
    """The bare address in ``value``, or None when it is not one mailbox."""
    box = mailbox(value)
    return None if box is None else box[1]


def _address_or_template(value: str) -> str:
    if "{" not in value and address_of(value) is None:
        raise ValueError(f"{value!r} is not an e-mail address (or a template that makes one)")
    return value


AddressTemplate = Annotated[ShortTemplate, AfterValidator(_address_or_template)]


class SendEmailPayload(BaseModel):
    """Payload of a ``send-email`` task definition. Every text is a Jinja2 template."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    recipient: list[AddressTemplate] = Field(
        min_length=1,
        max_length=100,
        description="Addresses, or templates such as {{ order.data.customerEmail }}.",
    )
    subject: ShortTemplate = Field(
        description="The subject, e.g. Order {{ order.thirdPartyOrderId }}."
    )
    body: BodyTemplate = Field(description="The plain-text body.")
    html: TemplateStr | None = Field(
        default=None, description="An HTML body besides the text (values are HTML-escaped)."
    )
    from_: AddressTemplate | None = Field(
        default=None, alias="from", description="The sender; defaults to ORDERMILL_SMTP_FROM."
    )
    reply_to: AddressTemplate | None = Field(default=None, alias="replyTo")
    attach_exports: bool = Field(
        default=False,
        alias="attachExports",
        description="Attach the files the order's export tasks produced.",
    )


def message_id(delivery_id: str, sender: str, part: str | None = None) -> str:
    """A Message-ID that is the same on every attempt of the task (and distinct per ``part``)."""
    domain = sender.rpartition("@")[2] or "ordermill.invalid"
    local = delivery_id if part is None else f"{delivery_id}.{part}"
    return f"<{local}@{domain}>"


def compose(
    *,
    sender: str,
    recipients: Sequence[str],
    subject: str,
    text: str,
    html: str | None,
    msg_id: str,
    now: datetime,
    reply_to: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    if reply_to:
        message["Reply-To"] = reply_to
    # Order data can carry line breaks; a header cannot.
    message["Subject"] = " ".join(subject.split())
    message["Date"] = format_datetime(now)
    message["Message-ID"] = msg_id
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def checked_mailbox(value: str, field: str) -> str:
    """``value`` as a well-formed header mailbox, or a PermanentError naming ``field``."""
    box = mailbox(value.strip())
    if box is None:
        raise PermanentError(f"{field} rendered to {value!r}, which is not one e-mail address")
    return formataddr(box)


class SendEmail:
    """Sends one e-mail per task through the configured SMTP server."""

    key: ClassVar[str] = "send-email"
    payload_model: ClassVar[type[BaseModel]] = SendEmailPayload
    default_timeout_ms: ClassVar[int] = 30_000
    default_retry: ClassVar[RetryPolicy] = RetryPolicy(max_attempts=3)

    def __init__(
        self,
        mailer: Mailer,
        *,
        default_from: str | None = None,
        blob_reader: BlobReader | None = None,
    ) -> None:
        self.mailer = mailer
        self.default_from = default_from
        self.blob_reader = blob_reader

    async def run(self, ctx: TaskContext) -> Outcome:
        payload: SendEmailPayload = ctx.payload
        variables = template_context(ctx)
        sender, recipients, reply_to = await self._addresses(payload, variables)
        subject = await render(payload.subject, variables, field="subject")
        msg_id = message_id(ctx.delivery_id, address_of(sender) or sender)
        message = compose(
            sender=sender,
            recipients=recipients,
            subject=subject,
            text=await render(payload.body, variables, field="body"),
            html=(
                await render(payload.html, variables, field="html", html=True)
                if payload.html
                else None
            ),
            msg_id=msg_id,
            now=ctx.now,
            reply_to=reply_to,
            headers={"X-Ordermill-Order": ctx.order_id, "X-Ordermill-Task": ctx.task_key},
        )
        attached = await self._attach(ctx, message) if payload.attach_exports else []
        ctx.log.request = {
            "from": sender,
            "to": recipients,
            "subject": message["Subject"],
            "messageId": msg_id,
            "attachments": attached,
        }
        envelope = [address_of(r) or r for r in recipients]
        sent = await self.mailer.send(message, envelope, ctx.timeout_seconds)
        ctx.log.status_code = 250
        ctx.log.response_body = sent.reply
        result: dict[str, Any] = {
            "messageId": msg_id,
            "recipients": recipients,
            "subject": message["Subject"],
        }
        if sent.refused:
            result["refused"] = sent.refused
        return Succeeded(result)

    async def _addresses(
        self, payload: SendEmailPayload, variables: dict[str, Any]
    ) -> tuple[str, list[str], str | None]:
        """The rendered sender, recipients and reply-to, each checked to be one mailbox."""
        recipients = []
        for index, source in enumerate(payload.recipient):
            value = (await render(source, variables, field=f"recipient[{index}]")).strip()
            if value:  # a template may leave an optional recipient out
                recipients.append(checked_mailbox(value, f"recipient[{index}]"))
        if not recipients:
            raise PermanentError("every recipient template rendered empty; nobody to send to")
        if payload.from_ is not None:
            sender = checked_mailbox(await render(payload.from_, variables, field="from"), "from")
        elif self.default_from:
            sender = checked_mailbox(self.default_from, "ORDERMILL_SMTP_FROM")
        else:
            raise PermanentError("no sender: set payload.from or ORDERMILL_SMTP_FROM")
        reply_to = None
        if payload.reply_to is not None:
            rendered = await render(payload.reply_to, variables, field="replyTo")
            reply_to = checked_mailbox(rendered, "replyTo")
        return sender, recipients, reply_to

    async def _attach(self, ctx: TaskContext, message: EmailMessage) -> list[str]:
        exports = [a for a in ctx.assets if a.get("source") == "export" and a.get("blob_key")]
        if exports and self.blob_reader is None:
            raise PermanentError(
                "attachExports needs ordermill's blob store, which this installation lacks"
            )
        names, total = [], 0
        for asset in exports:
            assert self.blob_reader is not None
            data = await self.blob_reader(str(asset["blob_key"]))
            total += len(data)
            if total > MAX_ATTACHMENT_BYTES:
                raise PermanentError(
                    f"the exports add up to more than {MAX_ATTACHMENT_BYTES // 2**20} MiB, too "
                    "much for e-mail; link to them instead of attaching them"
                )
            name = str(asset.get("file_name") or asset["asset_id"])
            maintype, _, subtype = str(
                asset.get("content_type") or "application/octet-stream"
            ).partition("/")
            message.add_attachment(
                data, maintype=maintype, subtype=subtype or "octet-stream", filename=name
            )
            names.append(name)
        return names

    async def close(self) -> None:
        await self.mailer.close()
