"""Blob stores: where ordermill keeps the bytes of the files it makes (exports).

A local directory by default (``ORDERMILL_DATA_DIR/blobs``); S3-compatible storage with the
``ordermill[s3]`` extra (``ORDERMILL_BLOB_STORE=s3``, see ``ordermill.blobs_s3``).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from ordermill.config import Settings
from ordermill.errors import ConfigurationError, NotFound
from ordermill.private import DIR_MODE, FILE_MODE, private_dir

CHUNK_BYTES = 256 * 1024

BlobSource = Path | bytes


@dataclass
class BlobStream:
    """An opened blob: its size, and its bytes in chunks (read lazily, in order)."""

    size: int
    chunks: AsyncIterator[bytes]


class BlobStore(Protocol):
    """Keeps files under slash-separated keys such as ``exports/ord_…/export/manifest.json``.

    Implementers must guarantee:
    - ``put`` replaces the file under a key whole: a reader sees the old bytes or the new ones,
      never a mix (a retried export overwrites its own files);
    - ``get`` and ``open_stream`` raise ``NotFound`` for a key that holds nothing;
    - blocking I/O runs off the event loop (``asyncio.to_thread``);
    - failures of the storage itself surface as ``OSError`` with a message that names the key.
    """

    async def put(self, key: str, source: BlobSource, content_type: str) -> None:
        """Store ``source`` (a file on disk, streamed, or bytes) under ``key``."""
        ...

    async def get(self, key: str) -> bytes:
        """The whole blob (for small files; downloads use ``open_stream``)."""
        ...

    async def open_stream(self, key: str) -> BlobStream:
        """Open the blob for streaming; raises ``NotFound`` at once when it is missing."""
        ...

    async def presign(self, key: str, expires_at: datetime) -> str | None:
        """A direct download URL valid until ``expires_at``, or None when the store has none."""
        ...


def check_key(key: str) -> str:
    """``key`` when it is a safe relative key; a ValueError naming the problem otherwise."""
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or "\x00" in key
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise ValueError(f"{key!r} is not a valid blob key (relative, '/'-separated, no '..')")
    return key


class LocalBlobStore:
    """Blobs as files under one directory; a key is a relative path inside it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_of(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    async def put(self, key: str, source: BlobSource, content_type: str) -> None:
        await asyncio.to_thread(self._put, self.path_of(key), source)

    def _put(self, target: Path, source: BlobSource) -> None:
        private_dir(self.root)
        target.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        # Write beside the target, then rename over it: readers never see half a file.
        partial = target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial")
        try:
            if isinstance(source, bytes):
                partial.write_bytes(source)
            else:
                shutil.copyfile(source, partial)
            partial.chmod(FILE_MODE)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)

    async def get(self, key: str) -> bytes:
        path = self.path_of(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise NotFound(f"the stored file {key!r} is missing from {self.root}") from exc

    async def open_stream(self, key: str) -> BlobStream:
        path = self.path_of(key)
        try:
            size = (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError as exc:
            raise NotFound(f"the stored file {key!r} is missing from {self.root}") from exc
        return BlobStream(size, self._chunks(path))

    @staticmethod
    async def _chunks(path: Path) -> AsyncIterator[bytes]:
        # Opened on first read, so a stream that is never read holds no file open.
        handle = await asyncio.to_thread(path.open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def presign(self, key: str, expires_at: datetime) -> str | None:
        return None


def build_blob_store(settings: Settings) -> BlobStore:
    """The blob store the settings choose (``ORDERMILL_BLOB_STORE``)."""
    if settings.blob_store == "local":
        return LocalBlobStore(settings.data_dir / "blobs")
    bucket, key_id, secret = (
        settings.s3_bucket,
        settings.s3_access_key_id,
        settings.s3_secret_access_key,
    )
    if not bucket or not key_id or secret is None or not secret.get_secret_value():
        missing = [
            name
            for name, value in (
                ("ORDERMILL_S3_BUCKET", bucket),
                ("ORDERMILL_S3_ACCESS_KEY_ID", key_id),
                ("ORDERMILL_S3_SECRET_ACCESS_KEY", secret and secret.get_secret_value()),
            )
            if not value
        ]
        raise ConfigurationError(
            f"ORDERMILL_BLOB_STORE=s3 needs {', '.join(missing)} to be set"
            " (and ORDERMILL_S3_ENDPOINT_URL for storage other than AWS)"
        )
    from ordermill.blobs_s3 import S3BlobStore

    return S3BlobStore(
        bucket=bucket,
        endpoint_url=settings.s3_endpoint_url,
        access_key_id=key_id,
        secret_access_key=secret.get_secret_value(),
        region=settings.s3_region,
    )
