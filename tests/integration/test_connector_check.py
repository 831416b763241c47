"""`ordermill connector check` against the example connector and a careless one; send_feedback.

The example connector (examples/connector/app.py) runs under uvicorn with a trustme
certificate on 127.0.0.1; the check runs as the real CLI in a subprocess.
"""

from __future__ import annotations

import asyncio
import base64
import http.server
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
import uvicorn

from ordermill.connector import (
    FeedbackFailed,
    FeedbackRejected,
    check_signature,
    send_feedback,
    send_feedback_sync,
    sign_headers,
)
from ordermill.connector.sample import encode, sample_request
from tests.support.receiver import PROJECT_ROOT, HttpsReceiver, LocalCA, ReceivedRequest, Reply

SECRET = "whsec_" + base64.b64encode(b"example-connector-secret-32bytes").decode()
ORDERMILL = PROJECT_ROOT / ".venv" / "bin" / "ordermill"
EXAMPLE = PROJECT_ROOT / "examples" / "connector" / "app.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_connector_app", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._on_started()


class AppServer:
    """An ASGI app under uvicorn (https, lifespan on) on 127.0.0.1 in a background thread."""

    def __init__(self, app: Any, ca: LocalCA) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.started = threading.Event()
        config = uvicorn.Config(
            app,
            ssl_certfile=str(ca.server_pem_path),
            ssl_keyfile=str(ca.server_pem_path),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        self.server = _Server(config, self.started.set)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self.server.serve(sockets=[self.sock]))
        finally:
            self.sock.close()
            self.started.set()

    def __enter__(self) -> AppServer:
        self.thread.start()
        assert self.started.wait(10), "the example connector did not start"
        assert self.server.started, "the example connector failed to start"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def example_connector(trust_ca: LocalCA, tmp_path: Path) -> Iterator[tuple[AppServer, Path]]:
    orders_dir = tmp_path / "orders"
    app = load_example().create_app(secret=SECRET, orders_dir=orders_dir)
    with AppServer(app, trust_ca) as server:
        yield server, orders_dir


def run_check(url: str, ca_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [str(ORDERMILL), "connector", "check", url, "--secret", SECRET]
    argv += ["--ca-file", str(ca_file), "--timeout", "10", *extra]
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)


def report_rows(stdout: str) -> dict[str, list[str]]:
    """The report table as {check: [expected, got, verdict, note]} (first line of each row)."""
    rows: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 5 and cells[0]:
            rows[cells[0]] = cells[1:]
    return rows


def test_check_passes_against_the_example_connector(
    example_connector: tuple[AppServer, Path], trust_ca: LocalCA
) -> None:
    server, orders_dir = example_connector
    url = f"https://127.0.0.1:{server.port}/orders"
    result = run_check(url, trust_ca.ca_pem_path, "--listen")
    assert result.returncode == 0, result.stdout + result.stderr
    verdicts = {check: row[2] for check, row in report_rows(result.stdout).items()}
    assert verdicts == {
        "signed order": "pass",
        "same delivery again": "pass",
        "no signature": "pass",
        "forged signature": "pass",
        "timestamp 1 h old": "pass",
        "unknown members": "pass",
        "feedback": "pass",
    }
    assert "PASS: every required check passed" in result.stdout
    event_folder, folder = sorted(orders_dir.iterdir(), key=lambda p: not p.name.endswith("-X"))
    (line,) = (event_folder / "events.jsonl").read_text().splitlines()
    assert json.loads(line)["type"] == "order.status"
    assert sorted(path.name for path in folder.iterdir()) == [
        "bracelet-stl.stl",
        "engraving-svg.svg",
        "order.json",
    ]
    assert b"facet normal" in (folder / "bracelet-stl.stl").read_bytes()  # the latest version
    assert json.loads((folder / "order.json").read_text())["thirdPartyOrderId"] == folder.name


def test_check_fails_a_receiver_that_accepts_everything(
    https_receiver: HttpsReceiver, trust_ca: LocalCA
) -> None:
    result = run_check(https_receiver.url("/orders"), trust_ca.ca_pem_path)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = report_rows(result.stdout)
    assert rows["forged signature"][2:] == ["fail", "accepted a request with a forged signature"]
    assert rows["no signature"][2] == "fail"
    assert rows["timestamp 1 h old"][2] == "warn"  # replay protection is advice, not a must
    assert "FAIL forged signature: accepted a request with a forged signature" in result.stdout
    assert len(https_receiver.requests) == 6


def test_check_fails_a_receiver_that_refuses_members_it_does_not_know(
    https_receiver: HttpsReceiver, trust_ca: LocalCA
) -> None:
    def strict(request: ReceivedRequest) -> Reply:
        body = request.json()
        known = {"orderId", "stageKey", "taskKey", "deliveryId"}
        if set(body) != {"order", "context"} or set(body["context"]) - known:
            return Reply(400, {"title": "unknown member"})
        return Reply(401)

    https_receiver.respond("/strict", strict)
    result = run_check(https_receiver.url("/strict"), trust_ca.ca_pem_path)
    assert result.returncode == 1
    expected, got, verdict, _ = report_rows(result.stdout)["unknown members"]
    assert (expected, verdict) == ("2xx", "fail")
    assert got.startswith("400")
    assert "ignore unknown members" in result.stdout


def test_check_reports_that_redirects_are_not_followed(
    https_receiver: HttpsReceiver, trust_ca: LocalCA
) -> None:
    https_receiver.script("/moved", Reply(302, headers={"Location": "https://example.com/"}))
    result = run_check(https_receiver.url("/moved"), trust_ca.ca_pem_path)
    assert result.returncode == 1
    expected, got, verdict, _ = report_rows(result.stdout)["signed order"]
    assert (expected, got, verdict) == ("2xx", "302 Found (redirects are not followed)", "fail")


