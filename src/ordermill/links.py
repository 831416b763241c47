"""Signed, expiring links to ordermill (asset downloads, confirmation answers).

A link carries ``expires`` (Unix seconds) and ``signature`` (HMAC-SHA256 over the path and the
expiry, keyed with the instance secret); a tampered or expired link is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime
from urllib.parse import urlencode

from ordermill.signatures import same_secret

_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")  # ASCII digits only, and no more than int() likes


class LinkSigner:
    """Makes and checks signed links under one secret and public base URL."""

    def __init__(self, secret: str, base_url: str) -> None:
        self._key = hashlib.sha256(b"ordermill-links:" + secret.encode()).digest()
        self.base_url = base_url.rstrip("/")

    def _signature(self, path: str, expires: int) -> str:
        mac = hmac.new(self._key, f"{path}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def sign(self, path: str, expires_at: datetime, **query: str) -> str:
        """An absolute URL for ``path`` (which starts with /) valid until ``expires_at``."""
        expires = int(expires_at.timestamp())
        params = {**query, "expires": str(expires), "signature": self._signature(path, expires)}
        return f"{self.base_url}{path}?{urlencode(params)}"

    def verify(self, path: str, expires: str | None, signature: str | None, now: datetime) -> bool:
        """Whether the link is genuine and not yet expired."""
        if not expires or not signature or not _UNIX_SECONDS.fullmatch(expires):
            return False
        expected = self._signature(path, int(expires))
        return same_secret(signature, expected) and int(expires) >= now.timestamp()
