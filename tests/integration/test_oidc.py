"""Single sign-on with OpenID Connect against a provider the tests run on 127.0.0.1 (https with
the session's CA), on SQLite and PostgreSQL: an invited person with a verified address signs in;
every other answer is a clear 4xx page and leaves no session and no audit entry behind."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx2
import pyotp
import pytest
import structlog
from sqlalchemy import func, select

from ordermill.api.app import create_app
from ordermill.config import Settings
from ordermill.logs import configure_logging_for, flush_logs
from ordermill.service import Service
from ordermill.storage import tables as t
from tests.support.logstate import logging_restored
from tests.support.oidc import DISCOVERY, TestProvider
from tests.support.receiver import HttpsReceiver, Reply

FAST_HASHING = {"password_time_cost": 1, "password_memory_kib": 1024, "password_parallelism": 1}
CALLBACK = "http://testserver/signin/oidc/callback"


@pytest.fixture
def provider(https_receiver: HttpsReceiver) -> TestProvider:
    return TestProvider(https_receiver)


@pytest.fixture
def settings(make_settings: Callable[..., Settings], provider: TestProvider) -> Settings:
    return make_settings(
        oidc_discovery_url=provider.discovery_url,
        oidc_client_id=provider.client_id,
        oidc_client_secret=provider.client_secret,
        oidc_label="Test IdP",
        oidc_ca_file=provider.receiver.ca_pem_path,
        **FAST_HASHING,
    )


async def through_provider(
    client: httpx2.AsyncClient, provider: TestProvider, *, next: str = "/flows"
) -> str:
    """Start at ordermill, let the provider consent; the callback path it sends the browser to."""
    start = await client.get("/signin/oidc", params={"next": next})
    assert start.status_code == 303, start.text
    assert start.headers["location"].startswith(f"{provider.issuer}/authorize?")
    async with httpx2.AsyncClient(verify=provider.receiver.ssl_context()) as browser:
        consent = await browser.get(start.headers["location"])
    assert consent.status_code == 302, consent.text
    back: str = consent.headers["location"]
    assert back.startswith(CALLBACK + "?")
    return back.removeprefix("http://testserver")


async def invite(client: httpx2.AsyncClient, acme: dict[str, str], email: str) -> None:
    response = await client.post(
        "/api/users", json={"email": email, "roles": ["operator"]}, headers=acme
    )
    assert response.status_code == 201, response.text


async def stored(service: Service) -> tuple[int, list[str]]:
    """Open sessions, and the audit actions recorded."""
    async with service.db.transaction() as conn:
        sessions = (await conn.execute(select(func.count()).select_from(t.user_sessions))).scalar()
        actions = (await conn.execute(select(t.audit.c.action).order_by(t.audit.c.id))).scalars()
        return int(sessions or 0), list(actions)


async def test_the_sign_in_page_offers_the_provider(client: httpx2.AsyncClient) -> None:
    page = await client.get("/signin")
    assert page.status_code == 200
    assert 'href="/signin/oidc"' in page.text
    assert "Sign in with Test IdP" in page.text


async def test_an_invited_person_with_a_verified_address_signs_in(
    client: httpx2.AsyncClient, acme: dict[str, str], provider: TestProvider, service: Service
) -> None:
    await invite(client, acme, "ann@example.com")
    provider.person("Ann@Example.com")
    _, actions_before = await stored(service)

    done = await client.get(await through_provider(client, provider))

    assert (done.status_code, done.headers["location"]) == (303, "/flows")
    assert "ordermill_session" in done.cookies
    orders = await client.get("/")
    assert orders.status_code == 200
    assert "ann@example.com" in orders.text
    sessions, actions = await stored(service)
    assert sessions == 1
    assert actions == [*actions_before, "user.signed-in"]
    audit = (await client.get("/api/audit", headers=acme)).json()["items"]
    signed_in = [e for e in audit if e["action"] == "user.signed-in"]
    assert [(e["actor"], e["changes"]) for e in signed_in] == [
        ("ann@example.com", {"method": "openid-connect"})
    ]


@pytest.mark.parametrize(
    ("case", "status", "words"),
    [
        ("unverified", 401, "not verified your e-mail"),
        ("unknown", 403, "Ask an administrator of your space for an invitation"),
        ("bad state", 400, "did not start in this browser"),
        ("no cookie", 400, "did not start in this browser"),
        ("wrong nonce", 401, "nonce"),
        ("bad signature", 401, "signature does not verify"),
        ("expired", 401, "exp"),
        ("wrong audience", 401, "aud"),
        ("wrong issuer", 401, "iss"),
    ],
)
async def test_refusals_are_clear_and_store_nothing(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    provider: TestProvider,
    service: Service,
    case: str,
    status: int,
    words: str,
) -> None:
    await invite(client, acme, "ann@example.com")
    email = "bob@example.com" if case == "unknown" else "ann@example.com"
    provider.person(email, verified=case != "unverified")
    overrides: dict[str, dict[str, Any]] = {
        "wrong nonce": {"nonce": "not-the-one"},
        "expired": {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
        "wrong audience": {"aud": "someone-else"},
        "wrong issuer": {"iss": "https://127.0.0.1:1"},
    }
    provider.overrides = overrides.get(case, {})
    provider.sign_with_stranger = case == "bad signature"
    before = await stored(service)

    path = await through_provider(client, provider)
    if case == "bad state":
        path = path.replace("state=", "state=x")
    if case == "no cookie":
        client.cookies.delete("ordermill_oidc", path="/signin/oidc")
    refused = await client.get(path)

    assert refused.status_code == status, refused.text
    assert words in refused.text
    assert "ordermill_session" not in refused.cookies
    assert await stored(service) == before
    assert (await client.get("/")).status_code in (302, 303)  # still signed out
    expect_token = case not in ("bad state", "no cookie")
    assert provider.tokens_issued == (1 if expect_token else 0)


async def test_a_callback_replayed_after_success_is_refused(
    client: httpx2.AsyncClient, acme: dict[str, str], provider: TestProvider, service: Service
) -> None:
    await invite(client, acme, "ann@example.com")
    provider.person("ann@example.com")
    path = await through_provider(client, provider)
    assert (await client.get(path)).status_code == 303

    again = await client.get(path)

    assert again.status_code == 400
    assert (await stored(service))[0] == 1


async def test_a_person_with_totp_still_gives_a_code(
    client: httpx2.AsyncClient, acme: dict[str, str], provider: TestProvider, service: Service
) -> None:
    await invite(client, acme, "ann@example.com")
    user = await service.people.users.find_user("ann@example.com")
    assert user is not None
    secret = service.people.new_totp_secret()
    await service.people.enable_totp(user.id, secret, pyotp.TOTP(secret).now())
    provider.person("ann@example.com")
    await service.people.users.clear_failures(["client:127.0.0.1"])

    page = await client.get(await through_provider(client, provider))

    assert page.status_code == 200
    assert 'name="pending"' in page.text
    sessions, actions = await stored(service)
    assert sessions == 0
    assert "user.signed-in" not in actions
    assert (await client.get("/")).status_code in (302, 303)


async def visit(settings: Settings, *paths: str) -> list[httpx2.Response]:
    """GET ``paths`` in order from an application with ``settings``."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://testserver"
        ) as plain,
    ):
        return [await plain.get(path) for path in paths]


