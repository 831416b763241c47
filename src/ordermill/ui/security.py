"""Security headers for the UI: a strict Content-Security-Policy and friends, on UI paths only.

Scripts come only from our own static files (no inline script anywhere); mermaid writes style
attributes into the SVG it draws, hence ``style-src 'unsafe-inline'``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
NOT_UI = ("/api", "/healthz", "/readyz", "/metrics", "/demo")


class SecurityHeaders:
    """Adds the headers to every response outside the API; pages are also never cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(NOT_UI):
            await self.app(scope, receive, send)
            return
        is_static = path.startswith("/ui/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                extra = [*HEADERS] if is_static else [*HEADERS, (b"cache-control", b"no-store")]
                # A page that chose its own value (the answer links: no-referrer) keeps it.
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in extra if name not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
