"""A real https connector receiver for tests: uvicorn on 127.0.0.1 with a trustme certificate.

In-process, `HttpsReceiver` runs in a background thread with its own event loop; each path can be
scripted with a list of `Reply`s, and every request is recorded byte for byte. As a separate
process (`python -m tests.support.receiver --port N --cert-dir DIR --delay-ms 50`) it is a slow,
always-201 receiver for chaos tests and benchmarks that logs each delivery to `DIR/requests.jsonl`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import selectors
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
import uvicorn

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
PROJECT_ROOT = Path(__file__).resolve().parents[2]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class LocalCA:
    """A session-wide trustme CA with one server certificate for 127.0.0.1 and localhost.

    `ca_pem_path` is what `ORDERMILL_CONNECTOR_CA_FILE` points at; `ssl_context()` is a client
    context that trusts only this CA.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA()
        self.ca_pem_path = self.directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_pem_path))
        self._server_cert = self.ca.issue_cert("127.0.0.1", "localhost")
        # One file with the key and the chain serves as both certfile and keyfile.
        self.server_pem_path = self.directory / "server.pem"
        self._server_cert.private_key_and_cert_chain_pem.write_to_path(str(self.server_pem_path))

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that verifies servers against this CA (and nothing else)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the host name
        self.ca.configure_trust(ctx)
        return ctx

    def server_ssl_context(self) -> ssl.SSLContext:
        """A server context presenting the 127.0.0.1/localhost certificate."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_cert.configure_cert(ctx)
        return ctx


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as it arrived: the exact body bytes, headers lower-cased."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    raw_headers: list[tuple[str, str]]  # as sent, in order, names lower-cased by the server
    body: bytes
    received_at: float  # time.monotonic() at arrival

    def json(self) -> Any:
        return json.loads(self.body)


BeforeHook = Callable[[ReceivedRequest], Awaitable[None] | None]
Responder = Callable[[ReceivedRequest], "Reply"]


@dataclass(frozen=True)
class Reply:
    """How the receiver answers one request.

    `body` may be bytes (sent as is), str (UTF-8 text) or a JSON value (dict/list). `before` runs
    before the answer is sent; a coroutine function runs on the receiver's loop, a plain callable
    in a worker thread. `delay` (seconds) is waited after `before`, before answering.
    """

    status: int = 201
    body: bytes | str | Mapping[str, Any] | list[Any] = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    before: BeforeHook | None = None

    def encode(self) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        content_type: str | None = None
        if isinstance(self.body, bytes):
            payload = self.body
        elif isinstance(self.body, str):
            payload, content_type = self.body.encode(), "text/plain; charset=utf-8"
        else:
            payload, content_type = json.dumps(self.body).encode(), "application/json"
        headers = {name.lower(): value for name, value in self.headers.items()}
        if content_type and "content-type" not in headers:
            headers["content-type"] = content_type
        headers["content-length"] = str(len(payload))
        return payload, [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


DEFAULT_REPLY = Reply(status=201, body={"ok": True})


class _Server(uvicorn.Server):
    """uvicorn that tells us when it listens (or failed to), without polling `started`."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self._on_started()


