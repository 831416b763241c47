"""The local blob store and the choice of store from settings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ordermill.blobs import LocalBlobStore, build_blob_store, check_key
from ordermill.config import Settings
from ordermill.errors import ConfigurationError, NotFound


async def read_all(store: LocalBlobStore, key: str) -> tuple[int, bytes]:
    stream = await store.open_stream(key)
    return stream.size, b"".join([chunk async for chunk in stream.chunks])


async def test_bytes_and_files_round_trip(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    await store.put("exports/ord_1/export/a.json", b'{"a": 1}', "application/json")
    source = tmp_path / "big.bin"
    source.write_bytes(b"\x00\x01" * 300_000)
    await store.put("exports/ord_1/export/big.bin", source, "application/octet-stream")
    assert await store.get("exports/ord_1/export/a.json") == b'{"a": 1}'
    assert await read_all(store, "exports/ord_1/export/big.bin") == (600_000, source.read_bytes())
    assert (tmp_path / "blobs/exports/ord_1/export/big.bin").is_file()


async def test_a_put_replaces_the_file_whole_and_leaves_no_partial_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    await store.put("k/f.txt", b"first version, longer", "text/plain")
    await store.put("k/f.txt", b"second", "text/plain")
    assert await store.get("k/f.txt") == b"second"
    assert [p.name for p in (tmp_path / "k").iterdir()] == ["f.txt"]


async def test_missing_keys_are_not_found(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(NotFound, match="'nope/x' is missing"):
        await store.get("nope/x")
    with pytest.raises(NotFound):
        await store.open_stream("nope/x")


async def test_local_blobs_have_no_presigned_url(tmp_path: Path) -> None:
    assert await LocalBlobStore(tmp_path).presign("a/b", datetime.now(UTC)) is None


@pytest.mark.parametrize("key", ["", "/etc/passwd", "a/../b", "a//b", "./a", "a\\b", "a/\x00"])
def test_keys_that_could_leave_the_store_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="is not a valid blob key"):
        check_key(key)


def test_the_default_store_is_a_folder_in_the_data_dir(tmp_path: Path) -> None:
    store = build_blob_store(Settings(data_dir=tmp_path))
    assert isinstance(store, LocalBlobStore)
    assert store.root == tmp_path / "blobs"


def test_s3_without_its_settings_names_what_is_missing() -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_blob_store(Settings(blob_store="s3", s3_bucket="exports"))
    assert caught.value.message == (
        "ORDERMILL_BLOB_STORE=s3 needs ORDERMILL_S3_ACCESS_KEY_ID, ORDERMILL_S3_SECRET_ACCESS_KEY "
        "to be set (and ORDERMILL_S3_ENDPOINT_URL for storage other than AWS)"
    )
