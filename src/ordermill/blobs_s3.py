"""The S3-compatible blob store (AWS S3, MinIO, Ceph, rclone, …), from the ``ordermill[s3]`` extra.

boto3 is synchronous, so every call runs in ``asyncio.to_thread``; one client is shared by all
threads (boto3 clients are thread-safe, sessions are not).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from ordermill.blobs import CHUNK_BYTES, BlobSource, BlobStream, check_key
from ordermill.errors import ConfigurationError, NotFound

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ConfigurationError(
        "ORDERMILL_BLOB_STORE=s3 needs boto3: install ordermill with the s3 extra "
        "(pip install 'ordermill[s3]')"
    ) from exc

T = TypeVar("T")
MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404"})


class S3BlobStore:
    """Blobs as objects of one bucket; the blob key is the object key."""

    def __init__(
        self,
        *,
        bucket: str,
        access_key_id: str,
        secret_access_key: str,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        self.bucket = bucket
        config = Config(
            # Servers other than AWS rarely resolve bucket sub-domains; paths work everywhere.
            s3={"addressing_style": "path"} if endpoint_url else {},
            signature_version="s3v4",
            # Checksums on every request (botocore's newer default) trip many S3-compatible servers.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard", "max_attempts": 3},
        )
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region or "us-east-1",
            config=config,
        )

    async def _call(self, operation: str, key: str, call: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(call)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in MISSING_CODES:
                raise NotFound(
                    f"the stored file {key!r} is missing from bucket {self.bucket!r}"
                ) from exc
            raise OSError(
                f"S3 {operation} of {key!r} in bucket {self.bucket!r} failed: {exc}"
            ) from exc
        except BotoCoreError as exc:
            raise OSError(
                f"S3 {operation} of {key!r} in bucket {self.bucket!r} failed: {exc}"
            ) from exc

    async def put(self, key: str, source: BlobSource, content_type: str) -> None:
        check_key(key)
        if isinstance(source, bytes):
            await self._call(
                "upload",
                key,
                lambda: self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=source, ContentType=content_type
                ),
            )
            return
        # upload_file switches to a multipart upload for big files and streams from disk.
        path = str(Path(source))
        await self._call(
            "upload",
            key,
            lambda: self._client.upload_file(
                path, self.bucket, key, ExtraArgs={"ContentType": content_type}
            ),
        )

    async def get(self, key: str) -> bytes:
        check_key(key)

        def read() -> bytes:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                data: bytes = body.read()
                return data
            finally:
                body.close()

        return await self._call("download", key, read)

    async def open_stream(self, key: str) -> BlobStream:
        check_key(key)
        response = await self._call(
            "download", key, lambda: self._client.get_object(Bucket=self.bucket, Key=key)
        )
        return BlobStream(int(response["ContentLength"]), self._chunks(key, response["Body"]))

    async def _chunks(self, key: str, body: Any) -> AsyncIterator[bytes]:
        try:
            while chunk := await self._call("download", key, lambda: body.read(CHUNK_BYTES)):
                yield chunk
        finally:
            await asyncio.to_thread(body.close)

    async def presign(self, key: str, expires_at: datetime) -> str | None:
        check_key(key)
        seconds = max(1, int((expires_at - datetime.now(UTC)).total_seconds()))
        url: str = await self._call(
            "presign",
            key,
            lambda: self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=seconds
            ),
        )
        return url