@pytest.fixture
async def client(trust_ca: LocalCA) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session that trusts the test CA."""
    connector = aiohttp.TCPConnector(ssl=trust_ca.ssl_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def test_send_feedback_retries_5xx_with_one_webhook_id(
    https_receiver: HttpsReceiver, client: aiohttp.ClientSession
) -> None:
    https_receiver.script("/fb", [Reply(500), Reply(500), Reply(200, {"accepted": True})])
    url = https_receiver.url("/fb")
    result = await send_feedback(
        url, "success", message="done", secret=SECRET, backoff=0.01, session=client
    )
    requests = https_receiver.requests
    assert (result.attempts, result.status_code, result.body) == (3, 200, {"accepted": True})
    assert {r.headers["webhook-id"] for r in requests} == {result.message_id}
    assert [r.json() for r in requests] == [{"status": "success", "message": "done"}] * 3
    for request in requests:
        assert check_signature(request.body, request.headers, SECRET)[0] == result.message_id


async def test_send_feedback_does_not_retry_a_conflict(
    https_receiver: HttpsReceiver, client: aiohttp.ClientSession
) -> None:
    https_receiver.script("/fb", Reply(409, {"title": "the task already ended"}))
    with pytest.raises(FeedbackRejected) as caught:
        await send_feedback(https_receiver.url("/fb"), "failure", backoff=0.01, session=client)
    assert (caught.value.status, json.loads(caught.value.body)) == (
        409,
        {"title": "the task already ended"},
    )
    assert len(https_receiver.requests) == 1


async def test_send_feedback_gives_up_after_its_retries(
    https_receiver: HttpsReceiver, client: aiohttp.ClientSession
) -> None:
    https_receiver.script("/fb", Reply(503))
    with pytest.raises(FeedbackFailed) as caught:
        await send_feedback(
            https_receiver.url("/fb"), "progress", retries=2, backoff=0.01, session=client
        )
    assert (caught.value.attempts, caught.value.status) == (3, 503)
    assert len(https_receiver.requests) == 3


def test_send_feedback_sync_posts_from_plain_code() -> None:
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/fb"
            result = send_feedback_sync(url, "success", data={"erpId": "SO-42"})
        finally:
            server.shutdown()
            thread.join(5)
    assert (result.attempts, result.body) == (1, {})
    assert received == [{"status": "success", "data": {"erpId": "SO-42"}}]


NODE_CHECK = """
import { readFileSync } from "node:fs";
import { verifyOrdermill } from "%(module)s";
const { headers, secret } = JSON.parse(readFileSync(process.argv[1], "utf8"));
const body = readFileSync(process.argv[2]);
const results = [verifyOrdermill(body, headers, secret).order.thirdPartyOrderId];
const tampered = Buffer.concat([body, Buffer.from(" ")]);
for (const [bad, secretUsed] of [[tampered, secret], [body, "whsec_AAAA"]]) {
  try { verifyOrdermill(bad, headers, secretUsed); results.push("accepted"); }
  catch (error) { results.push(error.message); }
}
console.log(JSON.stringify(results));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_the_documented_node_snippet_verifies_ordermill_signatures(tmp_path: Path) -> None:
    """examples/connector/verify.mjs (shown in docs/connectors-python.md) agrees with Python."""
    other = "whsec_" + base64.b64encode(b"o" * 32).decode()
    document = sample_request(
        "https://x/u", "https://x/a", delivery_id="dlv_1", third_party_order_id="WEB-ü-1"
    )
    body = encode(document)
    (tmp_path / "body.bin").write_bytes(body)
    headers = sign_headers(body, "dlv_1", [other, SECRET])  # two signatures, as in a rotation
    (tmp_path / "input.json").write_text(json.dumps({"headers": headers, "secret": SECRET}))
    script = NODE_CHECK % {"module": (EXAMPLE.parent / "verify.mjs").as_uri()}
    argv = ["node", "--input-type=module", "-e", script]
    argv += [str(tmp_path / "input.json"), str(tmp_path / "body.bin")]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        "WEB-ü-1",
        "no signature matches the secret",
        "no signature matches the secret",
    ]


async def test_the_example_connector_keeps_a_failure_trigger_and_an_amendment(
    example_connector: tuple[AppServer, Path], client: aiohttp.ClientSession
) -> None:
    server, orders_dir = example_connector
    document = sample_request(
        "https://example.invalid/feedback",
        "https://example.invalid/files",
        delivery_id="dlv_trigger",
        third_party_order_id="AMEND-1",
    )
    document["order"]["updateUrl"] = None
    document["order"]["orderLines"] = []
    document["context"]["trigger"] = {"event": "order.failed", "taskKey": "task-1", "error": None}
    document["context"]["amendment"] = {"revision": 3, "changed": ["/data/giftNote"]}
    body = encode(document)
    async with client.post(
        f"https://127.0.0.1:{server.port}/orders",
        data=body,
        headers={"Content-Type": "application/json", **sign_headers(body, "dlv_trigger", SECRET)},
    ) as response:
        assert response.status == 201
    folder = orders_dir / "AMEND-1"
    for _ in range(100):
        if (folder / "amendment-3.json").exists():
            break
        await asyncio.sleep(0.05)
    assert json.loads((folder / "failed.json").read_text())["event"] == "order.failed"
    assert json.loads((folder / "amendment-3.json").read_text())["changed"] == ["/data/giftNote"]
    assert json.loads((folder / "order.json").read_text())["thirdPartyOrderId"] == "AMEND-1"
