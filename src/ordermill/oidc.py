"""Single sign-on with OpenID Connect: the authorization code flow with PKCE, ``state`` and
``nonce`` against one operator-configured provider (docs/concepts/users.md).

The provider is found by its discovery document; its ID token is verified against its JWKS
(signature, ``iss``, ``aud``, ``exp``, ``nonce``) and yields a verified e-mail address. Who that
address belongs to is the caller's business: nobody is created here.

The provider's addresses are the operator's, not a tenant's, so these calls do not go through the
connector's guarded seam; they trust the system's CAs and those of ``ORDERMILL_OIDC_CA_FILE``.
"""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from ordermill.config import Settings
from ordermill.errors import OrdermillError

CALL_SECONDS = 10.0
MAX_DOCUMENT_BYTES = 1024 * 1024
LEEWAY_SECONDS = 60
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]


class SignOnRefused(OrdermillError):
    """The provider's answer does not sign anyone in."""

    status = 401


class ProviderUnavailable(SignOnRefused):
    """The sign-in provider did not answer as a provider should."""

    status = 502


@dataclass(frozen=True)
class Start:
    """Where to send the browser, and what the callback must find again."""

    url: str
    state: str
    nonce: str
    verifier: str


@dataclass(frozen=True)
class Identity:
    email: str  # lower-case, verified by the provider
    subject: str


class OpenIdConnect:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def enabled(self) -> bool:
        s = self.settings
        return bool(s.oidc_discovery_url and s.oidc_client_id and s.oidc_client_secret)

    @property
    def label(self) -> str:
        return self.settings.oidc_label

    @property
    def redirect_uri(self) -> str:
        return f"{self.settings.base_url}/signin/oidc/callback"

    def _ssl(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.settings.oidc_ca_file is not None:
            context.load_verify_locations(cafile=str(self.settings.oidc_ca_file))
        return context

    async def _call(self, method: str, url: str, form: dict[str, str] | None = None) -> Any:
        if not url.startswith("https://"):
            raise ProviderUnavailable(f"the provider's address {url!r} is not https")
        timeout = aiohttp.ClientTimeout(total=CALL_SECONDS)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.request(
                    method,
                    url,
                    data=form,
                    ssl=self._ssl(),
                    allow_redirects=False,
                    headers={"accept": "application/json"},
                ) as response,
            ):
                body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError) as exc:
            reason = type(exc).__name__
            raise ProviderUnavailable(f"the sign-in provider did not answer: {reason}") from None
        if len(body) > MAX_DOCUMENT_BYTES:
            raise ProviderUnavailable("the sign-in provider's answer is too large")
        if status != 200:
            raise ProviderUnavailable(f"the sign-in provider answered {status}")
        try:
            return json.loads(body)
        except ValueError:
            raise ProviderUnavailable("the sign-in provider's answer is not JSON") from None

    async def _metadata(self) -> dict[str, Any]:
        url = self.settings.oidc_discovery_url
        assert url is not None
        meta = await self._call("GET", url)
        wanted = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
        if not isinstance(meta, dict) or not all(isinstance(meta.get(k), str) for k in wanted):
            raise ProviderUnavailable("the provider's discovery document lacks its endpoints")
        return meta

    async def start(self) -> Start:
        meta = await self._metadata()
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.oidc_client_id or "",
                "redirect_uri": self.redirect_uri,
                "scope": "openid email profile",
                "state": state,
                "nonce": nonce,
                "code_challenge": create_s256_code_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        endpoint = meta["authorization_endpoint"]
        glue = "&" if "?" in endpoint else "?"
        return Start(f"{endpoint}{glue}{query}", state, nonce, verifier)

    async def finish(self, code: str, verifier: str, nonce: str) -> Identity:
        """Exchange ``code`` for an ID token and verify it; the verified e-mail it names."""
        s = self.settings
        assert s.oidc_client_id is not None
        assert s.oidc_client_secret is not None
        meta = await self._metadata()
        tokens = await self._call(
            "POST",
            meta["token_endpoint"],
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "client_id": s.oidc_client_id,
                "client_secret": s.oidc_client_secret.get_secret_value(),
                "code_verifier": verifier,
            },
        )
        id_token = tokens.get("id_token") if isinstance(tokens, dict) else None
        if not isinstance(id_token, str):
            raise SignOnRefused("the sign-in provider sent no ID token")
        jwks = await self._call("GET", meta["jwks_uri"])
        try:
            keys = KeySet.import_key_set(jwks)
            token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
        except (JoseError, ValueError, TypeError, KeyError):
            raise SignOnRefused("the ID token's signature does not verify") from None
        claims = token.claims
        registry = JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            now=int(time.time()),
            iss={"essential": True, "value": meta["issuer"]},
            aud={"essential": True, "value": s.oidc_client_id},
            exp={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise SignOnRefused(f"the ID token is not valid here: {exc.description}") from None
        email = claims.get("email")
        if not isinstance(email, str) or not email.strip():
            raise SignOnRefused("the sign-in provider did not say your e-mail address")
        if claims.get("email_verified") is not True:
            raise SignOnRefused(
                "the sign-in provider has not verified your e-mail address; verify it there first"
            )
        return Identity(email.strip().lower(), str(claims["sub"]))
