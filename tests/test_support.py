"""The test infrastructure itself: PostgreSQL, the https receiver and the SMTP server are real."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import threading
from email.message import EmailMessage
from pathlib import Path

import httpx2
import psycopg
import pytest
import sqlalchemy

from tests.support.postgres import (
    PostgresServer,
    PostgresUnavailableError,
    find_pg_bin_dir,
    skip_or_fail,
)
from tests.support.receiver import (
    HttpsReceiver,
    LocalCA,
    ReceivedRequest,
    ReceiverProcess,
    Reply,
)
from tests.support.smtp import SmtpServer

# --- PostgreSQL ---------------------------------------------------------------------------------


def test_postgres_url_is_rewritten_per_database() -> None:
    """An external server's URL keeps credentials and host and swaps only the database."""
    server = PostgresServer.from_url("postgresql://app:s3cret@db.internal:6543/main")
    assert server.url("other") == "postgresql+psycopg://app:s3cret@db.internal:6543/other"
    assert server.url() == "postgresql+psycopg://app:s3cret@db.internal:6543/main"
    assert not server.managed


def test_postgres_url_must_be_postgresql() -> None:
    with pytest.raises(ValueError, match="not a postgresql URL"):
        PostgresServer.from_url("sqlite:///x.db")


def test_launch_without_binaries_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.support.postgres.find_pg_bin_dir", lambda: None)
    with pytest.raises(PostgresUnavailableError, match=r"no PostgreSQL server binaries \(initdb"):
        PostgresServer.launch()


def test_missing_postgres_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL unavailable: no binaries"):
        skip_or_fail(PostgresUnavailableError("no binaries"))


def test_missing_postgres_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required in CI"):
        skip_or_fail(PostgresUnavailableError("no binaries"))


@pytest.mark.postgres
def test_postgres_server_answers_select_1(postgres_server: PostgresServer) -> None:
    with psycopg.connect(postgres_server.conninfo()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert postgres_server.url().startswith("postgresql+psycopg://")
    if postgres_server.managed:
        assert postgres_server.pg_bin_dir == find_pg_bin_dir()


@pytest.mark.postgres
def test_postgres_url_works_with_sqlalchemy(postgres_url: str) -> None:
    engine = sqlalchemy.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            current = conn.execute(sqlalchemy.text("SELECT current_database()")).scalar_one()
        assert current == postgres_url.rsplit("/", 1)[-1]
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_create_database_gives_isolated_empty_databases(postgres_server: PostgresServer) -> None:
    first = postgres_server.create_database()
    second = postgres_server.create_database()
    first_name, second_name = first.rsplit("/", 1)[-1], second.rsplit("/", 1)[-1]
    try:
        with postgres_server.connect(first_name) as conn:
            conn.execute("CREATE TABLE orders (id int)")
        with postgres_server.connect(second_name) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchone()
        assert tables == (0,)
        # Creating a database of an existing name starts it afresh.
        postgres_server.create_database(first_name)
        with postgres_server.connect(first_name) as conn:
            assert conn.execute("SELECT to_regclass('orders')").fetchone() == (None,)
    finally:
        postgres_server.drop_database(first_name)
        postgres_server.drop_database(second_name)


@pytest.mark.postgres
def test_postgres_stop_and_start_keep_port_and_data(postgres_server: PostgresServer) -> None:
    """A stopped server refuses connections; started again it has the same port and data."""
    if not postgres_server.managed:
        pytest.skip("the server comes from ORDERMILL_TEST_POSTGRES_URL; it is not ours to stop")
    url = postgres_server.create_database()
    dbname = url.rsplit("/", 1)[-1]
    port = postgres_server.port
    with postgres_server.connect(dbname) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('before the stop')")
    survivor = postgres_server.connect(dbname)

    postgres_server.stop()
    try:
        assert not postgres_server.is_running
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(postgres_server.conninfo(dbname), connect_timeout=2).close()
        with pytest.raises(psycopg.OperationalError):
            survivor.execute("SELECT 1")
    finally:
        survivor.close()
        postgres_server.start()

    assert (postgres_server.port, postgres_server.is_running) == (port, True)
    with postgres_server.connect(dbname) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("before the stop",)]
    postgres_server.drop_database(dbname)


