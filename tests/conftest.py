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

from ordermill.metrics import REGISTRY
from tests.support.postgres import PostgresServer, PostgresUnavailableError, skip_or_fail
from tests.support.receiver import HttpsReceiver, LocalCA
from tests.support.smtp import SmtpServer

# --- the lifecycle alarm ------------------------------------------------------------------------


def _reconciled() -> float:
    return REGISTRY.get_sample_value("ordermill_orders_reconciled_total") or 0.0


@pytest.fixture(autouse=True)
def no_order_is_reconciled(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every in-process engine leaves ``ordermill_orders_reconciled_total`` where it was.

    The reconcile pass moves on orders left IN_PROGRESS with no live work; that only happens
    when a write was lost, so any test that makes it count fails, unless it lost that write
    on purpose and says how many (``request.node.expected_reconciles``).
    """
    before = _reconciled()
    yield
    moved = _reconciled() - before
    expected = getattr(request.node, "expected_reconciles", 0)
    if moved != expected:
        pytest.fail(
            f"the reconcile pass moved {moved:g} order(s), expected {expected}: a lifecycle bug",
            pytrace=False,
        )


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
