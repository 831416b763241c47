"""The production package's layout, manifest (JSON and CSV) and ZIP."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from ordermill.handlers.export.layout import (
    ItemFile,
    PackageFile,
    file_suffix,
    manifest_csv,
    manifest_json,
    plan_item_files,
    safe_segment,
    write_zip,
)
from tests.support.factories import order_doc


def asset(asset_id: str, url: str) -> dict[str, Any]:
    return {"id": asset_id, "url": url, "isPublic": True, "versions": [{"url": url, "date": "x"}]}


def test_item_files_are_laid_out_by_line_and_nested_item() -> None:
    order = order_doc()
    item_1a = order["orderLines"][0]["items"][0]["items"][0]
    item_1a["assets"] = [asset("texture", "https://cdn.example.com/t/wood%20grain.PNG?v=2")]
    assert plan_item_files(order, []) == [
        ItemFile(
            "WEB-1001-1/item-1/model.stl",
            "WEB-1001-1",
            "item-1",
            "model",
            url="https://cdn.example.com/b.stl",
        ),
        ItemFile(
            "WEB-1001-1/item-1/item-1a/texture.png",
            "WEB-1001-1",
            "item-1a",
            "texture",
            url="https://cdn.example.com/t/wood%20grain.PNG?v=2",
        ),
    ]


def test_the_newest_gained_version_replaces_the_body_url() -> None:
    rows = [
        {"id": 2, "item_id": "item-1", "asset_id": "model", "url": None, "blob_key": "k/new.stl"},
        {"id": 1, "item_id": "item-1", "asset_id": "model", "url": "https://x/old.stl"},
        {"id": 3, "item_id": "item-1", "asset_id": "notes", "url": "https://x/n.txt"},
        {"id": 4, "item_id": None, "asset_id": "package", "blob_key": "exports/p.zip"},
    ]
    planned = plan_item_files(order_doc(), rows)
    assert [(p.path, p.url, p.blob_key) for p in planned] == [
        ("WEB-1001-1/item-1/model.stl", None, "k/new.stl"),
        ("WEB-1001-1/item-1/notes.txt", "https://x/n.txt", None),
    ]


def test_clashing_names_get_a_number_and_odd_ids_become_safe_names() -> None:
    order = order_doc()
    line = order["orderLines"][0]
    line["orderId"] = "manifest.json"
    line["items"][0]["id"] = "../etc/passwd"
    line["items"][0]["assets"] = [
        asset("model", "https://x/a.stl"),
        asset("model!", "https://x/b.stl"),
        asset(".hidden", "https://x/c"),
    ]
    paths = [p.path for p in plan_item_files(order, [])]
    assert paths == [
        "manifest.json_/_etc_passwd/model.stl",
        "manifest.json_/_etc_passwd/model_.stl",
        "manifest.json_/_etc_passwd/hidden",
    ]
    dup = order_doc()
    dup["orderLines"][0]["items"][0]["assets"] = [
        asset("a b", "https://x/1.stl"),
        asset("a_b", "https://x/2.stl"),
    ]
    assert [p.path for p in plan_item_files(dup, [])] == [
        "WEB-1001-1/item-1/a_b.stl",
        "WEB-1001-1/item-1/a_b-2.stl",
    ]


def test_safe_segments_and_suffixes() -> None:
    assert safe_segment("WEB 1001/1") == "WEB_1001_1"
    assert safe_segment("...") == "_"
    assert file_suffix("https://x/a/model.STL?download=1") == ".stl"
    assert file_suffix("https://x/a/model") == ""
    assert file_suffix("report.final version") == ""
    assert file_suffix("sheet.pdf") == ".pdf"


def package_files(tmp_path: Path) -> list[PackageFile]:
    model = tmp_path / "model.stl"
    model.write_bytes(b"solid x")
    sheet = tmp_path / "sheet.pdf"
    sheet.write_bytes(b"%PDF-1.4")
    return [
        PackageFile(
            "WEB-1001-1/item-1/model.stl", model, 7, "ab" * 32, "WEB-1001-1", "item-1", "model"
        ),
        PackageFile("production-sheet.pdf", sheet, 8, "cd" * 32, asset_id="production-sheet"),
    ]


def test_the_json_manifest_lists_every_file_with_item_size_and_checksum(tmp_path: Path) -> None:
    document = json.loads(manifest_json("ord_1", "WEB-1001", package_files(tmp_path)))
    assert document == {
        "orderId": "ord_1",
        "thirdPartyOrderId": "WEB-1001",
        "files": [
            {
                "path": "WEB-1001-1/item-1/model.stl",
                "lineId": "WEB-1001-1",
                "itemId": "item-1",
                "assetId": "model",
                "size": 7,
                "sha256": "ab" * 32,
            },
            {
                "path": "production-sheet.pdf",
                "lineId": None,
                "itemId": None,
                "assetId": "production-sheet",
                "size": 8,
                "sha256": "cd" * 32,
            },
        ],
    }


def test_the_csv_manifest_has_a_header_and_a_row_per_file(tmp_path: Path) -> None:
    data = manifest_csv(package_files(tmp_path))
    assert data.startswith(b"path,lineId,itemId,assetId,size,sha256\r\n")
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows[1:] == [
        ["WEB-1001-1/item-1/model.stl", "WEB-1001-1", "item-1", "model", "7", "ab" * 32],
        ["production-sheet.pdf", "", "", "production-sheet", "8", "cd" * 32],
    ]


def test_the_zip_holds_the_files_under_their_package_paths(tmp_path: Path) -> None:
    files = package_files(tmp_path)
    target = tmp_path / "bundle.zip"
    write_zip(target, [(f.path, f.local) for f in files])
    with zipfile.ZipFile(target) as bundle:
        assert bundle.namelist() == ["WEB-1001-1/item-1/model.stl", "production-sheet.pdf"]
        assert bundle.read("WEB-1001-1/item-1/model.stl") == b"solid x"
        assert bundle.testzip() is None
