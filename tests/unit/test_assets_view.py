"""merged_order_assets: the files an order gained, folded into the documented order shape."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ordermill.assets_view import iso_millis, merged_order_assets
from ordermill.links import LinkSigner
from tests.support.factories import order_doc

LINKS = LinkSigner("unit-secret", "https://om.example.com")
EXPIRES = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
AT = datetime(2026, 9, 24, 8, 30, 15, 123456, tzinfo=UTC)


def row(row_id: int, **values: Any) -> dict[str, Any]:
    """An order_assets row as storage returns it."""
    base: dict[str, Any] = {
        "id": row_id,
        "order_id": "ord_1",
        "item_id": None,
        "asset_id": "production-sheet",
        "url": None,
        "blob_key": None,
        "file_name": None,
        "content_type": None,
        "size": None,
        "sha256": None,
        "is_public": False,
        "source": "export",
        "task_key": "export",
        "created_at": AT,
    }
    base.update(values)
    return base


def signed(row_id: int) -> str:
    return LINKS.sign(f"/api/assets/{row_id}/download", EXPIRES)


def item(order: dict[str, Any], *path: int) -> dict[str, Any]:
    found: dict[str, Any] = order["orderLines"][0]
    for index in path:
        found = found["items"][index]
    return found


def test_without_rows_the_order_comes_back_equal_but_copied() -> None:
    order = order_doc()
    merged = merged_order_assets(order, [], LINKS, EXPIRES)
    assert merged == order
    assert merged is not order
    assert merged["orderLines"][0] is not order["orderLines"][0]


def test_the_input_order_is_never_changed() -> None:
    order = order_doc()
    before = copy.deepcopy(order)
    merged_order_assets(
        order,
        [row(1, item_id="item-1", asset_id="model", url="https://x.example/v2.stl"), row(2)],
        LINKS,
        EXPIRES,
    )
    assert order == before


def test_a_row_becomes_a_new_version_of_the_items_existing_asset() -> None:
    rows = [row(7, item_id="item-1", asset_id="model", url="https://x.example/v2.stl")]
    merged = merged_order_assets(order_doc(), rows, LINKS, EXPIRES)
    assert item(merged, 0)["assets"] == [
        {
            "id": "model",
            "url": "https://x.example/v2.stl",
            "isPublic": True,
            "versions": [
                {"url": "https://cdn.example.com/b.stl", "date": "2026-09-23T14:23:17.580Z"},
                {"url": "https://x.example/v2.stl", "date": "2026-09-24T08:30:15.123Z"},
            ],
        }
    ]


def test_a_nested_item_gets_a_new_asset_with_a_signed_link_to_stored_bytes() -> None:
    rows = [row(3, item_id="item-1a", asset_id="slice", blob_key="exports/ord_1/t/slice.gcode")]
    merged = merged_order_assets(order_doc(), rows, LINKS, EXPIRES)
    assert item(merged, 0, 0)["assets"] == [
        {
            "id": "slice",
            "url": signed(3),
            "isPublic": False,
            "versions": [{"url": signed(3), "date": "2026-09-24T08:30:15.123Z"}],
        }
    ]


def test_signed_links_point_at_the_download_route_and_verify() -> None:
    rows = [row(11, item_id="item-1", asset_id="model", blob_key="k/model.stl")]
    url = item(merged_order_assets(order_doc(), rows, LINKS, EXPIRES), 0)["assets"][0]["url"]
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "om.example.com",
        "/api/assets/11/download",
    )
    assert LINKS.verify(parts.path, query["expires"], query["signature"], EXPIRES)
    assert not LINKS.verify(
        parts.path, query["expires"], query["signature"], EXPIRES + timedelta(1)
    )


def test_items_are_found_at_any_depth() -> None:
    order = order_doc()
    deep = {"id": "deep", "data": {}, "tags": [], "items": [], "assets": [], "isAsset": False}
    item(order, 0, 0)["items"] = [
        {"id": "mid", "data": {}, "tags": [], "items": [deep], "assets": [], "isAsset": False}
    ]
    rows = [row(1, item_id="deep", asset_id="scan", url="https://x.example/scan.ply")]
    merged = merged_order_assets(order, rows, LINKS, EXPIRES)
    assert item(merged, 0, 0, 0, 0)["assets"][0]["url"] == "https://x.example/scan.ply"
    assert item(merged, 0, 0, 0)["assets"] == []


def test_versions_follow_the_row_ids_and_the_asset_url_is_the_latest() -> None:
    rows = [
        row(9, item_id="item-1", asset_id="model", url="https://x.example/v3.stl"),
        row(4, item_id="item-1", asset_id="model", url="https://x.example/v2.stl"),
    ]
    asset = item(merged_order_assets(order_doc(), rows, LINKS, EXPIRES), 0)["assets"][0]
    assert [v["url"] for v in asset["versions"]] == [
        "https://cdn.example.com/b.stl",
        "https://x.example/v2.stl",
        "https://x.example/v3.stl",
    ]
    assert asset["url"] == "https://x.example/v3.stl"


def test_order_level_files_go_to_an_export_item_on_every_line() -> None:
    order = order_doc()
    second = copy.deepcopy(order["orderLines"][0])
    second["orderId"] = "WEB-1001-2"
    order["orderLines"].append(second)
    rows = [
        row(1, asset_id="production-sheet", blob_key="exports/ord_1/export/production-sheet.pdf"),
        row(2, asset_id="package", blob_key="exports/ord_1/export/WEB-1001-package.zip"),
        row(5, asset_id="production-sheet", blob_key="exports/ord_1/export-2/production-sheet.pdf"),
    ]
    merged = merged_order_assets(order, rows, LINKS, EXPIRES)
    expected_item = {
        "id": "export",
        "data": {},
        "tags": ["export"],
        "items": [],
        "assets": [
            {
                "id": "production-sheet",
                "url": signed(5),
                "isPublic": False,
                "versions": [
                    {"url": signed(1), "date": "2026-09-24T08:30:15.123Z"},
                    {"url": signed(5), "date": "2026-09-24T08:30:15.123Z"},
                ],
            },
            {
                "id": "package",
                "url": signed(2),
                "isPublic": False,
                "versions": [{"url": signed(2), "date": "2026-09-24T08:30:15.123Z"}],
            },
        ],
        "isAsset": True,
    }
    for line in merged["orderLines"]:
        assert [i["id"] for i in line["items"]] == ["item-1", "export"]
        assert line["items"][-1] == expected_item


def test_a_row_for_an_item_the_order_lacks_goes_with_the_order_files() -> None:
    rows = [row(1, item_id="gone", asset_id="model", url="https://x.example/m.stl")]
    merged = merged_order_assets(order_doc(), rows, LINKS, EXPIRES)
    assert merged["orderLines"][0]["items"][-1]["assets"][0]["id"] == "model"


def test_rows_with_an_outside_url_keep_it_and_their_public_flag() -> None:
    rows = [
        row(1, item_id="item-1", asset_id="photo", url="https://x.example/p.jpg", is_public=True)
    ]
    photo = item(merged_order_assets(order_doc(), rows, LINKS, EXPIRES), 0)["assets"][1]
    assert (photo["url"], photo["isPublic"]) == ("https://x.example/p.jpg", True)


def test_rows_without_url_or_stored_bytes_are_skipped() -> None:
    assert merged_order_assets(order_doc(), [row(1)], LINKS, EXPIRES) == order_doc()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05.000Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 999999), "2026-01-02T03:04:05.999Z"),
        (
            datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            "2026-01-02T03:04:05.000Z",
        ),
        ("2026-01-02T03:04:05.5+00:00", "2026-01-02T03:04:05.500Z"),
    ],
)
def test_dates_are_iso_8601_utc_with_milliseconds_and_z(value: Any, expected: str) -> None:
    assert iso_millis(value) == expected
