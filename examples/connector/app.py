"""An example ordermill connector: save each order and its files, then report back.

POST /orders receives an order from a ``consume-rest-api`` task. We verify its signature,
answer 201 at once, and then, in the background, write the order's JSON and download the
latest version of each asset into ``ORDERS_DIR/<thirdPartyOrderId>/``, and tell ordermill
how it went by POSTing feedback to the order's ``updateUrl``.

The same endpoint handles what else ordermill sends:

- a subscription's event (``event`` beside ``order``, no ``updateUrl``): appended to
  ``ORDERS_DIR/<thirdPartyOrderId>/events.jsonl``, no feedback;
- a failure stage's task (``context.trigger``): the trigger is saved as ``failed.json``;
- a task sent again after an amendment (``context.amendment``): ``order.json`` is rewritten
  with the amended order and the amendment saved as ``amendment-<revision>.json``.

Members it does not know are ignored, as ordermill may add more.

Run it:  CONNECTOR_SECRET=whsec_… ORDERS_DIR=./orders uvicorn app:app  (see README.md)
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ordermill.connector import (
    Asset,
    ConnectorRequest,
    FeedbackError,
    FeedbackStatus,
    PayloadError,
    SignatureError,
    send_feedback,
    verify,
)

log = logging.getLogger("example-connector")

MAX_BODY_BYTES = 5 * 1024 * 1024  # an order is JSON; its files come by URL
MAX_ASSET_BYTES = int(os.environ.get("MAX_ASSET_BYTES", 200 * 1024 * 1024))
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=300, sock_connect=10)


class DownloadFailed(Exception):
    """An asset could not be downloaded."""


def safe_name(text: str, default: str = "file") -> str:
    """``text`` as a harmless file name: no slashes, no "..", nothing hidden."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).lstrip(".")
    return name[:120] or default


def problem(status: int, title: str, detail: str) -> JSONResponse:
    """An RFC 9457 problem answer; ordermill shows it on the task."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


async def receive_order(request: Request) -> JSONResponse:
    state = request.app.state
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return problem(413, "Too large", f"orders are limited to {MAX_BODY_BYTES} bytes")
    try:
        order_request = verify(bytes(body), request.headers, state.secrets)
    except SignatureError as exc:
        # Not provably from ordermill: do nothing with it.
        return problem(401, "Invalid signature", exc.message)
    except PayloadError as exc:
        return problem(400, "Invalid order", exc.message)
    delivery_id = order_request.delivery_id
    # ordermill sends the same delivery again when it missed our answer (a timeout, a dropped
    # connection). The webhook-id stays the same, so we do the work once and answer 2xx again.
    # This set is lost on restart and grows forever: in production, insert the id into a
    # table with a unique key (in the same transaction as the order) and treat a conflict
    # as "already have it".
    if delivery_id in state.seen:
        return JSONResponse({"received": delivery_id, "duplicate": True}, status_code=200)
    state.seen.add(delivery_id)
    if order_request.event is not None:
        await record_event(state, order_request)
        return JSONResponse({"received": delivery_id}, status_code=200)
    log.info("order %s received (%s)", order_request.order.third_party_order_id, delivery_id)
    # The background task runs after the answer is sent, so ordermill is not kept waiting.
    # If this process dies before it finishes, nothing reports back: ordermill's feedback
    # timeout then marks the task timed out. A durable queue avoids that in production.
    task = BackgroundTask(process_order, state, order_request)
    return JSONResponse({"received": delivery_id}, status_code=201, background=task)


def folder_of(state: Any, request: ConnectorRequest) -> Path:
    return Path(state.orders_dir) / safe_name(request.order.third_party_order_id, "order")


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False), "utf-8")


async def record_event(state: Any, request: ConnectorRequest) -> None:
    """A subscription's event: note it beside the order (one JSON line per event)."""
    folder = folder_of(state, request)
    line = json.dumps(request.event, ensure_ascii=False) + "\n"

    def append() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "events.jsonl").open("a", encoding="utf-8") as out:
            out.write(line)

    await asyncio.to_thread(append)


async def process_order(state: Any, request: ConnectorRequest) -> None:
    order = request.order
    folder = folder_of(state, request)
    context = request.context
    try:
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(write_json, folder / "order.json", request.raw["order"])
        if context.trigger is not None:
            await asyncio.to_thread(write_json, folder / "failed.json", context.trigger)
        if context.amendment is not None:
            name = f"amendment-{safe_name(str(context.amendment.get('revision')))}.json"
            await asyncio.to_thread(write_json, folder / name, context.amendment)
        files = [await download(state.session, asset, folder) for asset in order.all_assets()]
    except (DownloadFailed, OSError) as exc:
        log.warning("order %s failed: %s", order.third_party_order_id, exc)
        await report(state, request, "failure", str(exc), None)
        return
    data = {"folder": str(folder), "files": files}
    await report(state, request, "success", f"Saved the order and {len(files)} file(s).", data)


async def download(session: aiohttp.ClientSession, asset: Asset, folder: Path) -> str:
    """Save the latest version of ``asset`` in ``folder``; return the file name."""
    url = asset.download_url
    suffix = Path(urlsplit(url).path).suffix
    name = safe_name(asset.id) + (suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,10}", suffix) else "")
    target, partial = folder / name, folder / (name + ".part")
    size = 0
    try:
        async with session.get(url, timeout=DOWNLOAD_TIMEOUT) as response:
            if response.status != 200:
                raise DownloadFailed(f"asset {asset.id}: {url} answered {response.status}")
            with partial.open("wb") as out:
                async for chunk in response.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if size > MAX_ASSET_BYTES:
                        raise DownloadFailed(f"asset {asset.id} is over {MAX_ASSET_BYTES} bytes")
                    out.write(chunk)
    except (aiohttp.ClientError, TimeoutError) as exc:
        partial.unlink(missing_ok=True)
        raise DownloadFailed(f"asset {asset.id}: could not download {url}: {exc}") from exc
    except DownloadFailed:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return name


async def report(
    state: Any,
    request: ConnectorRequest,
    status: FeedbackStatus,
    message: str,
    data: dict[str, Any] | None,
) -> None:
    if request.order.update_url is None:
        return
    try:
        await send_feedback(
            request.order.update_url,
            status,
            message=message,
            data=data,
            secret=state.secrets,
            session=state.session,
        )
    except FeedbackError as exc:
        log.error("feedback for %s was not delivered: %s", request.delivery_id, exc)


def create_app(secret: str | None = None, orders_dir: Path | None = None) -> Starlette:
    """The connector app. Without arguments it reads CONNECTOR_SECRET and ORDERS_DIR."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        configured = secret or os.environ.get("CONNECTOR_SECRET")
        if not configured:
            raise RuntimeError("set CONNECTOR_SECRET to the space's signing secret (whsec_…)")
        # A comma-separated list accepts the old and the new secret during a rotation.
        app.state.secrets = [part.strip() for part in configured.split(",") if part.strip()]
        app.state.orders_dir = orders_dir or Path(os.environ.get("ORDERS_DIR", "orders"))
        app.state.seen = set()
        async with aiohttp.ClientSession() as session:
            app.state.session = session
            yield

    return Starlette(routes=[Route("/orders", receive_order, methods=["POST"])], lifespan=lifespan)


app = create_app()
