"""export and downloads with the S3 blob store, against a real S3-compatible server."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest

from ordermill.blobs_s3 import S3BlobStore
from ordermill.config import Settings
from ordermill.errors import NotFound
from tests.integration.export_checks import (
    check_package,
    expected_listing,
    export_order,
    list_assets,
    run_export,
    serve_item_files,
)
from tests.integration.matchers import Matches
from tests.support.receiver import HttpsReceiver
from tests.support.s3 import ACCESS_KEY, SECRET_KEY, S3Server, S3Unavailable, skip_or_fail


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    try:
        server = S3Server.start()
    except S3Unavailable as exc:
        skip_or_fail(exc)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: where the bytes go does not depend on the database (test_export.py runs
    the same checks on both databases with the local store)."""
    return f"sqlite+aiosqlite:///{tmp_path}/ordermill.db"


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings], https_receiver: HttpsReceiver, s3_server: S3Server
) -> Settings:
    """Settings that keep blobs in a fresh bucket of the S3 server."""
    return make_settings(
        connector_ca_file=https_receiver.ca_pem_path,
        blob_store="s3",
        s3_endpoint_url=s3_server.endpoint_url,
        s3_bucket=s3_server.new_bucket(),
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=SECRET_KEY,
    )


def store_of(server: S3Server, bucket: str) -> S3BlobStore:
    return S3BlobStore(
        bucket=bucket,
        endpoint_url=server.endpoint_url,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
    )


async def test_an_export_on_s3_stores_its_files_as_objects_with_presigned_links(
    client: httpx2.AsyncClient,
    acme: dict[str, str],
    https_receiver: HttpsReceiver,
    s3_server: S3Server,
    settings: Settings,
) -> None:
    serve_item_files(https_receiver)
    order = await run_export(client, acme, export_order(https_receiver))
    assert order["status"] == "SUCCESS", order["tasks"]
    listing = await list_assets(client, acme, order["id"])
    presigned = Matches(
        rf"{s3_server.endpoint_url}/{settings.s3_bucket}/exports/{order['id']}/export/.+"
        r"X-Amz-Signature=[0-9a-f]{64}.*"
    )
    assert listing == expected_listing(presigned)

    files = await check_package(client, acme, order)

    objects = s3_server.client().list_objects_v2(Bucket=settings.s3_bucket)["Contents"]
    assert sorted(o["Key"] for o in objects) == [
        f"exports/{order['id']}/export/{name}"
        for name in (
            "WEB-1001-package.zip",
            "manifest.csv",
            "manifest.json",
            "production-sheet.pdf",
        )
    ]
    async with httpx2.AsyncClient() as outside:
        for entry in listing:
            response = await outside.get(entry["presignedUrl"])
            assert response.status_code == 200
            assert response.content == files[entry["fileName"]]
    signed = await client.get(listing[0]["url"])
    assert hashlib.sha256(signed.content).hexdigest() == listing[0]["sha256"]


async def test_the_s3_store_round_trips_streams_and_reports_missing_keys(
    s3_server: S3Server, tmp_path: Path
) -> None:
    store = store_of(s3_server, s3_server.new_bucket())
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 4096)
    await store.put("a/small.json", b'{"a": 1}', "application/json")
    await store.put("a/big.bin", big, "application/octet-stream")
    assert await store.get("a/small.json") == b'{"a": 1}'
    stream = await store.open_stream("a/big.bin")
    assert stream.size == big.stat().st_size
    assert b"".join([chunk async for chunk in stream.chunks]) == big.read_bytes()
    with pytest.raises(NotFound, match="'a/none' is missing from bucket"):
        await store.get("a/none")
    with pytest.raises(NotFound):
        await store.open_stream("a/none")
    url = await store.presign("a/small.json", datetime.now(UTC) + timedelta(minutes=5))
    async with httpx2.AsyncClient() as outside:
        assert (await outside.get(url or "")).content == b'{"a": 1}'


async def test_a_missing_bucket_is_an_os_error_that_names_it(s3_server: S3Server) -> None:
    store = store_of(s3_server, "no-such-bucket")
    with pytest.raises(OSError, match="S3 upload of 'k' in bucket 'no-such-bucket' failed"):
        await store.put("k", b"x", "text/plain")
