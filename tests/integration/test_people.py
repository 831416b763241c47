"""People, roles and keys through the API and the UI, on SQLite and PostgreSQL: invitations by
mail and by link, single-use links, roles that hold at once, key roles, slowed sign-ins, the
audit trail."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx2
import pyotp
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from ordermill.config import Settings
from ordermill.people import ADDRESS_FREE_FAILURES
from ordermill.service import Service
from ordermill.storage import tables as t
from ordermill.storage.users import PasswordPolicy, UserStore
from tests.integration.handler_flows import smtp_settings
from tests.support.factories import order_doc
from tests.support.people import (
    CSRF_FIELD,
    PASSWORD,
    form_token,
    invite,
    member,
    set_password,
    sign_in,
)
from tests.support.smtp import SmtpServer

FAST_HASHING = {"password_time_cost": 1, "password_memory_kib": 1024, "password_parallelism": 1}
WAIT_FLOW = {
    "key": "f1",
    "name": "Flow one",
    "stages": [
        {
            "key": "s",
            "initialTaskDefinitionKeys": ["t"],
            "taskDefinitions": [{"key": "t", "handlerKey": "wait", "payload": {"durationMs": 1}}],
        }
    ],
}
LINK = re.compile(r"http://testserver(/signin/link/[A-Za-z0-9_-]+)")


@pytest.fixture
def settings(make_settings: Callable[..., Settings], request: pytest.FixtureRequest) -> Settings:
    if "smtp_server" in request.fixturenames:
        server: SmtpServer = request.getfixturevalue("smtp_server")
        return smtp_settings(make_settings, server, **FAST_HASHING)
    return make_settings(**FAST_HASHING)


async def test_an_invitation_link_sets_a_password_once_and_signs_in(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    invited = await invite(client, acme, "Ann@Example.com", ["operator"])
    assert (invited["email"], invited["roles"], invited["mailed"]) == (
        "ann@example.com",
        ["operator"],
        False,
    )
    path = invited["link"].removeprefix("http://testserver")

    opened_twice = [(await client.get(path)).status_code for _ in range(2)]
    too_short = await set_password(client, path, "short")
    done = await set_password(client, path, PASSWORD)
    again = await client.get(path)

    assert opened_twice == [200, 200]  # looking at the link does not use it up
    assert too_short.status_code == 400
    assert "at least 12" in too_short.text
    assert (done.status_code, done.headers["location"]) == (303, "/")
    assert (await client.get("/")).status_code == 200
    assert again.status_code == 404
    listed = (await client.get("/api/users", headers=acme)).json()["items"]
    assert [(m["email"], m["roles"], m["hasPassword"]) for m in listed] == [
        ("ann@example.com", ["operator"], True)
    ]


async def test_a_link_older_than_an_hour_is_refused(
    client: httpx2.AsyncClient, acme: dict[str, str], service: Service
) -> None:
    invited = await invite(client, acme, "late@example.com", ["viewer"])
    path = invited["link"].removeprefix("http://testserver")
    token = await form_token(client, path)
    async with service.db.transaction() as conn:
        await conn.execute(
            update(t.user_tokens).values(expires_at=service.clock.now() - timedelta(seconds=1))
        )

    late = await client.post(path, data={"csrf": token, "password": PASSWORD})

    assert late.status_code == 400
    assert "already used or has expired" in late.text
    assert await service.people.users.verify_password("late@example.com", PASSWORD) is None


async def test_an_invitation_and_a_reset_go_out_by_mail_when_smtp_is_configured(
    client: httpx2.AsyncClient, acme: dict[str, str], smtp_server: SmtpServer
) -> None:
    invited = await invite(client, acme, "mo@example.com", ["viewer"])
    [mail] = smtp_server.wait_for(1)
    found = LINK.search(mail.message.get_content())
    assert invited["mailed"] is True
    assert invited["link"] is None
    assert mail.rcpt_tos == ["mo@example.com"]
    assert found is not None
    assert (await set_password(client, found.group(1), PASSWORD)).status_code == 303

    asked, unknown = [
        await client.post(
            "/signin/forgot",
            data={"csrf": await form_token(client, "/signin/forgot"), "email": address},
        )
        for address in ("mo@example.com", "x@example.com")
    ]
    [_, reset] = smtp_server.wait_for(2)
    reset_link = LINK.search(reset.message.get_content())

    assert asked.status_code == unknown.status_code == 200
    assert asked.text.count("If that address has an account") == 1
    assert reset_link is not None
    assert (
        await set_password(client, reset_link.group(1), "a brand new password")
    ).status_code == 303
    client.cookies.clear()
    assert (await sign_in(client, "mo@example.com")).status_code == 401
    assert (await sign_in(client, "mo@example.com", "a brand new password")).status_code == 303
    assert len(smtp_server.messages) == 2


async def test_a_role_change_holds_at_once_and_a_viewer_cannot_act(
    client: httpx2.AsyncClient, acme: dict[str, str], service: Service
) -> None:
    await service.save_flow("acme", WAIT_FLOW)
    await member(client, acme, "vi@example.com", ["viewer"])
    assert (await sign_in(client, "vi@example.com")).status_code == 303
    order, _ = await service.create_order(
        order_doc("A-1", flow_key="f1"), start=False, actor="test"
    )
    page = await client.get(f"/orders/{order.id}")
    csrf = CSRF_FIELD.search(page.text)
    assert csrf is not None

    forged = await client.post(
        f"/orders/{order.id}/cancel", headers={"x-csrf-token": csrf.group(1)}
    )
    settings_before = await client.get("/settings")
    changed = await client.put(
        "/api/users/vi@example.com/roles", json={"roles": ["admin"]}, headers=acme
    )
    settings_after = await client.get("/settings")

    assert page.status_code == 200
    assert 'action="/orders/' not in page.text  # no action buttons for a viewer
    assert forged.status_code == 403
    assert "orders:order:act" in forged.text
    assert settings_before.status_code == 403
    assert changed.status_code == 200
    assert changed.json()["roles"] == ["admin"]
    assert settings_after.status_code == 200
    assert (await service.store.get_order("acme", order.id)).status.value == "CREATED"


async def test_a_key_holds_only_what_its_roles_grant(
    client: httpx2.AsyncClient, acme: dict[str, str], service: Service
) -> None:
    await service.save_flow("acme", WAIT_FLOW)
    role = await client.put(
        "/api/roles/shop",
        json={"permissions": ["orders:order:create", "orders:order:view"]},
        headers=acme,
    )
    made = await client.post(
        "/api/spaces/acme/api-keys", json={"name": "web shop", "roles": ["shop"]}, headers=acme
    )
    shop = {"Authorization": f"Bearer {made.json()['key']}"}

    created = await client.post("/api/orders", json=order_doc("S-1", flow_key="f1"), headers=shop)
    read = await client.get(f"/api/orders/{created.json()['id']}", headers=shop)
    flows = await client.get("/api/flows", headers=shop)
    escalate = await client.post(
        "/api/spaces/acme/api-keys", json={"name": "more", "roles": ["owner"]}, headers=shop
    )
    listed = await client.get("/api/spaces/acme/api-keys", headers=acme)

    assert role.status_code == 200
    assert made.status_code == 201
    assert made.json()["roles"] == ["shop"]
    assert (created.status_code, read.status_code) == (201, 200)
    assert flows.status_code == 403
    assert flows.headers["content-type"] == "application/problem+json"
    assert "flows:flow:view" in flows.json()["detail"]
    assert escalate.status_code == 403
    assert [k["roles"] for k in listed.json()["items"]] == [["owner"], ["shop"]]


async def test_nobody_grants_more_than_they_hold(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    made = await client.post(
        "/api/spaces/acme/api-keys", json={"name": "adm", "roles": ["admin"]}, headers=acme
    )
    admin_key = {"Authorization": f"Bearer {made.json()['key']}"}

    as_owner = await client.post(
        "/api/users", json={"email": "o@example.com", "roles": ["owner"]}, headers=admin_key
    )
    as_operator = await client.post(
        "/api/users", json={"email": "op@example.com", "roles": ["operator"]}, headers=admin_key
    )

    assert as_owner.status_code == 403
    assert "admin:owner:manage" in as_owner.json()["detail"]
    assert as_operator.status_code == 201
    await invite(client, acme, "boss@example.com", ["owner"])
    demote = await client.post(
        "/api/users", json={"email": "boss@example.com", "roles": ["viewer"]}, headers=admin_key
    )
    assert demote.status_code == 403  # re-inviting replaces roles, so it is checked the same
    listed = (await client.get("/api/users", headers=acme)).json()["items"]
    assert {m["email"]: m["roles"] for m in listed}["boss@example.com"] == ["owner"]


async def test_failed_sign_ins_slow_the_address_down_without_locking_the_person_out(
    app: FastAPI, client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    await member(client, acme, "pat@example.com", ["viewer"])
    attempts = [
        (await sign_in(client, f"guess{n}@example.com", "wrong password")).status_code
        for n in range(ADDRESS_FREE_FAILURES)
    ]
    slowed = await sign_in(client, "pat@example.com")
    elsewhere = httpx2.ASGITransport(app=app, client=("10.0.0.7", 5555))
    async with httpx2.AsyncClient(transport=elsewhere, base_url="http://testserver") as other:
        owner = await sign_in(other, "pat@example.com")

    assert attempts == [401] * ADDRESS_FREE_FAILURES
    assert slowed.status_code == 429
    assert "Try again in" in slowed.text
    assert owner.status_code == 303


async def test_a_changed_argon2_policy_rehashes_at_the_next_sign_in(service: Service) -> None:
    users = service.people.users
    user = await users.create_user("re@example.com")
    await users.set_password(user.id, PASSWORD)
    before = await users.password_hash_of(user.id)
    stronger = UserStore(service.db, service.clock, PasswordPolicy(2, 2048, 1))

    signed_in = await stronger.verify_password("re@example.com", PASSWORD)
    after = await users.password_hash_of(user.id)

    assert before is not None
    assert before.startswith("$argon2id$")
    assert "m=1024,t=1" in before
    assert signed_in is not None
    assert after is not None
    assert "m=2048,t=2" in after
    assert await stronger.verify_password("re@example.com", "wrong password!") is None


async def test_sessions_are_listed_and_sign_out_everywhere_ends_them_all(
    app: FastAPI, client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    await member(client, acme, "two@example.com", ["viewer"])
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as phone:
        assert (await sign_in(phone, "two@example.com")).status_code == 303
        assert (await sign_in(client, "two@example.com")).status_code == 303
        account = await client.get("/account")
        token = CSRF_FIELD.search(account.text)
        assert token is not None

        ended = await client.post("/signout/everywhere", data={"csrf": token.group(1)})

        assert account.text.count("data-session-id=") == 3  # the link's session and these two
        assert ended.status_code == 303
        assert (await phone.get("/")).status_code == 303
        assert (await client.get("/")).status_code == 303


async def test_a_person_of_two_spaces_switches_between_them(
    client: httpx2.AsyncClient, acme: dict[str, str], make_space: Callable[..., Any]
) -> None:
    other = await make_space("globex")
    await member(client, acme, "both@example.com", ["viewer"])
    await invite(client, other, "both@example.com", ["owner"])  # has a password: no link
    assert (await sign_in(client, "both@example.com")).status_code == 303
    before = await client.get("/settings")
    token = CSRF_FIELD.search((await client.get("/account")).text)
    assert token is not None

    switched = await client.post("/account/space", data={"csrf": token.group(1), "space": "globex"})
    after = await client.get("/settings")
    refused = await client.post("/account/space", data={"csrf": token.group(1), "space": "nowhere"})

    assert before.status_code == 403  # a viewer in acme
    assert switched.status_code == 303
    assert after.status_code == 200
    assert "globex" in after.text
    assert refused.status_code == 404


async def test_the_audit_trail_names_actor_time_client_and_change(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    await invite(client, acme, "au@example.com", ["viewer"])
    await client.put("/api/users/au@example.com/roles", json={"roles": ["operator"]}, headers=acme)
    await client.post("/api/spaces/acme/api-keys", json={"name": "erp"}, headers=acme)

    listed = await client.get("/api/audit", headers=acme)
    older = await client.get(
        "/api/audit", params={"before": listed.json()["items"][0]["id"]}, headers=acme
    )

    items = listed.json()["items"]
    assert [i["action"] for i in items] == [
        "key.created",
        "user.roles",
        "user.invited",
        "key.created",  # the space's first key, made with the admin key
    ]
    assert [i["actor"].split(":")[0] for i in items] == ["api-key"] * 3 + ["admin"]
    assert all(i["client"] and i["at"] for i in items)
    assert items[1]["changes"] == {"before": ["viewer"], "after": ["operator"]}
    assert items[1]["target"] == "au@example.com"
    assert [i["action"] for i in older.json()["items"]] == [
        "user.roles",
        "user.invited",
        "key.created",
    ]


async def test_flow_and_settings_changes_reach_the_audit_page_with_the_persons_email(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    saved = await client.put("/api/flows/f1", json=WAIT_FLOW, headers=acme)
    assert saved.status_code == 201
    await member(client, acme, "own@example.com", ["owner"])
    assert (await sign_in(client, "own@example.com")).status_code == 303
    token = await form_token(client, "/settings")
    rotated = await client.post("/settings/signing-secret/rotate", data={"csrf": token})

    page = await client.get("/audit")
    api = (await client.get("/api/audit", headers=acme)).json()["items"]

    assert rotated.status_code == 303
    assert page.status_code == 200
    assert [(i["action"], i["actor"]) for i in api[:3]] == [
        ("settings.signing-secret-rotated", "own@example.com"),
        ("user.invited", api[1]["actor"]),
        ("flow.saved", api[2]["actor"]),
    ]
    assert api[2]["target"] == "f1"
    assert api[2]["changes"] == {"version": 1}
    assert page.text.count('<tr data-action="') == len(api)
    assert "own@example.com" in page.text


async def test_totp_asks_for_a_code_once_on_and_each_code_and_recovery_code_works_once(
    client: httpx2.AsyncClient, acme: dict[str, str]
) -> None:
    await member(client, acme, "tt@example.com", ["viewer"])
    assert (await sign_in(client, "tt@example.com")).status_code == 303
    setup = await client.get("/account/totp")
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', setup.text)
    assert secret is not None
    totp = pyotp.TOTP(secret.group(1))
    wrong = await client.post(
        "/account/totp",
        data={"csrf": csrf_in(setup.text), "secret": secret.group(1), "code": "000000"},
    )
    assert wrong.status_code == 400
    enabled = await client.post(
        "/account/totp",
        data={"csrf": csrf_in(setup.text), "secret": secret.group(1), "code": totp.now()},
    )
    codes = re.findall(r"<li><code>([0-9a-f]{10})</code></li>", enabled.text)
    assert len(codes) == 10
    client.cookies.clear()

    async def second_step(code: str) -> httpx2.Response:
        first = await sign_in(client, "tt@example.com")
        assert first.status_code == 200  # the code page, not yet a session
        assert "ordermill_session" not in first.headers.get("set-cookie", "")
        pending = re.search(r'name="pending" value="([^"]+)"', first.text)
        assert pending is not None
        return await client.post(
            "/signin/totp",
            data={"csrf": csrf_in(first.text), "pending": pending.group(1), "code": code},
        )

    bad = await second_step("123456" if totp.now() != "123456" else "654321")
    current = totp.now()
    good = await second_step(current)
    client.cookies.clear()
    replayed = await second_step(current)
    recovered = await second_step(codes[0])
    client.cookies.clear()
    recovered_again = await second_step(codes[0])

    assert bad.status_code == 401
    assert good.status_code == 303
    assert replayed.status_code == 401  # a code works once
    assert recovered.status_code == 303
    assert recovered_again.status_code == 401


def csrf_in(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found is not None
    return found.group(1)


async def test_the_people_page_invites_changes_roles_and_removes(
    client: httpx2.AsyncClient, acme: dict[str, str], service: Service
) -> None:
    await member(client, acme, "adm@example.com", ["admin"])
    assert (await sign_in(client, "adm@example.com")).status_code == 303
    token = await form_token(client, "/people")

    invited = await client.post(
        "/people", data={"csrf": token, "email": "new@example.com", "role": "viewer"}
    )
    flash = await client.get("/people")
    as_owner = await client.post(
        "/people/roles", data={"csrf": token, "email": "new@example.com", "role": "owner"}
    )
    changed = await client.post(
        "/people/roles", data={"csrf": token, "email": "new@example.com", "role": "operator"}
    )
    roles_after = await service.people.users.members("acme")
    removed = await client.post("/people/remove", data={"csrf": token, "email": "new@example.com"})

    assert invited.status_code == 303
    assert "hand new@example.com this link: http://testserver/signin/link/" in flash.text
    assert as_owner.status_code == 403
    assert changed.status_code == 303
    assert {m.user.email: m.roles for m in roles_after}["new@example.com"] == ("operator",)
    assert removed.status_code == 303
    assert [m.user.email for m in await service.people.users.members("acme")] == ["adm@example.com"]


async def test_the_demo_prints_a_fresh_one_time_link_for_its_owner_on_every_start(
    client: httpx2.AsyncClient, service: Service
) -> None:
    from ordermill.demo import DEMO_SPACE, DEMO_USER, ensure_demo, ensure_demo_user

    await ensure_demo(service)
    email, first = await ensure_demo_user(service)
    done = await set_password(client, first.removeprefix("http://testserver"), PASSWORD)
    _, second = await ensure_demo_user(service)

    assert email == DEMO_USER
    assert done.status_code == 303
    assert second != first
    assert (await client.get(second.removeprefix("http://testserver"))).status_code == 200
    assert [(m.user.email, m.roles) for m in await service.people.members(DEMO_SPACE)] == [
        (DEMO_USER, ("owner",))
    ]
