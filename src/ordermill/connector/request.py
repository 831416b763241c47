"""Receiving an order: ``verify`` a signed connector request, or ``parse`` one as it is."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from ordermill.connector.errors import PayloadError
from ordermill.connector.models import ConnectorRequest, _Body
from ordermill.connector.signature import Secrets, check_signature

_SHOWN_PROBLEMS = 5


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secret: Secrets,
    *,
    tolerance: timedelta = timedelta(minutes=5),
) -> ConnectorRequest:
    """Check that ordermill sent this request, then parse it.

    Args:
        body: the request body exactly as received (bytes, before any JSON parsing: the
            signature covers these bytes).
        headers: the request headers; any mapping, names matched case-insensitively
            (Starlette's ``request.headers``, aiohttp's, Flask's, a plain dict).
        secret: the space's ``whsec_…`` signing secret, or several (accepting the old and the
            new one while you roll a secret over). Any one matching signature is enough.
        tolerance: how far ``webhook-timestamp`` may be from now, either way. Older requests
            are refused so a captured request cannot be replayed later; keep clocks in sync.

    Returns:
        The parsed request; ``delivery_id`` is the verified ``webhook-id``.

    Raises:
        SignatureError: a header is missing or malformed, no signature matches, or the
            timestamp is out of tolerance. Answer 401 and do nothing else.
        PayloadError: the request is genuine but the body is not the documented shape.
            Answer 400.
        InvalidSecret: ``secret`` is not a ``whsec_…`` secret (a configuration mistake).
    """
    delivery_id, timestamp = check_signature(body, headers, secret, tolerance=tolerance)
    return _build(body, headers, delivery_id, timestamp)


def parse(body: bytes, headers: Mapping[str, str] | None = None) -> ConnectorRequest:
    """Parse a connector request WITHOUT checking its signature (tests, local experiments).

    Never use this on requests from the network: anyone can POST an order to your endpoint.
    With ``headers``, ``delivery_id``, ``attempt`` and ``timestamp`` are read from them (still
    unverified); without, ``delivery_id`` is the body's ``context.deliveryId``.

    Raises:
        PayloadError: the body is not JSON or not the documented shape.
    """
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    timestamp: datetime | None = None
    stamp = lowered.get("webhook-timestamp", "")
    if stamp.isascii() and stamp.isdigit():
        timestamp = datetime.fromtimestamp(int(stamp), UTC)
    return _build(body, lowered, lowered.get("webhook-id") or None, timestamp)


def _build(
    body: bytes,
    headers: Mapping[str, str],
    delivery_id: str | None,
    timestamp: datetime | None,
) -> ConnectorRequest:
    try:
        document = json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise PayloadError(f"The body is not JSON: {exc}.") from exc
    if not isinstance(document, dict):
        raise PayloadError('The body is not a JSON object with "order" and "context".')
    try:
        parsed = _Body.model_validate(document)
    except ValidationError as exc:
        problems = [
            "/" + "/".join(str(part) for part in error["loc"]) + ": " + error["msg"]
            for error in exc.errors()
        ]
        more = len(problems) - _SHOWN_PROBLEMS
        shown = "; ".join(problems[:_SHOWN_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
        raise PayloadError(f"The body is not the documented order shape: {shown}.") from exc
    lowered = {name.lower(): value for name, value in headers.items()}
    attempt = lowered.get("ordermill-attempt", "")
    return ConnectorRequest(
        order=parsed.order,
        context=parsed.context,
        delivery_id=delivery_id or parsed.context.delivery_id,
        attempt=int(attempt) if attempt.isascii() and attempt.isdigit() else None,
        timestamp=timestamp,
        raw=document,
        event=parsed.event,
    )
