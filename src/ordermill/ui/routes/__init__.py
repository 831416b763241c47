"""The UI's routes, one module per page."""

from __future__ import annotations

from fastapi import APIRouter

from ordermill.ui.routes import (
    audit,
    auth,
    bulk,
    confirmations,
    editor,
    flows,
    order,
    orders,
    people,
    settings,
)

ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    orders.router,
    bulk.router,
    order.router,
    confirmations.router,
    flows.router,
    editor.router,
    settings.router,
    audit.router,
    people.router,
)
