"""Where each file goes in an order's production package, and the package's manifest.

The package is laid out by order line and item: ``WEB-1001-1/item-1/model.stl`` (nested items
nest their folders), with ``production-sheet.pdf``, ``manifest.json`` and ``manifest.csv`` at the
top. Everything here is pure, apart from ``write_zip``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

SHEET_NAME = "production-sheet.pdf"
MANIFEST_JSON = "manifest.json"
MANIFEST_CSV = "manifest.csv"
RESERVED_NAMES = frozenset({SHEET_NAME, MANIFEST_JSON, MANIFEST_CSV})
FIXED_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
MANIFEST_COLUMNS = ("path", "lineId", "itemId", "assetId", "size", "sha256")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,10}$")


@dataclass(frozen=True)
class ItemFile:
    """An item's file to bring into the package: from an outside URL or from our blob store."""

    path: str  # inside the package, e.g. WEB-1001-1/item-1/model.stl
    line_id: str
    item_id: str
    asset_id: str
    url: str | None = None
    blob_key: str | None = None


@dataclass(frozen=True)
class Output:
    """A file an export stores with the order's assets."""

    asset_id: str
    file_name: str
    content_type: str


def export_outputs(formats: Sequence[str], third_party_id: str, order_id: str) -> list[Output]:
    """The files an export of ``formats`` stores, in order: the sheet, the manifests, the zip."""
    outputs = []
    if "pdf" in formats:
        outputs.append(Output("production-sheet", SHEET_NAME, "application/pdf"))
    if "manifest" in formats:
        outputs.append(Output("manifest-json", MANIFEST_JSON, "application/json"))
        outputs.append(Output("manifest-csv", MANIFEST_CSV, "text/csv"))
    if "zip" in formats:
        name = f"{safe_segment(third_party_id or order_id)}-package.zip"
        outputs.append(Output("package", name, "application/zip"))
    return outputs


@dataclass(frozen=True)
class PackageFile:
    """A file of the package as it lies on disk, with its size and SHA-256."""

    path: str
    local: Path
    size: int
    sha256: str
    line_id: str | None = None
    item_id: str | None = None
    asset_id: str | None = None


def safe_segment(text: str) -> str:
    """A file or folder name from free text: ``[A-Za-z0-9._-]`` only, never hidden or empty."""
    cleaned = _UNSAFE.sub("_", text).lstrip(".")
    return cleaned[:120] or "_"


def file_suffix(name_or_url: str) -> str:
    """The file extension of a file name or URL path (``.stl``), or "" when it has none."""
    path = unquote(urlsplit(name_or_url).path) if "://" in name_or_url else name_or_url
    suffix = PurePosixPath(path).suffix
    return suffix.lower() if _SUFFIX.match(suffix) else ""


def _items_with_folders(items: Sequence[Any], folder: str) -> Iterator[tuple[dict[str, Any], str]]:
    for item in items:
        if isinstance(item, dict):
            here = f"{folder}/{safe_segment(str(item.get('id', '')))}"
            yield item, here
            yield from _items_with_folders(item.get("items") or [], here)


def latest_rows(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """The newest order_assets row per (item id, asset id); rows of the whole order are left out."""
    latest: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in sorted(rows, key=lambda r: int(r.get("id") or 0)):
        if row.get("item_id") and (row.get("url") or row.get("blob_key")):
            latest[(str(row["item_id"]), str(row["asset_id"]))] = row
    return latest


def plan_item_files(order: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[ItemFile]:
    """Every item asset of ``order`` (its latest version), placed in the package.

    An asset's newest version is the last one the order gained (``rows``, order_assets rows)
    when there is one, else the asset's ``url`` in the order body.
    """
    gained = latest_rows(rows)
    planned: list[ItemFile] = []
    taken: set[str] = set(RESERVED_NAMES)
    for line in order.get("orderLines") or []:
        line_id = str(line.get("orderId", ""))
        top = safe_segment(line_id)
        if top in RESERVED_NAMES:
            top += "_"
        for item, folder in _items_with_folders(line.get("items") or [], top):
            item_id = str(item.get("id", ""))
            sources: dict[str, tuple[str | None, str | None, str]] = {}
            for asset in item.get("assets") or []:
                url = asset.get("url") or ""
                sources[str(asset.get("id", ""))] = (url or None, None, url)
            for (row_item, asset_id), row in gained.items():
                if row_item == item_id:
                    named = row.get("file_name") or row.get("url") or row.get("blob_key") or ""
                    sources[asset_id] = (row.get("url"), row.get("blob_key"), named)
            for asset_id, (url, blob_key, named) in sources.items():
                if not url and not blob_key:
                    continue
                stem = f"{folder}/{safe_segment(asset_id)}"
                suffix = file_suffix(named)
                path, n = f"{stem}{suffix}", 1
                while path in taken:
                    n += 1
                    path = f"{stem}-{n}{suffix}"
                taken.add(path)
                planned.append(ItemFile(path, line_id, item_id, asset_id, url, blob_key))
    return planned


def manifest_entries(files: Sequence[PackageFile]) -> list[dict[str, Any]]:
    return [
        {
            "path": f.path,
            "lineId": f.line_id,
            "itemId": f.item_id,
            "assetId": f.asset_id,
            "size": f.size,
            "sha256": f.sha256,
        }
        for f in files
    ]


def manifest_json(order_id: str, third_party_order_id: str, files: Sequence[PackageFile]) -> bytes:
    """The manifest as JSON: the order's ids and every file of the package (but the manifests)."""
    document = {
        "orderId": order_id,
        "thirdPartyOrderId": third_party_order_id,
        "files": manifest_entries(files),
    }
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def manifest_csv(files: Sequence[PackageFile]) -> bytes:
    """The manifest as CSV (RFC 4180, a header row, UTF-8), one row per file."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(MANIFEST_COLUMNS)
    for entry in manifest_entries(files):
        writer.writerow(["" if entry[c] is None else entry[c] for c in MANIFEST_COLUMNS])
    return buffer.getvalue().encode()


def write_zip(target: Path, members: Sequence[tuple[str, Path]]) -> None:
    """Write the ZIP ``target`` from files on disk, each streamed in (blocking: run in a thread).

    Entries carry a fixed date, so the same files give the same ZIP, byte for byte.
    """
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as bundle:
        for name, source in members:
            info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.file_size = source.stat().st_size  # lets zipfile pick ZIP64 for big files
            with source.open("rb") as reader, bundle.open(info, "w") as writer:
                shutil.copyfileobj(reader, writer, 1024 * 1024)
