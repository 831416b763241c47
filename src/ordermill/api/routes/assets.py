"""Files an order gained (exports, connector assets): listing them and downloading stored ones.

A download needs an API key of the order's space (or the admin key) — or a signed, expiring
link instead, so connectors and people without a key can fetch the files they were sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from ordermill.api.auth import PrincipalDep, ServiceDep, authenticate
from ordermill.api.limits import BoundedRoute
from ordermill.api.schemas import RowId
from ordermill.assets_view import download_path, iso_millis
from ordermill.errors import Forbidden, NotFound
from ordermill.handlers.export.layout import safe_segment
from ordermill.service import Service
from ordermill.storage.assets import get_asset, order_assets

router = APIRouter(tags=["assets"], route_class=BoundedRoute)

LINK_LIFETIME = timedelta(hours=1)


async def asset_out(row: dict[str, Any], service: Service, expires_at: datetime) -> dict[str, Any]:
    """An asset as the API shows it, with a link to download it."""
    stored = row["blob_key"] is not None
    url = service.links.sign(download_path(row["id"]), expires_at) if stored else row["url"]
    presigned = await service.blobs.presign(row["blob_key"], expires_at) if stored else None
    return {
        "id": row["id"],
        "itemId": row["item_id"],
        "assetId": row["asset_id"],
        "fileName": row["file_name"],
        "contentType": row["content_type"],
        "size": row["size"],
        "sha256": row["sha256"],
        "isPublic": row["is_public"],
        "source": row["source"],
        "taskKey": row["task_key"],
        "createdAt": iso_millis(row["created_at"]),
        "url": url,
        "urlExpiresAt": iso_millis(expires_at) if stored else None,
        "presignedUrl": presigned,
    }


def content_disposition(file_name: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact name per RFC 6266/5987."""
    fallback = safe_segment(file_name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


@router.get("/api/orders/{order_id}/assets", summary="The files an order gained, with links")
async def list_assets(
    order_id: str, principal: PrincipalDep, service: ServiceDep
) -> dict[str, Any]:
    """Exports and assets sent back by connectors, oldest first. Files ordermill stores come
    with a download link signed for one hour (and a presigned storage URL on S3)."""
    await service.store.get_order(principal.space_key, order_id)
    expires_at = service.clock.now().replace(microsecond=0) + LINK_LIFETIME
    rows = await order_assets(service.db, order_id)
    return {"items": [await asset_out(row, service, expires_at) for row in rows]}


@router.get(
    "/api/assets/{asset_id}/download",
    summary="Download a stored file (API key, or a signed link)",
    response_class=StreamingResponse,
    responses={200: {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def download_asset(
    asset_id: RowId,
    request: Request,
    service: ServiceDep,
    expires: Annotated[str | None, Query(max_length=20)] = None,
    signature: Annotated[str | None, Query(max_length=200)] = None,
) -> StreamingResponse:
    """200 with the bytes; 401 without a key or link; 403 for a tampered or expired link;
    404 for an asset of another space, or one stored outside ordermill (use its ``url``)."""
    if expires is not None or signature is not None:
        path = download_path(asset_id)
        if not service.links.verify(path, expires, signature, service.clock.now()):
            raise Forbidden(
                "This download link is invalid or has expired; ask for a fresh one "
                "(GET /api/orders/{orderId}/assets) or send an API key."
            )
        space_key = None
    else:
        space_key = (await authenticate(request, service)).space_key
    row = await get_asset(service.db, asset_id, space_key)
    if row["blob_key"] is None:
        raise NotFound(
            f"asset {asset_id} is not stored by ordermill; download it from {row['url']}"
        )
    stream = await service.blobs.open_stream(row["blob_key"])
    file_name = row["file_name"] or row["blob_key"].rsplit("/", 1)[-1]
    return StreamingResponse(
        stream.chunks,
        media_type=row["content_type"] or "application/octet-stream",
        headers={
            "Content-Length": str(stream.size),
            "Content-Disposition": content_disposition(file_name),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )
