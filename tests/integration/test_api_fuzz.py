"""schemathesis against the served OpenAPI document: generated requests to every operation of
a live server (uvicorn on 127.0.0.1, on SQLite and on PostgreSQL) find no server error and no
answer the document does not describe. The seed is fixed (derandomized) and the examples per
operation are bounded, so a run takes well under three minutes."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx2
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from ordermill.api.app import create_app
from ordermill.config import Settings
from tests.support.factories import flow_doc, order_doc

pytestmark = pytest.mark.slow

ADMIN_KEY = "admin-fuzz-key"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 25
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


class LiveApi:
    """ordermill's app served by uvicorn in a thread, with a space, a flow and an order."""

    def __init__(self, database_url: str, data_dir: Path) -> None:
        settings_ = Settings(
            database_url=database_url,
            admin_key=ADMIN_KEY,
            data_dir=data_dir / "data",
            public_url="http://127.0.0.1",
            poll_interval_seconds=0.05,
            max_body_bytes=64 * 1024,
        )
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(create_app(settings_), log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self.known: dict[str, list[str]] = {}
        self.serial = itertools.count()

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the API did not start within 20 s"
            time.sleep(0.02)
        self._seed()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)

    def _seed(self) -> None:
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        with httpx2.Client(base_url=self.url, headers=admin, timeout=10) as http:
            assert http.post("/api/spaces", json={"key": "acme"}).status_code == 201
            key = http.post("/api/spaces/acme/api-keys", json={"name": "fuzz"}).json()
            flow = flow_doc("https://example.invalid/orders")
            assert http.post("/api/flows", json={**flow, "spaceKey": "acme"}).status_code == 201
            order = http.post("/api/orders", json=order_doc(start=False)).json()
        self.known = {
            "key": ["made-to-order", "acme"],
            "order_id": [order["id"]],
            "task_key": ["task-1"],
            "number": ["1"],
            "key_id": [str(key["id"])],
        }

    def aim(self, case: Any) -> None:
        """Point a generated case at the seeded space, flow and order."""
        if case.path_parameters:
            case.path_parameters = {
                name: self.known[name][0] if name in self.known else value
                for name, value in case.path_parameters.items()
            }
        if isinstance(case.body, dict) and "flowKey" in case.body:
            case.body = {**case.body, "spaceKey": "acme", "flowKey": "made-to-order"}
        if isinstance(case.body, dict) and "stages" in case.body:
            case.body = {**case.body, "spaceKey": "acme", "key": f"fuzz-{next(self.serial)}"}


# schemathesis' own strategies draw from `random`, which this Hypothesis deprecates.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_no_server_errors_and_no_undocumented_answers(database_url: str, tmp_path: Path) -> None:
    api = LiveApi(database_url, tmp_path)
    api.start()
    try:
        schema = schemathesis.openapi.from_url(f"{api.url}/api/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 35
        failures: list[str] = []
        answers: Counter[tuple[str, int]] = Counter()
        started = time.monotonic()
        for operation in operations:
            for mode in MODES:
                failures.extend(fuzz(api, operation, mode, answers))
        elapsed = time.monotonic() - started
    finally:
        api.stop()
    assert failures == []
    assert elapsed < 180, f"the run took {elapsed:.0f} s"
    # The generated requests reached past the 404s: they created flows and orders and read them.
    assert answers["POST /api/flows", 201] > 0, answers
    assert answers["POST /api/orders", 201] + answers["POST /api/orders", 200] > 0, answers
    assert answers["GET /api/orders/{order_id}", 200] > 0, answers
    assert answers["POST /api/orders/{order_id}/cancel", 200] > 0, answers


def fuzz(
    api: LiveApi, operation: Any, mode: GenerationMode, answers: Counter[tuple[str, int]]
) -> list[str]:
    """Run one operation's generated cases; the failures found, one line each."""
    turns = itertools.cycle([True, False])
    failures: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        if next(turns):  # every other case names things that exist, to get past the 404s
            api.aim(case)
        try:
            response = case.call_and_validate(
                base_url=api.url,
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                checks=CHECKS,
                timeout=10,
            )
        except (AssertionError, FailureGroup) as exc:
            failures.append(f"{operation.label} ({mode.value}): {str(exc)[:2000]}")
        else:
            answers[operation.label, response.status_code] += 1

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise  # only an operation without inputs has no invalid request to make
    return failures
