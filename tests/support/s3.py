"""A real S3-compatible server for tests: moto's threaded S3 server on 127.0.0.1.

It speaks the S3 REST protocol over HTTP, so the blob store's boto3 client, its uploads,
downloads and presigned URLs go over a real socket. (Debian bookworm's rclone is 1.60, which
predates ``rclone serve s3``; moto comes from PyPI with the dev dependencies instead.)
Each test gets a bucket of its own on the one server of the session.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any, NoReturn

ACCESS_KEY = "ordermill-test"
SECRET_KEY = "ordermill-test-secret"


class S3Unavailable(RuntimeError):
    """The S3 test server could not be started (moto or Flask is missing)."""


def skip_or_fail(exc: S3Unavailable) -> NoReturn:
    """Skip a test that needs the S3 server — or fail it in CI (`CI=true`), where it must run."""
    import pytest

    if os.environ.get("CI") == "true":
        pytest.fail(f"the S3 test server is required in CI (CI=true): {exc}", pytrace=False)
    pytest.skip(f"S3 test server unavailable: {exc}")


@dataclass
class S3Server:
    """A started server; ``new_bucket()`` makes an empty bucket and returns its name."""

    endpoint_url: str
    _server: Any

    @classmethod
    def start(cls) -> S3Server:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            raise S3Unavailable(f"{exc}; install the dev dependencies (moto[s3], flask)") from exc
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        return cls(f"http://{host}:{port}", server)

    def client(self) -> Any:
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def new_bucket(self) -> str:
        name = f"exports-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self._server.stop()
