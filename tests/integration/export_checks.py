"""Helpers for the export suites: an order whose item files an https receiver serves, and the
checks that its production package is whole, wherever the blob store keeps it."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from typing import Any

import httpx2
import pypdf

from tests.integration.handler_flows import chain, post_flow, post_order, task
from tests.integration.matchers import INSTANT, SHA256_HEX, Matches
from tests.support.factories import order_doc
from tests.support.receiver import HttpsReceiver, Reply

MODEL = b"solid bracelet\n" + bytes(range(256)) * 40
TEXTURE = b"\x89PNG\r\n\x1a\n" + b"\x00" * 300
PACKAGE_TREE = [
    "WEB-1001-1/item-1/item-1a/texture.png",
    "WEB-1001-1/item-1/model.stl",
    "manifest.csv",
    "manifest.json",
    "production-sheet.pdf",
]


def serve_item_files(receiver: HttpsReceiver) -> None:
    receiver.script("/cdn/b.stl", Reply(200, MODEL, {"content-type": "model/stl"}))
    receiver.script("/cdn/wood.png", Reply(200, TEXTURE, {"content-type": "image/png"}))


def export_order(receiver: HttpsReceiver, space_key: str = "acme") -> dict[str, Any]:
    """The reference order; its item and nested item have files on the receiver."""
    order = order_doc(spaceKey=space_key)
    item = order["orderLines"][0]["items"][0]
    url = receiver.url("/cdn/b.stl")
    item["assets"][0].update(url=url, versions=[{"url": url, "date": "2026-09-23T14:23:17.580Z"}])
    nested_url = receiver.url("/cdn/wood.png")
    item["items"][0]["assets"] = [{"id": "texture", "url": nested_url, "isPublic": False}]
    return order


async def run_export(
    client: httpx2.AsyncClient, headers: dict[str, str], order: dict[str, Any]
) -> dict[str, Any]:
    """Post a one-task export flow and the order; the order once its flow ended."""
    from tests.integration.conftest import wait_for_status

    await post_flow(client, headers, chain(task("export", "export", {}, timeoutDuration=5000)))
    created = await post_order(client, headers, order)
    return await wait_for_status(client, headers, created["id"], "SUCCESS", "FAILURE")


async def list_assets(
    client: httpx2.AsyncClient, headers: dict[str, str], order_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"/api/orders/{order_id}/assets", headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


class _Int:
    """Equal to any int (ids and sizes that differ from run to run)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, int) and not isinstance(other, bool)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "INT"


INT: Any = _Int()


def expected_listing(presigned: Any = None) -> list[dict[str, Any]]:
    """GET /api/orders/{id}/assets after a default export."""

    def entry(asset_id: str, file_name: str, content_type: str) -> dict[str, Any]:
        return {
            "id": INT,
            "itemId": None,
            "assetId": asset_id,
            "fileName": file_name,
            "contentType": content_type,
            "size": INT,
            "sha256": SHA256_HEX,
            "isPublic": False,
            "source": "export",
            "taskKey": "export",
            "createdAt": INSTANT,
            "url": Matches(r"http://testserver/api/assets/\d+/download\?expires=\d+&signature=.+"),
            "urlExpiresAt": INSTANT,
            "presignedUrl": presigned,
        }

    return [
        entry("production-sheet", "production-sheet.pdf", "application/pdf"),
        entry("manifest-json", "manifest.json", "application/json"),
        entry("manifest-csv", "manifest.csv", "text/csv"),
        entry("package", "WEB-1001-package.zip", "application/zip"),
    ]


async def download(client: httpx2.AsyncClient, url: str, **kwargs: Any) -> httpx2.Response:
    response = await client.get(url, **kwargs)
    assert response.status_code == 200, response.text
    return response


async def check_package(
    client: httpx2.AsyncClient, headers: dict[str, str], order: dict[str, Any]
) -> dict[str, bytes]:
    """Download every file with the API key; check the sheet, the manifest and the ZIP."""
    files: dict[str, bytes] = {}
    for entry in await list_assets(client, headers, order["id"]):
        response = await download(client, f"/api/assets/{entry['id']}/download", headers=headers)
        assert response.headers["content-length"] == str(entry["size"])
        assert response.headers["content-type"].startswith(entry["contentType"])
        assert response.headers["content-disposition"] == (
            f"attachment; filename=\"{entry['fileName']}\"; filename*=UTF-8''{entry['fileName']}"
        )
        assert hashlib.sha256(response.content).hexdigest() == entry["sha256"]
        files[entry["fileName"]] = response.content

    text = pypdf.PdfReader(io.BytesIO(files["production-sheet.pdf"])).pages[0].extract_text()
    for expected in (order["id"], "WEB-1001", "WEB-1001-1", "Gent", "3dprint", "item-1a"):
        assert expected in text
    assert f"http://testserver/orders/{order['id']}" in text

    bundle = zipfile.ZipFile(io.BytesIO(files["WEB-1001-package.zip"]))
    assert sorted(bundle.namelist()) == PACKAGE_TREE
    assert bundle.read("WEB-1001-1/item-1/model.stl") == MODEL
    assert bundle.read("WEB-1001-1/item-1/item-1a/texture.png") == TEXTURE
    assert bundle.read("manifest.json") == files["manifest.json"]
    assert bundle.read("production-sheet.pdf") == files["production-sheet.pdf"]

    manifest = json.loads(files["manifest.json"])
    assert manifest["orderId"] == order["id"]
    for entry in manifest["files"]:
        data = bundle.read(entry["path"])
        assert (entry["size"], entry["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    rows = list(csv.DictReader(io.StringIO(files["manifest.csv"].decode())))
    assert [(r["path"], r["sha256"]) for r in rows] == [
        (e["path"], e["sha256"]) for e in manifest["files"]
    ]
    assert [e["path"] for e in manifest["files"]] == [
        "WEB-1001-1/item-1/model.stl",
        "WEB-1001-1/item-1/item-1a/texture.png",
        "production-sheet.pdf",
    ]
    return files
