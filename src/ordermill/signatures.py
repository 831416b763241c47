"""Comparing secrets, and checking Standard Webhooks signatures on requests from connectors."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence

from ordermill.connector.errors import ConnectorError
from ordermill.connector.signature import check_signature
from ordermill.errors import Unauthorized


def same_secret(given: str | None, expected: str) -> bool:
    """Whether ``given`` equals ``expected``, in constant time, whatever characters it holds.

    Compares bytes: ``hmac.compare_digest`` raises on ``str`` with non-ASCII characters, which
    anyone can send in a header, a cookie, a query or a form.
    """
    if given is None:
        return False
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def verify_signature(raw: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> None:
    """Accept the request when any live secret of the space signed it; raise Unauthorized else.

    The timestamp must be within five minutes of now, which protects against replays.
    """
    try:
        check_signature(raw, headers, list(secrets))
    except ConnectorError as exc:
        raise Unauthorized(f"the feedback signature is not valid: {exc.message}") from exc
