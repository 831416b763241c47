"""The export handler with a local blob store and no network: formats, layout, idempotency."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pypdf
import pytest
from pydantic import ValidationError

from ordermill.blobs import LocalBlobStore
from ordermill.errors import PermanentError
from ordermill.handlers.base import Succeeded, TaskContext
from ordermill.handlers.export import Export, ExportPayload
from tests.support.factories import order_doc

NOW = datetime(2026, 9, 24, 8, 0, tzinfo=UTC)


def offline_order() -> dict[str, Any]:
    """The reference order, its item file stored with ordermill instead of on a CDN."""
    order = order_doc()
    order["orderLines"][0]["items"][0]["assets"] = []
    return order


def context(order: dict[str, Any], formats: list[str] | None = None, **extra: Any) -> TaskContext:
    payload = ExportPayload() if formats is None else ExportPayload(formats=formats)  # type: ignore[arg-type]
    values: dict[str, Any] = {
        "order_id": "ord_1",
        "space_key": "acme",
        "flow_key": "made-to-order",
        "flow_version": 1,
        "stage_key": "stage-1",
        "task_key": "export",
        "attempt": 1,
        "delivery_id": "dlv_1",
        "delivery_epoch": NOW,
        "update_url": "http://om.test/api/feedback/x",
        "order": order,
        "payload": payload,
        "timeout_seconds": 5.0,
        "now": NOW,
        "assets": (
            {
                "id": 1,
                "item_id": "item-1",
                "asset_id": "model",
                "url": None,
                "blob_key": "uploads/model.stl",
                "file_name": "model.stl",
            },
        ),
    }
    values.update(extra)
    return TaskContext(**values)


@pytest.fixture
async def store(tmp_path: Path) -> LocalBlobStore:
    blobs = LocalBlobStore(tmp_path / "blobs")
    await blobs.put("uploads/model.stl", b"solid bracelet", "model/stl")
    return blobs


async def run(store: LocalBlobStore, tmp_path: Path, ctx: TaskContext, **options: Any) -> Succeeded:
    handler = Export(store, public_url="http://om.test/", work_dir=tmp_path / "tmp", **options)
    try:
        outcome = await handler.run(ctx)
    finally:
        await handler.close()
    assert isinstance(outcome, Succeeded)
    return outcome


async def test_all_formats_are_stored_under_keys_of_the_order_and_task(
    store: LocalBlobStore, tmp_path: Path
) -> None:
    outcome = await run(store, tmp_path, context(offline_order()))
    assert [(a.asset_id, a.blob_key, a.content_type) for a in outcome.assets] == [
        ("production-sheet", "exports/ord_1/export/production-sheet.pdf", "application/pdf"),
        ("manifest-json", "exports/ord_1/export/manifest.json", "application/json"),
        ("manifest-csv", "exports/ord_1/export/manifest.csv", "text/csv"),
        ("package", "exports/ord_1/export/WEB-1001-package.zip", "application/zip"),
    ]
    assert all(a.source == "export" and a.item_id is None for a in outcome.assets)
    bundle = zipfile.ZipFile(
        io.BytesIO(await store.get("exports/ord_1/export/WEB-1001-package.zip"))
    )
    assert sorted(bundle.namelist()) == [
        "WEB-1001-1/item-1/model.stl",
        "manifest.csv",
        "manifest.json",
        "production-sheet.pdf",
    ]
    assert bundle.read("WEB-1001-1/item-1/model.stl") == b"solid bracelet"
    manifest = json.loads(await store.get("exports/ord_1/export/manifest.json"))
    assert [f["path"] for f in manifest["files"]] == [
        "WEB-1001-1/item-1/model.stl",
        "production-sheet.pdf",
    ]
    assert list((tmp_path / "tmp").iterdir()) == []  # the work folder is cleaned up


async def test_the_sheet_names_the_order_and_links_to_its_page(
    store: LocalBlobStore, tmp_path: Path
) -> None:
    await run(store, tmp_path, context(offline_order(), ["pdf"]))
    pdf = pypdf.PdfReader(io.BytesIO(await store.get("exports/ord_1/export/production-sheet.pdf")))
    text = pdf.pages[0].extract_text()
    for expected in ("ord_1", "WEB-1001", "WEB-1001-1", "item-1a", "3dprint", "size: M", "Gent"):
        assert expected in text
    assert "http://om.test/orders/ord_1" in text


async def test_formats_choose_the_files_and_pdf_alone_fetches_nothing(tmp_path: Path) -> None:
    empty = LocalBlobStore(tmp_path / "blobs")  # the item's stored file is absent: never read
    outcome = await run(empty, tmp_path, context(offline_order(), ["pdf"]))
    assert [a.file_name for a in outcome.assets] == ["production-sheet.pdf"]
    with pytest.raises(PermanentError, match=r"asset 'model' of item 'item-1'.*is missing"):
        await run(empty, tmp_path, context(offline_order(), ["manifest"]))


async def test_a_retried_export_overwrites_its_own_files(
    store: LocalBlobStore, tmp_path: Path
) -> None:
    first = await run(store, tmp_path, context(offline_order()))
    again = await run(store, tmp_path, context(offline_order(), attempt=2))
    assert again.assets == first.assets  # the same keys, the same bytes
    assert sorted(p.name for p in (tmp_path / "blobs/exports/ord_1/export").iterdir()) == [
        "WEB-1001-package.zip",
        "manifest.csv",
        "manifest.json",
        "production-sheet.pdf",
    ]


async def test_an_item_file_past_the_file_limit_fails_the_export(
    store: LocalBlobStore, tmp_path: Path
) -> None:
    with pytest.raises(PermanentError, match="larger than the per-file limit of 4 bytes"):
        await run(store, tmp_path, context(offline_order()), max_file_bytes=4)


def test_the_payload_accepts_known_formats_once_each() -> None:
    assert ExportPayload.model_validate({}).formats == ["pdf", "manifest", "zip"]
    for bad in ({"formats": []}, {"formats": ["pdf", "pdf"]}, {"formats": ["docx"]}, {"x": 1}):
        with pytest.raises(ValidationError):
            ExportPayload.model_validate(bad)
