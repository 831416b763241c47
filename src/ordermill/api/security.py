"""Response hardening outside the UI: the API docs page's CSP, redirects that ignore ``Host``."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import quote

from starlette.responses import RedirectResponse
from starlette.routing import Match, Router
from starlette.types import Receive, Scope, Send

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_csp(html: str) -> str:
    """A Content-Security-Policy for the Swagger UI page: own files, plus its inline scripts."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    )
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {hashes}".rstrip(),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def relative_slash_redirects(router: Router) -> None:
    """Redirect ``/x/`` to ``/x`` (and back) with a relative ``Location``.

    Starlette's own slash redirect builds an absolute URL from the request's ``Host`` header, so
    anyone could make ordermill answer with a redirect to a host of their choosing.
    """
    router.redirect_slashes = False
    fallback = router.default

    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and path != "/":
            other = path.rstrip("/") if path.endswith("/") else path + "/"
            # "//host" would be read as another host; such paths are never redirected.
            if other.startswith("/") and not other.startswith("//"):
                moved = {**scope, "path": other}
                if any(route.matches(moved)[0] is not Match.NONE for route in router.routes):
                    query = scope.get("query_string", b"").decode("latin-1")
                    location = quote(other, safe="/-._~!$&'()*+,;=:@")
                    response = RedirectResponse(location + (f"?{query}" if query else ""))
                    await response(scope, receive, send)
                    return
        await fallback(scope, receive, send)

    router.default = default