@pytest.mark.postgres
def test_postgres_survives_an_immediate_stop(postgres_server: PostgresServer) -> None:
    """`stop("immediate")` is a crash; the restart runs crash recovery and accepts connections."""
    if not postgres_server.managed:
        pytest.skip("the server comes from ORDERMILL_TEST_POSTGRES_URL; it is not ours to stop")
    postgres_server.stop("immediate")
    postgres_server.start()
    with postgres_server.connect() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.postgres
def test_postgres_restart_cuts_connections_and_keeps_port(postgres_server: PostgresServer) -> None:
    if not postgres_server.managed:
        pytest.skip("the server comes from ORDERMILL_TEST_POSTGRES_URL; it is not ours to stop")
    port = postgres_server.port
    with postgres_server.connect() as survivor:
        postgres_server.restart()
        with pytest.raises(psycopg.OperationalError):
            survivor.execute("SELECT 1")
    assert (postgres_server.port, postgres_server.is_running) == (port, True)
    with postgres_server.connect() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


# --- the https receiver ---------------------------------------------------------------------------


def client_for(receiver: HttpsReceiver, timeout: float = 5.0) -> httpx2.Client:
    return httpx2.Client(verify=receiver.ssl_context(), timeout=timeout, trust_env=False)


def test_receiver_answers_scripted_replies_in_order_then_repeats_the_last(
    https_receiver: HttpsReceiver,
) -> None:
    https_receiver.script(
        "/orders",
        [
            Reply(status=500, body="boom"),
            Reply(status=429, headers={"Retry-After": "3"}),
            Reply(status=201, body={"accepted": True}),
        ],
    )
    with client_for(https_receiver) as client:
        answers = [client.post(https_receiver.url("/orders"), json={"n": n}) for n in range(4)]

    assert [(r.status_code, r.content) for r in answers] == [
        (500, b"boom"),
        (429, b""),
        (201, b'{"accepted": true}'),
        (201, b'{"accepted": true}'),
    ]
    assert answers[1].headers["retry-after"] == "3"
    assert answers[2].headers["content-type"] == "application/json"
    assert [r.json() for r in https_receiver.wait_for(4)] == [{"n": n} for n in range(4)]


def test_receiver_responder_answers_from_the_request(https_receiver: HttpsReceiver) -> None:
    """A responder sees each request: here the first attempt gets 503, later ones 201."""

    def by_attempt(request: ReceivedRequest) -> Reply:
        first = request.headers.get("ordermill-attempt") == "1"
        return Reply(status=503) if first else Reply(status=201, body=request.json())

    https_receiver.respond("/orders", by_attempt)
    with client_for(https_receiver) as client:
        answers = [
            client.post(
                https_receiver.url("/orders"), json={"n": n}, headers={"ordermill-attempt": str(n)}
            )
            for n in (1, 2)
        ]
        other = client.post(https_receiver.url("/elsewhere"), content=b"x")
    assert [(r.status_code, r.content) for r in answers] == [(503, b""), (201, b'{"n": 2}')]
    assert other.status_code == 201


def test_receiver_reports_a_failing_responder_as_500_and_an_error(trust_ca: LocalCA) -> None:
    with HttpsReceiver(trust_ca) as receiver:
        receiver.respond("/orders", lambda request: Reply(status=int(request.body)))
        with client_for(receiver) as client:
            response = client.post(receiver.url("/orders"), content=b"not a status")
        assert response.status_code == 500
        assert [type(error) for error in receiver.errors] == [ValueError]


