"""The order as connectors see it later in the flow: its items' assets with the versions it gained.

Files an order gains while it runs (exports, assets sent back with feedback) live in the
``order_assets`` table. ``merged_order_assets`` folds them into the documented order shape, so a
later ``consume-rest-api`` task can send them as asset versions:

- a row with an ``item_id`` becomes a new version of that item's asset ``asset_id`` — on every
  item with that id, at any depth — and the asset is created (``isPublic: false``) when the item
  has none by that id;
- a row without an ``item_id`` (an export of the whole order), or whose item is not in the order,
  becomes a version of an asset of a synthetic item appended to **every** order line:
  ``{"id": "export", "data": {}, "tags": ["export"], "items": [], "assets": [...],
  "isAsset": true}`` — the documented order shape has no order-level assets;
- versions are appended in the order the rows were stored (by row id); an asset's ``url`` is its
  latest version's URL; dates are ISO 8601 UTC with milliseconds and ``Z``;
- bytes ordermill stores get signed links to ``/api/assets/{row id}/download`` valid until
  ``expires_at``; rows that point at an outside URL keep it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ordermill.links import LinkSigner

EXPORT_ITEM_ID = "export"


def download_path(row_id: int) -> str:
    """The path of a stored asset's download route (what its signed links sign)."""
    return f"/api/assets/{row_id}/download"


def iso_millis(value: datetime | str) -> str:
    """``2026-09-23T14:23:17.580Z``: UTC, milliseconds, ``Z``; naive datetimes count as UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def walk_items(items: Sequence[Any]) -> Iterator[dict[str, Any]]:
    """Every item of ``items`` and of their nested ``items``, depth first, in document order."""
    for item in items:
        if isinstance(item, dict):
            yield item
            yield from walk_items(item.get("items") or [])


def version_url(row: Mapping[str, Any], links: LinkSigner, expires_at: datetime) -> str | None:
    """Where a connector downloads the row's file: its outside URL or a signed link to us."""
    if row.get("url"):
        return str(row["url"])
    if row.get("blob_key") and row.get("id") is not None:
        return links.sign(download_path(int(row["id"])), expires_at)
    return None


def _add_version(assets: list[Any], row: Mapping[str, Any], url: str) -> None:
    asset_id = str(row["asset_id"])
    asset = next((a for a in assets if isinstance(a, dict) and a.get("id") == asset_id), None)
    if asset is None:
        asset = {
            "id": asset_id,
            "url": url,
            "isPublic": bool(row.get("url")) and bool(row.get("is_public")),
            "versions": [],
        }
        assets.append(asset)
    versions = asset.get("versions")
    if not isinstance(versions, list):
        versions = asset["versions"] = []
    versions.append({"url": url, "date": iso_millis(row["created_at"])})
    asset["url"] = url


def merged_order_assets(
    order: dict[str, Any],
    assets: Sequence[Mapping[str, Any]],
    links: LinkSigner,
    expires_at: datetime,
) -> dict[str, Any]:
    """A deep copy of ``order`` with ``assets`` (order_assets rows) merged in; see the module."""
    merged = copy.deepcopy(order)
    lines = [line for line in merged.get("orderLines") or [] if isinstance(line, dict)]
    items_by_id: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        for item in walk_items(line.get("items") or []):
            items_by_id.setdefault(str(item.get("id")), []).append(item)

    order_level: list[dict[str, Any]] = []
    for row in sorted(assets, key=lambda r: int(r.get("id") or 0)):
        url = version_url(row, links, expires_at)
        if url is None:
            continue
        targets = items_by_id.get(str(row["item_id"])) if row.get("item_id") else None
        if not targets:
            _add_version(order_level, row, url)
            continue
        for item in targets:
            if not isinstance(item.get("assets"), list):
                item["assets"] = []
            _add_version(item["assets"], row, url)

    if order_level:
        for line in lines:
            if not isinstance(line.get("items"), list):
                line["items"] = []
            line["items"].append(
                {
                    "id": EXPORT_ITEM_ID,
                    "data": {},
                    "tags": ["export"],
                    "items": [],
                    "assets": copy.deepcopy(order_level),
                    "isAsset": True,
                }
            )
    return merged
