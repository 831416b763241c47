"""Files an order gained while running (exports, assets sent back by connectors)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ordermill.errors import NotFound
from ordermill.flows.work import AssetRecord
from ordermill.storage import tables as t
from ordermill.storage.advance import UnitOfWork
from ordermill.storage.database import Database


async def insert_assets(
    uow: UnitOfWork, order_id: str, task_key: str | None, assets: Iterable[AssetRecord]
) -> None:
    rows = [
        {
            "order_id": order_id,
            "item_id": asset.item_id,
            "asset_id": asset.asset_id,
            "url": asset.url,
            "blob_key": asset.blob_key,
            "file_name": asset.file_name,
            "content_type": asset.content_type,
            "size": asset.size,
            "sha256": asset.sha256,
            "is_public": asset.is_public,
            "source": asset.source,
            "task_key": task_key,
            "created_at": uow.now,
        }
        for asset in assets
    ]
    if rows:
        await uow.conn.execute(insert(t.order_assets), rows)


_ASSETS_OF_ORDERS = (
    select(t.order_assets)
    .where(t.order_assets.c.order_id.in_(bindparam("ids", expanding=True)))
    .order_by(t.order_assets.c.id)
)


async def assets_of_orders(
    conn: AsyncConnection, order_ids: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    """The order_assets rows of each order, oldest first."""
    ids = list(order_ids)
    found: dict[str, list[dict[str, Any]]] = {order_id: [] for order_id in ids}
    if not ids:
        return found
    rows = (await conn.execute(_ASSETS_OF_ORDERS, {"ids": ids})).all()
    for row in rows:
        found[row.order_id].append(dict(row._mapping))
    return found


async def order_assets(db: Database, order_id: str) -> list[dict[str, Any]]:
    """The order_assets rows of one order, oldest first."""
    async with db.read() as conn:
        return (await assets_of_orders(conn, [order_id]))[order_id]


async def get_asset(db: Database, asset_row_id: int, space_key: str | None) -> dict[str, Any]:
    """One order_assets row with its order's ``space_key``; ``space_key`` None reads any space."""
    query = (
        select(t.order_assets, t.orders.c.space_key)
        .join(t.orders, t.orders.c.id == t.order_assets.c.order_id)
        .where(t.order_assets.c.id == asset_row_id)
    )
    if space_key is not None:
        query = query.where(t.orders.c.space_key == space_key)
    async with db.read() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"asset {asset_row_id} does not exist")
    return dict(row._mapping)
