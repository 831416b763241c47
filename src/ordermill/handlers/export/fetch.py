"""Bringing an order's item files to disk: through the connectors' network guard, within limits.

Files stream to disk in chunks while their SHA-256 is computed; nothing holds a whole file in
memory. ``ByteBudget`` enforces ORDERMILL_EXPORT_MAX_FILE_BYTES and _MAX_ORDER_BYTES.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from ordermill.blobs import BlobStore
from ordermill.errors import AttemptTimeout, PermanentError, RetryableError, TargetRefused
from ordermill.flows.retry import FailureKind, classify_http_status
from ordermill.handlers.netguard import IPNetwork, OutboundClient, check_url

WRITE_BYTES = 1024 * 1024


class ByteBudget:
    """Counts fetched bytes against the per-file and per-order limits of an export."""

    def __init__(self, max_file_bytes: int, max_order_bytes: int) -> None:
        self.max_file_bytes = max_file_bytes
        self.max_order_bytes = max_order_bytes
        self.total = 0

    def check_declared(self, label: str, size: int | None) -> None:
        """Refuse a file up front when its announced size is already past a limit."""
        if size is not None:
            self._check(label, size, self.total + size)

    def count(self, label: str, file_bytes: int, added: int) -> None:
        """Record ``added`` more bytes of a file that now has ``file_bytes``."""
        self.total += added
        self._check(label, file_bytes, self.total)

    def _check(self, label: str, file_bytes: int, order_bytes: int) -> None:
        if file_bytes > self.max_file_bytes:
            raise PermanentError(
                f"{label} is larger than the per-file limit of {self.max_file_bytes} bytes; "
                "raise ORDERMILL_EXPORT_MAX_FILE_BYTES or leave the file out of the order"
            )
        if order_bytes > self.max_order_bytes:
            raise PermanentError(
                f"the order's files pass the per-order limit of {self.max_order_bytes} bytes "
                f"at {label}; raise ORDERMILL_EXPORT_MAX_ORDER_BYTES or split the order"
            )


class FileSink:
    """A file being written in large blocks off the event loop, hashed as it goes."""

    def __init__(self, handle: BinaryIO, label: str, budget: ByteBudget) -> None:
        self.handle, self.label, self.budget = handle, label, budget
        self.digest = hashlib.sha256()
        self.size = 0
        self._pending = bytearray()

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.budget.count(self.label, self.size, len(chunk))
        self.digest.update(chunk)
        self._pending += chunk
        if len(self._pending) >= WRITE_BYTES:
            await self.flush()

    async def flush(self) -> None:
        if self._pending:
            block, self._pending = bytes(self._pending), bytearray()
            await asyncio.to_thread(self.handle.write, block)


async def copy_to_file(
    chunks: AsyncIterator[bytes], target: Path, label: str, budget: ByteBudget
) -> tuple[int, str]:
    """Write ``chunks`` to ``target``; its size and SHA-256 (hex)."""
    handle = await asyncio.to_thread(target.open, "wb")
    try:
        sink = FileSink(handle, label, budget)
        async for chunk in chunks:
            await sink.write(chunk)
        await sink.flush()
    finally:
        await asyncio.to_thread(handle.close)
    return sink.size, sink.digest.hexdigest()


async def copy_blob(
    blobs: BlobStore, key: str, target: Path, label: str, budget: ByteBudget
) -> tuple[int, str]:
    """Copy a blob ordermill stores (a file an earlier task made) into the package."""
    stream = await blobs.open_stream(key)
    budget.check_declared(label, stream.size)
    return await copy_to_file(stream.chunks, target, label, budget)


class GuardedFetcher:
    """GETs outside files through the guarded outbound client: https, no redirects."""

    def __init__(self, client: OutboundClient) -> None:
        self.client = client

    async def fetch(
        self,
        url: str,
        target: Path,
        *,
        label: str,
        budget: ByteBudget,
        allowed: tuple[IPNetwork, ...],
        allow_http_hosts: tuple[str, ...],
        seconds: float,
    ) -> tuple[int, str]:
        """Download ``url`` to ``target``; its size and SHA-256. Raises HandlerErrors."""
        try:
            checked = check_url(url, allowed)
        except TargetRefused as exc:
            raise TargetRefused(f"{label}: {exc.message}") from exc
        if checked.scheme == "http" and checked.host not in allow_http_hosts:
            raise PermanentError(
                f"{label}: plain http is allowed only for the hosts named in "
                f"ORDERMILL_CONNECTOR_ALLOW_HTTP ({checked.host} is not); use https"
            )
        try:
            async with (
                asyncio.timeout(seconds),
                self.client.request("GET", checked, allowed=allowed, label=label) as response,
            ):
                self._check_status(label, response.status)
                budget.check_declared(label, response.content_length)
                return await copy_to_file(
                    response.content.iter_chunked(256 * 1024), target, label, budget
                )
        except TimeoutError as exc:
            raise AttemptTimeout(f"{label}: the download took longer than {seconds:g} s") from exc

    @staticmethod
    def _check_status(label: str, status: int) -> None:
        kind = classify_http_status(status)
        if kind is None:
            return
        message = f"{label}: the server answered {status}"
        if 300 <= status < 400:
            raise PermanentError(message + " (a redirect; redirects are not followed)")
        if kind is FailureKind.RETRYABLE:
            raise RetryableError(message, status_code=status)
        raise PermanentError(message, status_code=status)

    async def close(self) -> None:
        await self.client.close()
