"""Fixtures shared by every test tier: real local servers instead of mocks.

- `postgres_server` (session): a throwaway PostgreSQL, or the one in ORDERMILL_TEST_POSTGRES_URL.
  Skips without one — except in CI (`CI=true`), where a missing database fails the run.
- `postgres_url` (function): a fresh, empty database on it, dropped afterwards.
- `trust_ca` (session): the test CA; `https_receiver` (function): a scriptable https connector.
- `smtp_server` (function): an SMTP server with STARTTLS.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import PostgresServer, PostgresUnavailableError, skip_or_fail
from tests.support.receiver import HttpsReceiver, LocalCA
from tests.support.smtp import SmtpServer

# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (see tests/support/postgres.py)."""
    try:
        server = PostgresServer.from_environment()
    except PostgresUnavailableError as exc:
        skip_or_fail(exc)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A SQLAlchemy URL of a fresh, empty database of its own, dropped after the test."""
    if not postgres_server.is_running:  # a chaos test that failed half-way left it stopped
        postgres_server.start()
    url = postgres_server.create_database()
    yield url
    dbname = url.rsplit("/", 1)[-1]
    if postgres_server.is_running:
        postgres_server.drop_database(dbname)


# --- TLS, https connector, SMTP -------------------------------------------------------------------


@pytest.fixture(scope="session")
def trust_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    """The session's CA; `trust_ca.ca_pem_path` is the file for ORDERMILL_CONNECTOR_CA_FILE."""
    return LocalCA(Path(tmp_path_factory.mktemp("ca")))


@pytest.fixture
def https_receiver(trust_ca: LocalCA) -> Iterator[HttpsReceiver]:
    """A started https receiver on 127.0.0.1; fails the test if one of its `before` hooks raised."""
    receiver = HttpsReceiver(trust_ca).start()
    try:
        yield receiver
    finally:
        receiver.stop()
    if receiver.errors:
        pytest.fail(
            f"https_receiver hooks or responders raised: {receiver.errors!r}", pytrace=False
        )


@pytest.fixture
def smtp_server(trust_ca: LocalCA) -> Iterator[SmtpServer]:
    """A started SMTP server on 127.0.0.1 that requires STARTTLS."""
    server = SmtpServer(trust_ca).start()
    try:
        yield server
    finally:
        server.stop()
