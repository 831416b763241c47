"""Rendering pages and fragments: the Jinja2 environment (autoescaped), filters and toasts.

Order data and flow names are untrusted, so every template is autoescaped and nothing a user
sent is ever marked safe.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ordermill.errors import InvalidInput
from ordermill.flows.status import OrderStatus
from ordermill.jsoncodec import parse_untrusted
from ordermill.ui.present import FILTERS

TEMPLATES = Path(__file__).parent / "templates"
FLASH_COOKIE = "ordermill_flash"

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters.update(FILTERS)
env.globals["OrderStatus"] = OrderStatus


@dataclass(frozen=True)
class Toast:
    text: str
    kind: str = "success"  # success | error | info


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _base_context(request: Request) -> dict[str, Any]:
    session = getattr(request.state, "ui_session", None)
    return {
        "request": request,
        "session": session,
        "csrf": session.csrf if session is not None else "",
        "now": datetime.now(UTC),
        "path": request.url.path,
    }


def render_text(request: Request, template: str, **context: Any) -> str:
    return env.get_template(template).render({**_base_context(request), **context})


def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    toasts: list[Toast] | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page or fragment. Full pages also show (and clear) a toast left by a redirect."""
    shown = list(toasts or [])
    flash = read_flash(request) if not is_htmx(request) else None
    if flash is not None:
        shown.insert(0, flash)
    body = render_text(request, template, toasts=shown, **context)
    if is_htmx(request) and toasts:
        body += toast_fragment(request, toasts)
    response = HTMLResponse(body, status_code=status_code, headers=headers)
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def toast_fragment(request: Request, toasts: list[Toast]) -> str:
    """Out-of-band toasts that htmx appends to the page's toast region."""
    return render_text(request, "partials/toasts_oob.html", toasts=toasts)


def toast_response(request: Request, toast: Toast, *, status_code: int = 200) -> HTMLResponse:
    """Only a toast: htmx puts it in the toast region whatever the request's target was."""
    html = render_text(request, "partials/toast.html", toast=toast)
    headers = {"HX-Retarget": "#toasts", "HX-Reswap": "beforeend"}
    return HTMLResponse(html, status_code=status_code, headers=headers)


def redirect(request: Request, url: str, toast: Toast | None = None) -> Response:
    """Go to ``url``: htmx follows HX-Redirect, a plain form a 303; the toast rides along."""
    response: Response
    if is_htmx(request):
        response = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    if toast is not None:
        payload = json.dumps({"text": toast.text, "kind": toast.kind})
        response.set_cookie(
            FLASH_COOKIE,
            base64.urlsafe_b64encode(payload.encode()).decode(),
            max_age=60,
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response


def read_flash(request: Request) -> Toast | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data = parse_untrusted(base64.urlsafe_b64decode(raw.encode()))
        return Toast(str(data["text"])[:500], str(data.get("kind", "info"))[:10])
    except (ValueError, KeyError, TypeError, InvalidInput):
        return None


def query_string(**params: str | None) -> str:
    return "&".join(f"{k}={quote(v)}" for k, v in params.items() if v)


env.globals["query_string"] = query_string
