"""A tiny OpenID Connect provider for tests, served by the https receiver on 127.0.0.1.

It has discovery, an authorize endpoint that consents at once (a redirect back with a code),
a token endpoint that checks the client secret, the redirect URI and the PKCE verifier and
returns an RS256-signed ID token, and a JWKS. `claims` and `overrides` say what the next ID
token holds; `sign_with_stranger` signs it with a key the JWKS does not publish.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.support.receiver import HttpsReceiver, ReceivedRequest, Reply

DISCOVERY = "/.well-known/openid-configuration"
KID = "test-key"


def _key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig"}, private=True)


@dataclass(frozen=True)
class _Grant:
    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str


class TestProvider:
    __test__ = False  # not a test class, whatever its name says

    def __init__(
        self,
        receiver: HttpsReceiver,
        *,
        client_id: str = "ordermill-test",
        client_secret: str | None = None,
    ) -> None:
        self.receiver = receiver
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.key = _key()
        self.stranger = _key()
        self.sign_with_stranger = False
        self.claims: dict[str, Any] = {}
        self.overrides: dict[str, Any] = {}  # applied to the ID token last (aud, exp, nonce…)
        self.tokens_issued = 0
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        receiver.respond(DISCOVERY, self._discovery)
        receiver.respond("/authorize", self._authorize)
        receiver.respond("/token", self._token)
        receiver.respond("/jwks", self._jwks)

    @property
    def issuer(self) -> str:
        return self.receiver.base_url

    @property
    def discovery_url(self) -> str:
        return self.receiver.url(DISCOVERY)

    def person(self, email: str, *, verified: bool = True) -> None:
        """The next sign-ins are by this person."""
        self.claims = {"sub": f"sub-{email}", "email": email, "email_verified": verified}

    def _discovery(self, _: ReceivedRequest) -> Reply:
        base = self.issuer
        return Reply(
            200,
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "jwks_uri": f"{base}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            },
        )

    def _jwks(self, _: ReceivedRequest) -> Reply:
        return Reply(200, {"keys": [self.key.as_dict(private=False)]})

    def _authorize(self, request: ReceivedRequest) -> Reply:
        query = {k: v[0] for k, v in parse_qs(request.query).items()}
        if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
            return Reply(400, {"error": "unsupported_response_type"})
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._grants[code] = _Grant(
                query["client_id"], query["redirect_uri"], query["nonce"], query["code_challenge"]
            )
        back = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        return Reply(302, b"", headers={"location": back})

    def _token(self, request: ReceivedRequest) -> Reply:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if (
            grant is None
            or form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
            or form.get("redirect_uri") != grant.redirect_uri
            or challenge != grant.challenge
        ):
            return Reply(400, {"error": "invalid_grant"})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            **self.claims,
            **self.overrides,
        }
        key = self.stranger if self.sign_with_stranger else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": KID}, claims, key)
        self.tokens_issued += 1
        return Reply(200, {"access_token": "at", "token_type": "Bearer", "id_token": id_token})
