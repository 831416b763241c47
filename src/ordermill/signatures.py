"""Checking Standard Webhooks signatures on requests that connectors send to ordermill."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ordermill.connector.errors import ConnectorError
from ordermill.connector.signature import check_signature
from ordermill.errors import Unauthorized


def verify_signature(raw: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> None:
    """Accept the request when any live secret of the space signed it; raise Unauthorized else.

    The timestamp must be within five minutes of now, which protects against replays.
    """
    try:
        check_signature(raw, headers, list(secrets))
    except ConnectorError as exc:
        raise Unauthorized(f"the feedback signature is not valid: {exc.message}") from exc
