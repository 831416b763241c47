"""send-email with a recording mailer: addresses, headers, Message-ID, attachments, SMTP answers."""

from __future__ import annotations

from typing import Any

import pytest

from ordermill.errors import PermanentError, RetryableError
from ordermill.handlers.base import Succeeded
from ordermill.handlers.email import SendEmail, mailbox, message_id
from ordermill.handlers.mailer import smtp_error
from ordermill.testing import RecordingMailer, make_context, sample_order

PAYLOAD = {
    "recipient": ["{{ order.data.customerEmail }}", "{{ order.data.cc | default('') }}"],
    "subject": "Order {{ order.thirdPartyOrderId }}",
    "body": "Thanks!",
}


def handler(mailer: RecordingMailer, **options: Any) -> SendEmail:
    return SendEmail(mailer, default_from="Shop <shop@example.com>", **options)


def test_the_message_id_is_derived_from_the_delivery_id() -> None:
    assert message_id("dlv_01abc", "shop@example.com") == "<dlv_01abc@example.com>"
    assert message_id("dlv_01abc", "shop@example.com", part="notify-1") == (
        "<dlv_01abc.notify-1@example.com>"
    )
    assert message_id("dlv_01abc", "") == "<dlv_01abc@ordermill.invalid>"


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("jo@example.com", ("", "jo@example.com")),
        ("Jo Smith <jo@example.com>", ("Jo Smith", "jo@example.com")),
        ("jo@example.com, eve@example.com", None),
        ("jo@example.com\r\nBcc: eve@example.com", None),
        ("not an address", None),
    ],
)
def test_a_mailbox_is_exactly_one_address(value: str, parsed: tuple[str, str] | None) -> None:
    assert mailbox(value) == parsed


async def test_every_attempt_sends_the_same_message_id() -> None:
    mailer = RecordingMailer()
    send = handler(mailer)

    for attempt in (1, 2):
        await send.run(make_context(send, PAYLOAD, attempt=attempt))

    ids = [message["Message-ID"] for message, _ in mailer.sent]
    assert ids == ["<dlv_test@example.com>", "<dlv_test@example.com>"]


async def test_the_rendered_message_and_what_the_attempt_log_keeps() -> None:
    mailer = RecordingMailer()
    send = handler(mailer)
    order = sample_order(data={"customerEmail": "Jo <jo@example.com>"})
    ctx = make_context(send, {**PAYLOAD, "replyTo": "help@example.com"}, order=order)

    outcome = await send.run(ctx)

    [(message, envelope)] = mailer.sent
    assert envelope == ["jo@example.com"]  # the empty optional recipient is left out
    assert {name: message[name] for name in ("From", "To", "Reply-To", "Subject")} == {
        "From": "Shop <shop@example.com>",
        "To": "Jo <jo@example.com>",
        "Reply-To": "help@example.com",
        "Subject": "Order WEB-1001",
    }
    assert (message["X-Ordermill-Order"], message["X-Ordermill-Task"]) == ("ord_test", "task-1")
    assert outcome == Succeeded(
        {
            "messageId": "<dlv_test@example.com>",
            "recipients": ["Jo <jo@example.com>"],
            "subject": "Order WEB-1001",
        }
    )
    assert ctx.log.request == {
        "from": "Shop <shop@example.com>",
        "to": ["Jo <jo@example.com>"],
        "subject": "Order WEB-1001",
        "messageId": "<dlv_test@example.com>",
        "attachments": [],
    }


async def test_line_breaks_from_order_data_cannot_inject_headers() -> None:
    mailer = RecordingMailer()
    send = handler(mailer)
    order = sample_order(thirdPartyOrderId="X\r\nBcc: eve@example.com")

    await send.run(make_context(send, PAYLOAD, order=order))

    [(message, envelope)] = mailer.sent
    assert message["Subject"] == "Order X Bcc: eve@example.com"
    assert message["Bcc"] is None
    assert envelope == ["jo@example.com"]


async def test_a_recipient_that_renders_to_a_list_fails_the_task() -> None:
    send = handler(RecordingMailer())
    order = sample_order(data={"customerEmail": "jo@example.com, eve@example.com"})

    with pytest.raises(PermanentError) as caught:
        await send.run(make_context(send, PAYLOAD, order=order))

    assert caught.value.message == (
        "recipient[0] rendered to 'jo@example.com, eve@example.com', which is not one e-mail "
        "address"
    )


async def test_without_a_sender_the_task_fails_saying_which_setting_to_give() -> None:
    send = SendEmail(RecordingMailer())

    with pytest.raises(PermanentError, match=r"set payload\.from or ORDERMILL_SMTP_FROM"):
        await send.run(make_context(send, PAYLOAD))


@pytest.mark.parametrize(
    ("code", "kind"),
    [(421, RetryableError), (451, RetryableError), (550, PermanentError), (554, PermanentError)],
)
def test_4xx_answers_are_temporary_and_5xx_permanent(code: int, kind: type[Exception]) -> None:
    error = smtp_error(code, "4.3.0 Busy")

    assert type(error) is kind
    assert (error.message, error.status_code) == (
        f"the SMTP server answered {code} 4.3.0 Busy",
        code,
    )


EXPORT = {"source": "export", "blob_key": "exports/ord_test/sheet.pdf", "asset_id": "sheet"}


async def test_attach_exports_attaches_the_orders_export_files() -> None:
    mailer = RecordingMailer()
    blobs = {"exports/ord_test/sheet.pdf": b"%PDF-1.7 sheet"}

    async def read(key: str) -> bytes:
        return blobs[key]

    send = handler(mailer, blob_reader=read)
    assets = (
        {**EXPORT, "file_name": "sheet.pdf", "content_type": "application/pdf"},
        {"source": "feedback", "url": "https://example.com/x.stl", "asset_id": "x"},
    )
    ctx = make_context(send, {**PAYLOAD, "attachExports": True}, assets=assets)

    await send.run(ctx)

    [(message, _)] = mailer.sent
    [part] = message.iter_attachments()
    assert (part.get_filename(), part.get_content_type()) == ("sheet.pdf", "application/pdf")
    assert part.get_content() == b"%PDF-1.7 sheet"
    assert ctx.log.request is not None
    assert ctx.log.request["attachments"] == ["sheet.pdf"]


async def test_attach_exports_without_a_blob_store_fails_clearly() -> None:
    send = handler(RecordingMailer())
    ctx = make_context(send, {**PAYLOAD, "attachExports": True}, assets=(EXPORT,))

    with pytest.raises(PermanentError, match="attachExports needs ordermill's blob store"):
        await send.run(ctx)
