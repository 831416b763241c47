"""Answering an order later: POST feedback to the order's ``updateUrl``, with bounded retries.

ordermill answers 200 (accepted; the same final answer twice is also 200), 400 (malformed),
404 (unknown updateUrl) or 409 (the task already ended differently). We retry what may pass on
another try (connection errors, timeouts, 408, 425, 429, 5xx) and raise at once on the rest.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp

from ordermill import __version__
from ordermill.connector.errors import FeedbackFailed, FeedbackRejected
from ordermill.connector.signature import Secrets, sign_headers
from ordermill.flows.retry import FailureKind, classify_http_status, parse_retry_after

FeedbackStatus = Literal["success", "failure", "progress"]
STATUSES: frozenset[str] = frozenset({"success", "failure", "progress"})
RESPONSE_LIMIT = 64 * 1024
MAX_DELAY = 30.0  # seconds; also caps a Retry-After, so a call never parks for long


@dataclass(frozen=True)
class FeedbackResult:
    """ordermill accepted the feedback.

    Attributes:
        status_code: the HTTP status (200).
        body: ordermill's JSON answer (``{"accepted": true, "outcome": …}``), None if not JSON.
        attempts: how many POSTs it took (1 unless retried).
        message_id: the ``webhook-id`` sent with every attempt of this feedback message.
    """

    status_code: int
    body: Any
    attempts: int
    message_id: str


def _payload(
    status: str,
    message: str | None,
    data: Mapping[str, Any] | None,
    assets: Sequence[Mapping[str, Any]] | None,
) -> bytes:
    if status not in STATUSES:
        raise ValueError(f"status must be success, failure or progress, not {status!r}")
    document: dict[str, Any] = {"status": status}
    if message is not None:
        document["message"] = message
    if data is not None:
        document["data"] = dict(data)
    if assets is not None:
        document["assets"] = [dict(asset) for asset in assets]
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _delay(attempt: int, backoff: float, retry_after: str | None) -> float:
    # Full jitter keeps many connectors that failed together from retrying together.
    delay = min(backoff * 2.0 ** (attempt - 1), MAX_DELAY) * random.uniform(0.5, 1.0)
    asked = parse_retry_after(retry_after, datetime.now(UTC))
    if asked is not None:
        delay = max(delay, min(asked / 1000, MAX_DELAY))
    return delay


async def send_feedback(
    update_url: str,
    status: FeedbackStatus,
    *,
    message: str | None = None,
    data: Mapping[str, Any] | None = None,
    assets: Sequence[Mapping[str, Any]] | None = None,
    secret: Secrets | None = None,
    retries: int = 5,
    # A per-attempt bound: a caller's asyncio.timeout could only bound all attempts together.
    timeout: float = 10.0,  # noqa: ASYNC109
    backoff: float = 0.5,
    session: aiohttp.ClientSession | None = None,
) -> FeedbackResult:
    """POST ``{"status", "message", "data", "assets"}`` to ``update_url``.

    Args:
        update_url: ``order.update_url`` of the request you are answering.
        status: ``"success"`` or ``"failure"`` end the task; ``"progress"`` records a note
            (and counts as a heartbeat while ordermill waits).
        message: a short human-readable note, shown on the order's timeline.
        data: a JSON object kept as the task's result (e.g. your ERP's order number).
        assets: JSON objects describing files you produced.
        secret: the space's ``whsec_…`` secret; when given, the feedback is signed per
            Standard Webhooks so ordermill can tell it came from you.
        retries: further attempts after the first, for connection errors, timeouts, 408,
            425, 429 and 5xx. Waits grow from ``backoff`` seconds, doubling, jittered, each
            capped at 30 s (a ``Retry-After`` is honoured up to that cap).
        timeout: seconds for each attempt.
        session: an ``aiohttp.ClientSession`` to reuse (not closed); by default a short-lived
            one is made.

    Every attempt carries the same ``webhook-id`` (``message_id``), freshly made for this
    message, and is signed anew with the current time. Redirects are not followed.

    Raises:
        FeedbackRejected: ordermill answered 400, 404, 409 or another status that retrying
            cannot change (``status`` and ``body`` say why). Not retried.
        FeedbackFailed: the last of ``1 + retries`` attempts failed too.
        InvalidSecret: ``secret`` is not a ``whsec_…`` secret.
        ValueError: ``status`` is not one of the three, or ``retries``/``timeout`` are invalid.
    """
    if retries < 0 or timeout <= 0:
        raise ValueError("retries must be 0 or more, and timeout more than 0")
    body = _payload(status, message, data, assets)
    message_id = "msg_" + secrets.token_hex(16)
    own = session is None
    client = aiohttp.ClientSession() if session is None else session
    last_status: int | None = None
    last_problem = ""
    try:
        for attempt in range(1, retries + 2):
            headers = {
                "Content-Type": "application/json",
                "User-Agent": f"ordermill-connector/{__version__}",
                "webhook-id": message_id,
            }
            if secret is not None:
                headers.update(sign_headers(body, message_id, secret))
            retry_after: str | None = None
            try:
                async with (
                    asyncio.timeout(timeout),
                    client.post(
                        update_url, data=body, headers=headers, allow_redirects=False
                    ) as response,
                ):
                    text = (await response.content.read(RESPONSE_LIMIT)).decode(errors="replace")
                    code, retry_after = response.status, response.headers.get("Retry-After")
            except TimeoutError:
                last_status, last_problem = None, f"no answer within {timeout:g} s"
            except (aiohttp.ClientError, OSError) as exc:
                last_status, last_problem = None, f"connection failed: {exc}"
            else:
                kind = classify_http_status(code)
                if kind is None:
                    return FeedbackResult(code, _json(text), attempt, message_id)
                if kind is FailureKind.PERMANENT:
                    raise FeedbackRejected(code, text, _rejection(code, text))
                last_status, last_problem = code, f"answered {code}: {text[:200]}"
            if attempt <= retries:
                await asyncio.sleep(_delay(attempt, backoff, retry_after))
        raise FeedbackFailed(
            f"The feedback was not delivered after {retries + 1} attempt(s); the last one "
            f"{last_problem}.",
            attempts=retries + 1,
            status=last_status,
        )
    finally:
        if own:
            await client.close()


def send_feedback_sync(
    update_url: str,
    status: FeedbackStatus,
    *,
    message: str | None = None,
    data: Mapping[str, Any] | None = None,
    assets: Sequence[Mapping[str, Any]] | None = None,
    secret: Secrets | None = None,
    retries: int = 5,
    timeout: float = 10.0,
    backoff: float = 0.5,
) -> FeedbackResult:
    """``send_feedback`` for plain scripts and threads: runs it in its own event loop.

    Blocks until delivered or given up. Do not call it from async code (it would block the
    loop, and ``asyncio.run`` refuses to start inside a running loop): await
    ``send_feedback`` there instead.
    """
    return asyncio.run(
        send_feedback(
            update_url,
            status,
            message=message,
            data=data,
            assets=assets,
            secret=secret,
            retries=retries,
            timeout=timeout,
            backoff=backoff,
        )
    )


def _rejection(code: int, text: str) -> str | None:
    if 300 <= code < 400:
        return f"ordermill answered {code}, a redirect; redirects are not followed"
    return None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