class HttpsReceiver:
    """A programmable https server on 127.0.0.1, run in a background thread.

    `script(path, replies)`: each request to `path` takes the next reply; the last one repeats.
    `respond(path, responder)`: each request to `path` gets `responder(request)`, for answers that
    depend on the request (its order, its attempt); it runs under the receiver's lock, so it must
    be quick and must not block. What it raises is collected in `errors` like a hook's.
    Unscripted paths answer 201 `{"ok": true}`. `requests` is a snapshot of everything received;
    `wait_for(n)` blocks until n requests arrived. Errors raised by `before` hooks and responders
    are collected in `errors` (the request gets a 500) and fail the test at fixture teardown.
    """

    def __init__(
        self,
        ca: LocalCA,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        default_reply: Reply = DEFAULT_REPLY,
        log_path: Path | None = None,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        self.ca = ca
        self._on_started = on_started
        self.host = host
        self._requested_port = port
        self.port = 0
        self.default_reply = default_reply
        self.log_path = log_path
        self._cond = threading.Condition()
        self._requests: list[ReceivedRequest] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._responders: dict[str, Responder] = {}
        self._errors: list[BaseException] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._thread_error: BaseException | None = None

    # --- addresses --------------------------------------------------------------------------

    @property
    def ca_pem_path(self) -> Path:
        return self.ca.ca_pem_path

    def ssl_context(self) -> ssl.SSLContext:
        return self.ca.ssl_context()

    @property
    def base_url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + _normalize(path)

    # --- programming and inspecting -------------------------------------------------------------

    def script(self, path: str, responses: Reply | Iterable[Reply]) -> None:
        """Answer the next requests to `path` with `responses`, in order; the last one repeats."""
        replies = [responses] if isinstance(responses, Reply) else list(responses)
        if not replies:
            raise ValueError("script() needs at least one Reply")
        with self._cond:
            self._scripts[_normalize(path)] = replies

    def respond(self, path: str, responder: Responder) -> None:
        """Answer every request to `path` with what `responder` returns for it."""
        with self._cond:
            self._responders[_normalize(path)] = responder

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._cond:
            return list(self._requests)

    def delivery_ids(self) -> list[tuple[str | None, str | None]]:
        """Per request: the body's `context.deliveryId` and the `webhook-id` header."""
        pairs = []
        for request in self.requests:
            delivery_id = None
            with contextlib.suppress(ValueError, KeyError, TypeError):
                delivery_id = request.json()["context"]["deliveryId"]
            pairs.append((delivery_id, request.headers.get("webhook-id")))
        return pairs

    @property
    def errors(self) -> list[BaseException]:
        with self._cond:
            return list(self._errors)

    def wait_for(
        self, count: int, timeout: float = 10.0, *, path: str | None = None
    ) -> list[ReceivedRequest]:
        """Block until `count` requests (to `path`, if given) arrived; return them in order."""
        wanted = None if path is None else _normalize(path)

        def matching() -> list[ReceivedRequest]:
            return [r for r in self._requests if wanted is None or r.path == wanted]

        with self._cond:
            if not self._cond.wait_for(lambda: len(matching()) >= count, timeout=timeout):
                seen = [f"{r.method} {r.path}" for r in self._requests]
                raise TimeoutError(
                    f"{len(matching())} of {count} requests"
                    f"{f' to {wanted}' if wanted else ''} arrived within {timeout} s; saw {seen}"
                )
            return matching()

    def clear(self) -> None:
        """Forget the recorded requests and errors (scripts stay)."""
        with self._cond:
            self._requests.clear()
            self._errors.clear()

    def reset(self) -> None:
        """Forget requests, errors and scripts."""
        with self._cond:
            self.clear()
            self._scripts.clear()
            self._responders.clear()

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> HttpsReceiver:
        sock = self._bind()
        self._server = self._make_server()
        self._thread = threading.Thread(
            target=self._run_in_thread,
            args=(sock,),
            name=f"https-receiver-{self.port}",
            daemon=True,
        )
        self._thread.start()
        if not self._started.wait(START_TIMEOUT):
            self._server.should_exit = True
            raise TimeoutError(f"the https receiver did not start within {START_TIMEOUT} s")
        if self._thread_error is not None:
            self._thread.join(STOP_TIMEOUT)
            raise RuntimeError("the https receiver failed to start") from self._thread_error
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(STOP_TIMEOUT)
        self._thread = None
        self._server = None

    def serve_forever(self) -> None:
        """Run in the calling (main) thread until SIGINT/SIGTERM — the subprocess mode."""
        sock = self._bind()
        self._server = self._make_server()
        self._server.run(sockets=[sock])

    def __enter__(self) -> HttpsReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _bind(self) -> socket.socket:
        # We bind the socket ourselves so port 0 works and the real port is known before serving.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._requested_port))
            sock.listen(128)
        except BaseException:
            sock.close()
            raise
        self.port = int(sock.getsockname()[1])
        return sock

    def _make_server(self) -> _Server:
        config = uvicorn.Config(
            self._app,
            host=self.host,
            port=self.port,
            ssl_certfile=str(self.ca.server_pem_path),
            ssl_keyfile=str(self.ca.server_pem_path),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            interface="asgi3",
            timeout_graceful_shutdown=2,
            server_header=False,
        )
        return _Server(config, on_started=self._announce_started)

    def _announce_started(self) -> None:
        self._started.set()
        if self._on_started is not None:
            self._on_started()

    def _run_in_thread(self, sock: socket.socket) -> None:
        assert self._server is not None
        try:
            asyncio.run(self._server.serve(sockets=[sock]))
        except BaseException as exc:  # reported to start(); a thread has nowhere else to raise
            self._thread_error = exc
        finally:
            sock.close()
            self._started.set()

    # --- the ASGI app -----------------------------------------------------------------------------

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        arrived = time.monotonic()
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        headers: dict[str, str] = {}
        for name, value in raw:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        record = ReceivedRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            headers=headers,
            raw_headers=raw,
            body=bytes(body),
            received_at=arrived,
        )
        reply = self._record(record)
        if self.log_path is not None:
            self._log(record)
        if reply.before is not None:
            try:
                await _call_hook(reply.before, record)
            except Exception as exc:
                with self._cond:
                    self._errors.append(exc)
                await _respond(send, Reply(status=500, body=f"before hook failed: {exc!r}"))
                return
        if reply.delay > 0:
            await asyncio.sleep(reply.delay)
        await _respond(send, reply)

    def _record(self, record: ReceivedRequest) -> Reply:
        with self._cond:
            self._requests.append(record)
            self._cond.notify_all()
            responder = self._responders.get(record.path)
            if responder is not None:
                try:
                    return responder(record)
                except Exception as exc:
                    self._errors.append(exc)
                    return Reply(status=500, body=f"responder failed: {exc!r}")
            script = self._scripts.get(record.path)
            if not script:
                return self.default_reply
            return script.pop(0) if len(script) > 1 else script[0]

    def _log(self, record: ReceivedRequest) -> None:
        assert self.log_path is not None
        delivery_id = None
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            delivery_id = record.json()["context"]["deliveryId"]
        line = {
            "webhookId": record.headers.get("webhook-id"),
            "deliveryId": delivery_id,
            "method": record.method,
            "path": record.path,
            "receivedAt": time.time(),
        }
        with self.log_path.open("a") as out:
            out.write(json.dumps(line) + "\n")