async def test_without_settings_the_routes_are_absent(
    make_settings: Callable[..., Settings],
) -> None:
    page, start = await visit(make_settings(**FAST_HASHING), "/signin", "/signin/oidc")
    assert "/signin/oidc" not in page.text
    assert start.status_code == 404


async def test_a_provider_whose_certificate_is_not_trusted_is_not_called_on(
    settings: Settings, provider: TestProvider
) -> None:
    untrusting = settings.model_copy(update={"oidc_ca_file": None})
    (start,) = await visit(untrusting, "/signin/oidc")
    assert start.status_code == 502
    assert "did not answer: ClientConnectorCertificateError" in start.text
    assert provider.receiver.requests == []


async def test_a_failing_provider_gets_a_502_page(
    client: httpx2.AsyncClient, provider: TestProvider
) -> None:
    provider.receiver.respond(DISCOVERY, lambda _: Reply(500, {"error": "down"}))
    start = await client.get("/signin/oidc")
    assert start.status_code == 502
    assert "Sign-in with Test IdP failed: the sign-in provider answered 500" in start.text
    assert "ordermill_oidc" not in start.cookies


def test_the_client_secret_never_reaches_the_log(
    settings: Settings, provider: TestProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    with logging_restored():
        configure_logging_for(settings)
        structlog.get_logger("test").warning(
            "provider call", body=f"client_secret={provider.client_secret}&code=x"
        )
        flush_logs()
    text = capsys.readouterr().err
    assert "provider call" in text
    assert provider.client_secret not in text
