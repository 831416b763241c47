"""Standard Webhooks v1 signatures: making the three headers and checking them.

A signature is ``v1,`` and the base64 HMAC-SHA256 of ``"{webhook-id}.{webhook-timestamp}.{body}"``
keyed with the base64-decoded part of the ``whsec_…`` secret. ``webhook-signature`` is a
space-separated list: during a secret rotation ordermill signs with the old and the new secret,
and a receiver accepts the request when any one signature matches any one of its secrets.
The HMAC itself is computed by the ``standardwebhooks`` package.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from standardwebhooks.webhooks import Webhook

from ordermill.connector.errors import InvalidSecret, SignatureError

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
# Unix seconds without leading zeros: the signed text is the header as sent, and the library
# rebuilds it from the parsed number.
_TIMESTAMP = re.compile(r"[1-9][0-9]{0,11}")

Secrets = str | Sequence[str]


@lru_cache(maxsize=64)
def _signer(secret: str) -> Webhook:
    key = secret.removeprefix(SECRET_PREFIX)
    try:
        raw = base64.b64decode(key + "=" * (-len(key) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSecret() from exc
    if not raw:
        raise InvalidSecret("The secret is empty.")
    return Webhook(raw)


def _secrets(secret: Secrets) -> list[str]:
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        raise InvalidSecret("No secret was given.")
    return secrets


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("pass an aware datetime (e.g. datetime.now(UTC))")
    # The library replaces (not converts) the timezone with UTC, so give it UTC already.
    return moment.astimezone(UTC)


def _digest(signer: Webhook, msg_id: str, timestamp: datetime, text: str) -> bytes:
    return base64.b64decode(signer.sign(msg_id, timestamp, text).split(",", 1)[1])


def sign_headers(
    body: bytes, msg_id: str, secret: Secrets, *, now: datetime | None = None
) -> dict[str, str]:
    """The ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` headers for ``body``.

    One ``v1,…`` signature per secret, space-separated. ``now`` (aware; default: the current
    time) is the signed timestamp. Raises ``InvalidSecret`` for a malformed secret.
    """
    moment = _utc(now).replace(microsecond=0)
    text = body.decode()
    signatures = " ".join(_signer(s).sign(msg_id, moment, text) for s in _secrets(secret))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signatures,
    }


def _candidates(header: str) -> list[bytes]:
    found: list[bytes] = []
    for entry in header.split():
        version, _, value = entry.partition(",")
        if version != "v1" or not value:
            continue  # other versions are for other schemes; Standard Webhooks says skip them
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def check_signature(
    body: bytes,
    headers: Mapping[str, str],
    secret: Secrets,
    *,
    tolerance: timedelta = timedelta(minutes=5),
    now: datetime | None = None,
) -> tuple[str, datetime]:
    """Check the Standard Webhooks headers of a request; return its (webhook-id, timestamp).

    Header names are matched case-insensitively. Raises ``SignatureError`` when a header is
    missing or malformed, no signature matches any of the secrets, or the timestamp is further
    than ``tolerance`` from ``now`` (in either direction: replay protection).
    """
    signers = [_signer(s) for s in _secrets(secret)]
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id", "").strip()
    stamp = lowered.get("webhook-timestamp", "").strip()
    header = lowered.get("webhook-signature", "").strip()
    missing = [
        name
        for name, value in (
            ("webhook-id", msg_id),
            ("webhook-timestamp", stamp),
            ("webhook-signature", header),
        )
        if not value
    ]
    if missing:
        raise SignatureError(f"The request has no {', '.join(missing)} header.")
    if not _TIMESTAMP.fullmatch(stamp):
        raise SignatureError("The webhook-timestamp header is not Unix seconds.")
    candidates = _candidates(header)
    if not candidates:
        raise SignatureError("The webhook-signature header holds no v1 signature.")
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise SignatureError("The body is not UTF-8, so it is not what ordermill signs.") from exc
    timestamp = datetime.fromtimestamp(int(stamp), UTC)
    expected = [_digest(signer, msg_id, timestamp, text) for signer in signers]
    if not any(hmac.compare_digest(e, c) for e in expected for c in candidates):
        raise SignatureError("No signature matches the secret.")
    age = _utc(now) - timestamp
    if abs(age) > tolerance:
        when = "old" if age > timedelta(0) else "in the future"
        raise SignatureError(
            f"The webhook-timestamp is {abs(age).total_seconds():.0f} s {when}, more than the "
            f"{tolerance.total_seconds():.0f} s allowed (a replayed or delayed request?)."
        )
    return msg_id, timestamp