def _normalize(path: str) -> str:
    return path if path.startswith("/") else "/" + path


async def _call_hook(hook: BeforeHook, record: ReceivedRequest) -> None:
    if inspect.iscoroutinefunction(hook):
        await hook(record)
        return
    # A plain callable may block (a sync HTTP client posting feedback): keep it off the loop.
    result = await asyncio.to_thread(hook, record)
    if inspect.isawaitable(result):
        await result


async def _respond(send: Send, reply: Reply) -> None:
    payload, headers = reply.encode()
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


# --- the receiver as a separate process ---------------------------------------------------------


class ReceiverProcess:
    """`python -m tests.support.receiver` in a child process (for chaos tests and benchmarks)."""

    def __init__(self, cert_dir: Path, *, port: int = 0, delay_ms: int = 50) -> None:
        self.cert_dir = Path(cert_dir)
        self.requested_port = port
        self.delay_ms = delay_ms
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def ca_pem_path(self) -> Path:
        return self.cert_dir / "ca.pem"

    @property
    def log_path(self) -> Path:
        return self.cert_dir / "requests.jsonl"

    def url(self, path: str = "/") -> str:
        return f"https://127.0.0.1:{self.port}{_normalize(path)}"

    def deliveries(self) -> list[dict[str, Any]]:
        """What the receiver logged so far, one dict per request."""
        if not self.log_path.exists():
            return []
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def start(self, timeout: float = 30.0) -> ReceiverProcess:
        self.cert_dir.mkdir(parents=True, exist_ok=True)
        stderr_path = self.cert_dir / "receiver.stderr.log"
        # With `-m`, the working directory (the project root) makes `tests` importable.
        argv = [sys.executable, "-m", "tests.support.receiver", "--cert-dir", str(self.cert_dir)]
        argv += ["--port", str(self.requested_port), "--delay-ms", str(self.delay_ms)]
        with stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                argv, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=stderr
            )
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout)
        line = self.process.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise RuntimeError(
                f"the receiver process did not start within {timeout} s:\n"
                + stderr_path.read_text(errors="replace")
            )
        self.port = int(json.loads(line)["port"])
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def __enter__(self) -> ReceiverProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.receiver",
        description="A slow-on-purpose https receiver answering 201 and logging deliveries.",
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--cert-dir", type=Path, required=True, help="ca.pem and the log go here")
    parser.add_argument("--delay-ms", type=int, default=50, help="wait this long before answering")
    args = parser.parse_args(argv)

    ca = LocalCA(args.cert_dir)

    def announce() -> None:
        # One JSON line on stdout tells a parent process we listen, and where.
        ready = {"port": receiver.port, "caFile": str(ca.ca_pem_path)}
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()

    receiver = HttpsReceiver(
        ca,
        port=args.port,
        default_reply=Reply(status=201, body={"ok": True}, delay=args.delay_ms / 1000),
        log_path=args.cert_dir / "requests.jsonl",
        on_started=announce,
    )
    receiver.serve_forever()


if __name__ == "__main__":
    main()
