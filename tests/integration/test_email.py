"""send-email against a real SMTP server with STARTTLS, through the API, on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest

from ordermill.config import Settings
from tests.integration.conftest import order_doc, wait_for_status
from tests.integration.handler_flows import (
    attempts,
    chain,
    events,
    post_flow,
    post_order,
    smtp_settings,
    task,
)
from tests.support.receiver import LocalCA
from tests.support.smtp import SmtpServer

SMTP_USER, SMTP_PASSWORD = "mailer", "s3cret-smtp-pa55word"


@pytest.fixture
def smtp_server(trust_ca: LocalCA) -> Iterator[SmtpServer]:
    """The test SMTP server, here also requiring a login (to prove the password stays secret)."""
    server = SmtpServer(trust_ca, credentials=(SMTP_USER, SMTP_PASSWORD)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(make_settings: Callable[..., Settings], smtp_server: SmtpServer) -> Settings:
    return smtp_settings(
        make_settings, smtp_server, smtp_username=SMTP_USER, smtp_password=SMTP_PASSWORD
    )


def email_task(**payload: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "recipient": ["{{ order.data.customerEmail }}", "ops@ordermill.test"],
        "subject": "Order {{ order.thirdPartyOrderId }} is in",
        "body": "Hello from {{ addresses[0].data.city }}: {{ orderLines | length }} line(s).",
    }
    values.update(payload)
    return task("mail", "send-email", values, retry={"maxAttempts": 3, "initialIntervalMs": 10})


async def test_the_message_arrives_rendered_over_starttls(
    client: httpx2.AsyncClient, acme: dict[str, str], smtp_server: SmtpServer
) -> None:
    await post_flow(client, acme, chain(email_task(html="<p>{{ order.data.note }}</p>")))

    order = await post_order(
        client, acme, order_doc(data={"customerEmail": "jo@example.com", "note": "<b>hi</b>"})
    )

    done = await wait_for_status(client, acme, order["id"], "SUCCESS", "FAILURE")
    assert done["status"] == "SUCCESS"
    [mail] = smtp_server.messages
    delivery_id = done["tasks"][0]["deliveryId"]
    assert (mail.tls, mail.login, mail.mail_from) == (True, SMTP_USER, "workshop@ordermill.test")
    assert mail.rcpt_tos == ["jo@example.com", "ops@ordermill.test"]
    message = mail.message
    assert message["Subject"] == "Order WEB-1001 is in"
    assert message["To"] == "jo@example.com, ops@ordermill.test"
    assert message["Message-ID"] == f"<{delivery_id}@ordermill.test>"
    assert message.get_body(("plain",)).get_content() == "Hello from Gent: 1 line(s).\n"
    assert message.get_body(("html",)).get_content() == "<p>&lt;b&gt;hi&lt;/b&gt;</p>\n"
    assert done["tasks"][0]["result"] == {
        "messageId": f"<{delivery_id}@ordermill.test>",
        "recipients": ["jo@example.com", "ops@ordermill.test"],
        "subject": "Order WEB-1001 is in",
    }
    [attempt] = await attempts(client, acme, order["id"], "mail")
    assert attempt["request"] == {
        "from": "Workshop <workshop@ordermill.test>",
        "to": ["jo@example.com", "ops@ordermill.test"],
        "subject": "Order WEB-1001 is in",
        "messageId": f"<{delivery_id}@ordermill.test>",
        "attachments": [],
    }
    timeline = await events(client, acme, order["id"])
    assert SMTP_PASSWORD not in repr([attempt, timeline, done])


async def test_a_temporary_refusal_is_retried_with_the_same_message_id(
    client: httpx2.AsyncClient, acme: dict[str, str], smtp_server: SmtpServer
) -> None:
    smtp_server.script("451 4.3.0 Try again later")
    await post_flow(client, acme, chain(email_task()))

    order = await post_order(client, acme, order_doc())

    done = await wait_for_status(client, acme, order["id"], "SUCCESS", "FAILURE")
    assert done["status"] == "SUCCESS"
    tried = await attempts(client, acme, order["id"], "mail")
    assert [(a["outcome"], a["statusCode"]) for a in tried] == [("retry", 451), ("succeeded", 250)]
    assert tried[0]["errorMessage"] == "the SMTP server answered 451 4.3.0 Try again later"
    first, second = smtp_server.attempts
    assert first.message["Message-ID"] == second.message["Message-ID"]
    assert [mail.reply[:3] for mail in (first, second)] == ["451", "250"]


async def test_a_permanent_refusal_fails_the_task_with_the_server_answer(
    client: httpx2.AsyncClient, acme: dict[str, str], smtp_server: SmtpServer
) -> None:
    smtp_server.script("554 5.7.1 Message rejected as spam")
    await post_flow(client, acme, chain(email_task()))

    order = await post_order(client, acme, order_doc())

    done = await wait_for_status(client, acme, order["id"], "SUCCESS", "FAILURE")
    assert done["status"] == "FAILURE"
    assert done["tasks"][0]["error"] == {
        "class": "PermanentError",
        "message": "the SMTP server answered 554 5.7.1 Message rejected as spam",
        "statusCode": 554,
    }
    assert len(await attempts(client, acme, order["id"], "mail")) == 1
    assert smtp_server.messages == []


async def test_an_undefined_value_fails_the_task_naming_it(
    client: httpx2.AsyncClient, acme: dict[str, str], smtp_server: SmtpServer
) -> None:
    await post_flow(client, acme, chain(email_task(body="Note: {{ order.data.giftNote }}")))

    order = await post_order(client, acme, order_doc())

    done = await wait_for_status(client, acme, order["id"], "SUCCESS", "FAILURE")
    assert done["status"] == "FAILURE"
    error = done["tasks"][0]["error"]
    assert error["class"] == "PermanentError"
    assert "the body template uses an undefined value" in error["message"]
    assert "'giftNote'" in error["message"]
    assert smtp_server.attempts == []


async def test_template_mistakes_are_rejected_when_the_flow_is_saved(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    flow = chain(
        email_task(
            recipient=["{{ customer.email }}", "not an address"],
            subject="Order {{ order.thirdPartyOrderId",
        )
    )

    response = await client.post("/api/flows", json=flow, headers=acme)

    assert response.status_code == 400, response.text
    at = "/stages/0/taskDefinitions/0/payload"
    assert response.json()["problems"] == [
        {
            "pointer": f"{at}/recipient/0",
            "message": "unknown template variable customer; templates can use order, "
            "orderLines, addresses, space, flow, task (for example "
            "{{ order.thirdPartyOrderId }} or {{ order.data.customerEmail }})",
        },
        {
            "pointer": f"{at}/recipient/1",
            "message": "'not an address' is not an e-mail address (or a template that makes one)",
        },
        {
            "pointer": f"{at}/subject",
            "message": "template syntax error on line 1: unexpected end of template, "
            "expected 'end of print statement'.",
        },
    ]


async def test_attach_exports_attaches_the_files_the_export_task_stored(
    client: httpx2.AsyncClient, acme: dict[str, str], smtp_server: SmtpServer
) -> None:
    exporting = task("export", "export", {"formats": ["manifest"]})
    await post_flow(client, acme, chain(exporting, email_task(attachExports=True)))
    document = order_doc()
    document["orderLines"][0]["items"][0]["assets"] = []  # nothing to fetch from the internet

    order = await post_order(client, acme, document)

    done = await wait_for_status(client, acme, order["id"], "SUCCESS", "FAILURE")
    assert done["status"] == "SUCCESS", [t["error"] for t in done["tasks"]]
    [mail] = smtp_server.messages
    attached = {
        part.get_filename(): part.get_content_type() for part in mail.message.iter_attachments()
    }
    assert attached == {"manifest.json": "application/json", "manifest.csv": "text/csv"}
    manifest = next(
        p for p in mail.message.iter_attachments() if p.get_filename() == "manifest.json"
    )
    assert b"WEB-1001" in manifest.get_payload(decode=True)