def test_receiver_answers_unscripted_paths_with_201_ok(https_receiver: HttpsReceiver) -> None:
    with client_for(https_receiver) as client:
        response = client.post(https_receiver.url("anything"), content=b"x")
    assert (response.status_code, response.json()) == (201, {"ok": True})


def test_receiver_records_requests_byte_for_byte(https_receiver: HttpsReceiver) -> None:
    body = b'{"order": {"title": "Caf\xc3\xa9"},  "raw": "\xff\xfe"}\r\n'
    with client_for(https_receiver) as client:
        client.post(
            https_receiver.url("/hook?x=1"),
            content=body,
            headers={"Webhook-Id": "msg_1", "X-Twice": "a"},
        )
        client.put(https_receiver.url("/hook"), content=b"")

    first, second = https_receiver.wait_for(2, path="/hook")
    assert (first.method, first.path, first.query, first.body) == ("POST", "/hook", "x=1", body)
    assert first.headers["webhook-id"] == "msg_1"
    assert first.headers["content-length"] == str(len(body))
    assert ("x-twice", "a") in first.raw_headers
    assert (second.method, second.body) == ("PUT", b"")
    assert first.received_at <= second.received_at


def test_receiver_is_only_trusted_with_the_test_ca(https_receiver: HttpsReceiver) -> None:
    """The TLS is real: a client with the system trust store rejects the certificate."""
    system_trust = ssl.create_default_context()
    with (
        httpx2.Client(verify=system_trust, trust_env=False) as client,
        pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get(https_receiver.url("/"))
    assert https_receiver.ca_pem_path.read_text().startswith("-----BEGIN CERTIFICATE-----")
    from_file = ssl.create_default_context(cafile=https_receiver.ca_pem_path)
    with httpx2.Client(verify=from_file, trust_env=False) as client:
        assert client.get(https_receiver.url("/")).status_code == 201


def test_receiver_runs_before_hooks_before_answering(https_receiver: HttpsReceiver) -> None:
    events: list[str] = []

    async def async_hook(record: ReceivedRequest) -> None:
        await asyncio.sleep(0)
        events.append(f"async hook saw {record.json()}")

    def sync_hook(record: ReceivedRequest) -> None:
        events.append(f"sync hook saw {record.json()}")

    https_receiver.script("/a", Reply(before=async_hook))
    https_receiver.script("/s", Reply(before=sync_hook))
    with client_for(https_receiver) as client:
        client.post(https_receiver.url("/a"), json=1)
        events.append("client got answer 1")
        client.post(https_receiver.url("/s"), json=2)
        events.append("client got answer 2")

    assert events == [
        "async hook saw 1",
        "client got answer 1",
        "sync hook saw 2",
        "client got answer 2",
    ]


def test_receiver_reports_failing_hooks_as_500_and_errors(trust_ca: LocalCA) -> None:
    def broken(record: ReceivedRequest) -> None:
        raise ValueError("no feedback today")

    with HttpsReceiver(trust_ca) as receiver:
        receiver.script("/x", Reply(before=broken))
        with client_for(receiver) as client:
            response = client.post(receiver.url("/x"))
    assert response.status_code == 500
    assert [repr(e) for e in receiver.errors] == ["ValueError('no feedback today')"]


def test_receiver_delay_makes_clients_time_out(https_receiver: HttpsReceiver) -> None:
    https_receiver.script("/slow", [Reply(delay=1.0), Reply()])
    with client_for(https_receiver, timeout=0.2) as client:
        with pytest.raises(httpx2.ReadTimeout):
            client.post(https_receiver.url("/slow"))
        assert client.post(https_receiver.url("/slow")).status_code == 201
    assert len(https_receiver.wait_for(2)) == 2


def test_receiver_wait_for_times_out_with_what_it_saw(https_receiver: HttpsReceiver) -> None:
    with client_for(https_receiver) as client:
        client.get(https_receiver.url("/one"))
    with pytest.raises(TimeoutError, match=r"1 of 2 requests .* saw \['GET /one'\]"):
        https_receiver.wait_for(2, timeout=0.05)
    https_receiver.clear()
    assert https_receiver.requests == []


def test_receiver_wait_for_wakes_on_arrival_from_another_thread(
    https_receiver: HttpsReceiver,
) -> None:
    def post_later() -> None:
        with client_for(https_receiver) as client:
            client.post(https_receiver.url("/bg"), content=b"late")

    thread = threading.Thread(target=post_later)
    thread.start()
    try:
        (record,) = https_receiver.wait_for(1, timeout=10)
    finally:
        thread.join(10)
    assert record.body == b"late"


def test_receiver_process_logs_deliveries(tmp_path: Path) -> None:
    with ReceiverProcess(tmp_path / "receiver", delay_ms=10) as process:
        body = b'{"order": {}, "context": {"deliveryId": "dlv_1"}}'
        trust = ssl.create_default_context(cafile=process.ca_pem_path)
        with httpx2.Client(verify=trust, trust_env=False) as client:
            response = client.post(
                process.url("/orders"), content=body, headers={"webhook-id": "msg_1"}
            )
        assert response.status_code == 201
        logged = process.deliveries()
    assert [(d["webhookId"], d["deliveryId"], d["path"]) for d in logged] == [
        ("msg_1", "dlv_1", "/orders")
    ]


# --- the SMTP server ------------------------------------------------------------------------------


def make_mail(subject: str = "Order WEB-1001") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "ordermill@example.com"
    message["To"] = "workshop@example.com"
    message["Subject"] = subject
    message.set_content("Please produce order WEB-1001.\n")
    return message


def send(
    server: SmtpServer,
    message: EmailMessage,
    *,
    login: tuple[str, str] | None = None,
    starttls: bool = True,
) -> None:
    """Send one message with the standard library's client, which has closed its socket when
    it returns. (An asyncio client's socket may still be closing when a test's event loop
    ends; the garbage collector then warns of it during whichever test runs at that moment.)"""
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        if starttls:
            client.starttls(context=server.ssl_context())
        if login is not None:
            client.login(*login)
        client.send_message(message)


def test_smtp_server_receives_over_starttls(smtp_server: SmtpServer) -> None:
    send(smtp_server, make_mail())

    (mail,) = smtp_server.wait_for(1)
    assert (mail.mail_from, mail.rcpt_tos, mail.tls) == (
        "ordermill@example.com",
        ["workshop@example.com"],
        True,
    )
    assert mail.message["Subject"] == "Order WEB-1001"
    assert mail.message.get_content() == "Please produce order WEB-1001.\n"
    assert b"Subject: Order WEB-1001" in mail.data


def test_smtp_server_scripted_451_then_accepts(smtp_server: SmtpServer) -> None:
    smtp_server.script("451 4.3.0 Try again later")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(smtp_server, make_mail())
    assert refused.value.smtp_code == 451

    send(smtp_server, make_mail())

    assert [m.reply[:3] for m in smtp_server.attempts] == ["451", "250"]
    assert len(smtp_server.messages) == 1


def test_smtp_server_scripted_550_is_permanent(smtp_server: SmtpServer) -> None:
    smtp_server.script("550 5.1.1 No such mailbox", count=2)
    for _ in range(2):
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(smtp_server, make_mail())
        assert refused.value.smtp_code == 550
    assert smtp_server.messages == []


def test_smtp_server_requires_starttls(smtp_server: SmtpServer) -> None:
    with pytest.raises(smtplib.SMTPSenderRefused, match="STARTTLS"):
        send(smtp_server, make_mail(), starttls=False)
    assert smtp_server.attempts == []


def test_smtp_server_checks_credentials(trust_ca: LocalCA) -> None:
    with SmtpServer(trust_ca, credentials=("mailer", "hunter2")) as server:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            send(server, make_mail(), login=("mailer", "wrong"))
        send(server, make_mail(), login=("mailer", "hunter2"))
        (mail,) = server.wait_for(1)
    assert mail.login == "mailer"
