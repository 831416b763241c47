"""``export``: an order's production package — sheet, manifest and bundle — as stored assets.

The work happens in a temporary folder under ORDERMILL_DATA_DIR/tmp: item files stream there,
the sheet and the manifests are written beside them, the ZIP is built from disk, and each
chosen file is put into the blob store under ``exports/{order id}/{task key}/{file name}`` —
so a retried export overwrites its own files instead of piling up new ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ordermill.blobs import BlobStore
from ordermill.errors import NotFound, PermanentError, RetryableError
from ordermill.flows.model import RetryPolicy
from ordermill.flows.work import AssetRecord
from ordermill.handlers.base import Outcome, Succeeded, TaskContext
from ordermill.handlers.export.fetch import ByteBudget, GuardedFetcher, copy_blob
from ordermill.handlers.export.layout import (
    MANIFEST_CSV,
    MANIFEST_JSON,
    SHEET_NAME,
    PackageFile,
    export_outputs,
    manifest_csv,
    manifest_json,
    plan_item_files,
    safe_segment,
    write_zip,
)
from ordermill.handlers.export.sheet import SheetOrder, render_sheet
from ordermill.handlers.netguard import OutboundClient, parse_networks
from ordermill.private import private_dir

Format = Literal["pdf", "manifest", "zip"]
ALL_FORMATS: tuple[Format, ...] = ("pdf", "manifest", "zip")


class ExportPayload(BaseModel):
    """Payload of an ``export`` task definition."""

    model_config = ConfigDict(extra="forbid")

    formats: list[Format] = Field(
        default_factory=lambda: list(ALL_FORMATS),
        min_length=1,
        description=(
            "Which files to store: 'pdf' (the production sheet), 'manifest' (manifest.json and "
            "manifest.csv), 'zip' (the bundle of item files, sheet and manifest). Default: all."
        ),
    )

    @field_validator("formats")
    @classmethod
    def _unique(cls, formats: list[Format]) -> list[Format]:
        if len(set(formats)) != len(formats):
            raise ValueError("lists a format twice")
        return formats


def file_facts(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a file on disk (blocking: run in a thread)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    return path.stat().st_size, digest.hexdigest()


class Export:
    """Builds the production package of an order and stores it with the order's assets."""

    key: ClassVar[str] = "export"
    payload_model: ClassVar[type[BaseModel]] = ExportPayload
    default_timeout_ms: ClassVar[int] = 300_000
    default_retry: ClassVar[RetryPolicy] = RetryPolicy(max_attempts=3)

    def __init__(
        self,
        blobs: BlobStore,
        *,
        public_url: str,
        work_dir: Path,
        allow_networks: tuple[str, ...] = (),
        allow_http_hosts: tuple[str, ...] = (),
        ca_file: Path | None = None,
        max_file_bytes: int = 100 * 1024 * 1024,
        max_order_bytes: int = 1024 * 1024 * 1024,
        user_agent: str = "ordermill",
        client: OutboundClient | None = None,
    ) -> None:
        self.blobs = blobs
        self.public_url = public_url.rstrip("/")
        self.work_dir = work_dir
        self.allow_networks = parse_networks(allow_networks)
        self.allow_http_hosts = allow_http_hosts
        self.max_file_bytes = max_file_bytes
        self.max_order_bytes = max_order_bytes
        self.fetcher = GuardedFetcher(
            client or OutboundClient(ca_file=ca_file, user_agent=user_agent)
        )

    async def run(self, ctx: TaskContext) -> Outcome:
        formats = set(ctx.payload.formats)
        await asyncio.to_thread(private_dir, self.work_dir)
        work = Path(await asyncio.to_thread(tempfile.mkdtemp, "", "export-", self.work_dir))
        try:
            outputs = await self._build(ctx, formats, work)
            assets = await self._store(ctx, outputs)
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
        files = [{"assetId": a.asset_id, "fileName": a.file_name, "size": a.size} for a in assets]
        return Succeeded({"files": files}, assets=assets)

    async def _build(
        self, ctx: TaskContext, formats: set[str], work: Path
    ) -> list[tuple[str, str, Path, str]]:
        """The files to store, as (asset id, file name, path on disk, content type)."""
        package: list[PackageFile] = []
        if formats & {"manifest", "zip"}:
            package += await self._fetch_items(ctx, work / "package")
        sheet = work / SHEET_NAME
        if formats & {"pdf", "zip"}:
            order_url = f"{self.public_url}/orders/{ctx.order_id}"
            facts = SheetOrder(ctx.order_id, ctx.space_key, ctx.flow_key, order_url)
            pdf = await asyncio.to_thread(render_sheet, facts, ctx.order)
            await asyncio.to_thread(sheet.write_bytes, pdf)
            size, sha = await asyncio.to_thread(file_facts, sheet)
            package.append(PackageFile(SHEET_NAME, sheet, size, sha, asset_id="production-sheet"))
        third_party_id = str(ctx.order.get("thirdPartyOrderId", ""))
        manifests = [(MANIFEST_JSON, work / MANIFEST_JSON), (MANIFEST_CSV, work / MANIFEST_CSV)]
        await asyncio.to_thread(
            manifests[0][1].write_bytes, manifest_json(ctx.order_id, third_party_id, package)
        )
        await asyncio.to_thread(manifests[1][1].write_bytes, manifest_csv(package))
        bundle = work / "bundle.zip"
        if "zip" in formats:
            members = [(f.path, f.local) for f in package] + manifests
            await asyncio.to_thread(write_zip, bundle, members)
        on_disk = {SHEET_NAME: sheet, MANIFEST_JSON: manifests[0][1], MANIFEST_CSV: manifests[1][1]}
        return [
            (o.asset_id, o.file_name, on_disk.get(o.file_name, bundle), o.content_type)
            for o in export_outputs(sorted(formats), third_party_id, ctx.order_id)
        ]

    async def _fetch_items(self, ctx: TaskContext, root: Path) -> list[PackageFile]:
        budget = ByteBudget(self.max_file_bytes, self.max_order_bytes)
        allowed = self.allow_networks + parse_networks(ctx.allow_networks)
        http_hosts = (*self.allow_http_hosts, *ctx.allow_http_hosts)
        fetched: list[PackageFile] = []
        for planned in plan_item_files(ctx.order, ctx.assets):
            local = root.joinpath(*planned.path.split("/"))
            await asyncio.to_thread(local.parent.mkdir, parents=True, exist_ok=True)
            label = f"asset {planned.asset_id!r} of item {planned.item_id!r}"
            if planned.url is not None:
                size, sha = await self.fetcher.fetch(
                    planned.url,
                    local,
                    label=label,
                    budget=budget,
                    allowed=allowed,
                    allow_http_hosts=http_hosts,
                    seconds=ctx.timeout_seconds,
                )
            else:
                size, sha = await self._copy_stored(planned.blob_key or "", local, label, budget)
            fetched.append(
                PackageFile(
                    planned.path,
                    local,
                    size,
                    sha,
                    planned.line_id,
                    planned.item_id,
                    planned.asset_id,
                )
            )
        return fetched

    async def _copy_stored(
        self, key: str, local: Path, label: str, budget: ByteBudget
    ) -> tuple[int, str]:
        """An item file an earlier task stored with us (from the blob store, not over HTTP)."""
        try:
            return await copy_blob(self.blobs, key, local, label, budget)
        except NotFound as exc:
            raise PermanentError(f"{label}: {exc.message}") from exc
        except OSError as exc:
            raise RetryableError(f"{label}: reading it from the blob store failed: {exc}") from exc

    async def _store(
        self, ctx: TaskContext, outputs: list[tuple[str, str, Path, str]]
    ) -> tuple[AssetRecord, ...]:
        records = []
        for asset_id, file_name, path, content_type in outputs:
            size, sha = await asyncio.to_thread(file_facts, path)
            key = f"exports/{ctx.order_id}/{safe_segment(ctx.task_key)}/{file_name}"
            try:
                await self.blobs.put(key, path, content_type)
            except OSError as exc:
                raise RetryableError(
                    f"could not store {file_name} in the blob store: {exc}"
                ) from exc
            records.append(
                AssetRecord(
                    asset_id=asset_id,
                    source="export",
                    blob_key=key,
                    file_name=file_name,
                    content_type=content_type,
                    size=size,
                    sha256=sha,
                )
            )
        return tuple(records)

    async def close(self) -> None:
        await self.fetcher.close()
