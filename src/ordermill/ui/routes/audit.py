"""The audit page: who changed people, roles, keys, flows and settings of the space."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response

from ordermill.service import Service
from ordermill.ui.routing import ui_router
from ordermill.ui.session import SessionDep
from ordermill.ui.templating import render

router = ui_router()
PAGE = 50


@router.get("/audit")
async def audit_page(
    request: Request, session: SessionDep, before: Annotated[int | None, Query(ge=1)] = None
) -> Response:
    service: Service = request.app.state.service
    entries = await service.people.audit.entries(session.space_key, limit=PAGE, before=before)
    older = entries[-1].id if len(entries) == PAGE else None
    return render(request, "audit.html", active="audit", entries=entries, older=older)
