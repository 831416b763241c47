"""The operator web UI: server-rendered pages (Jinja2 + htmx) served by the API process at ``/``.

Pages call the Service and the Store directly, as the API routes do; see docs/ui.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ordermill.ui.routes import ROUTERS
from ordermill.ui.security import SecurityHeaders

STATIC = Path(__file__).parent / "static"


def install_ui(app: FastAPI) -> None:
    """Add the pages, their static files and the security headers to ``app``."""
    app.add_middleware(SecurityHeaders)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    for router in ROUTERS:
        app.include_router(router)
