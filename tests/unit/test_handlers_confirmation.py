"""manual-confirmation: what opening a confirmation records, and the signed links it e-mails."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from ordermill.errors import PermanentError
from ordermill.flows.work import Question
from ordermill.handlers.base import Waiting
from ordermill.handlers.confirmation import ManualConfirmation, answer_path
from ordermill.testing import EPOCH, RecordingMailer, make_context

PAYLOAD = {
    "title": "Print {{ order.thirdPartyOrderId }}?",
    "description": "Size {{ orderLines[0].items[0].data.size }}",
    "assignees": ["Boss <boss@example.com>", "deputy@example.com"],
}


async def test_the_task_waits_until_its_timeout_with_the_rendered_question() -> None:
    mailer = RecordingMailer()
    confirm = ManualConfirmation(mailer, default_from="shop@example.com")
    ctx = make_context(confirm, PAYLOAD, timeout_seconds=600)

    outcome = await confirm.run(ctx)

    assert outcome == Waiting(
        until=EPOCH + timedelta(minutes=10),
        fire=False,
        question=Question(
            title="Print WEB-1001?",
            description="Size M",
            assignees=("Boss <boss@example.com>", "deputy@example.com"),
        ),
    )
    assert mailer.sent == []


def signed_links(text: str) -> dict[str, str]:
    return {m[1].lower(): m[2] for m in re.finditer(r"(Confirm|Reject): (\S+)", text)}


async def test_notify_mails_each_assignee_their_own_signed_links() -> None:
    mailer = RecordingMailer()
    confirm = ManualConfirmation(mailer, default_from="Shop <shop@example.com>")
    ctx = make_context(confirm, {**PAYLOAD, "notify": True}, timeout_seconds=60)

    outcome = await confirm.run(ctx)

    assert isinstance(outcome, Waiting)
    assert outcome.question is not None
    assert list(outcome.question.notified or ()) == PAYLOAD["assignees"]
    assert [envelope for _, envelope in mailer.sent] == [
        ["boss@example.com"],
        ["deputy@example.com"],
    ]
    assert [m["Message-ID"] for m, _ in mailer.sent] == [
        "<dlv_test.notify-0@example.com>",
        "<dlv_test.notify-1@example.com>",
    ]
    assert ctx.links is not None
    for index, (message, _) in enumerate(mailer.sent):
        assert message["Subject"] == "Please confirm: Print WEB-1001?"
        links = signed_links(message.get_body(("plain",)).get_content())
        for action in ("confirm", "reject"):
            parts = urlsplit(links[action])
            assert parts.path == answer_path("dlv_test", action, index)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            # The links live at least an hour, even when the task's timeout is shorter.
            assert int(query["expires"]) == int((EPOCH + timedelta(hours=1)).timestamp())
            assert ctx.links.verify(parts.path, query["expires"], query["signature"], EPOCH)
        html = message.get_body(("html",)).get_content()
        assert links["confirm"].replace("&", "&amp;") in html
    assert ctx.log.request == {
        "notified": PAYLOAD["assignees"],
        "messageIds": ["<dlv_test.notify-0@example.com>", "<dlv_test.notify-1@example.com>"],
    }


async def test_links_live_as_long_as_a_long_timeout() -> None:
    mailer = RecordingMailer()
    confirm = ManualConfirmation(mailer, default_from="shop@example.com")
    ctx = make_context(confirm, {**PAYLOAD, "notify": True}, timeout_seconds=3 * 86_400)

    await confirm.run(ctx)

    links = signed_links(mailer.sent[0][0].get_body(("plain",)).get_content())
    expires = parse_qs(urlsplit(links["confirm"]).query)["expires"][0]
    assert int(expires) == int((EPOCH + timedelta(days=3)).timestamp())


async def test_notify_without_a_sender_fails_naming_the_setting() -> None:
    confirm = ManualConfirmation(RecordingMailer())

    with pytest.raises(PermanentError, match="notify needs a sender: set ORDERMILL_SMTP_FROM"):
        await confirm.run(make_context(confirm, {**PAYLOAD, "notify": True}))
