"""/api/feedback/{token}: a connector's asynchronous answer (the order's ``updateUrl``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ordermill.api.auth import ServiceDep
from ordermill.api.schemas import FeedbackIn
from ordermill.storage.feedback import Feedback

router = APIRouter(prefix="/api/feedback", tags=["feedback"])


@router.post("/{token}", summary="Post feedback for a task (no API key: the token is the secret)")
async def post_feedback(token: str, body: FeedbackIn, service: ServiceDep) -> dict[str, Any]:
    """``success``/``failure`` end a waiting (or timed-out) task; ``progress`` records a note.
    200 accepted (also for the same final answer twice), 404 unknown token, 409 the task already
    ended differently. Feedback that arrives before the connector's HTTP answer is held, then
    applied."""
    outcome = await service.store.apply_feedback(
        token, Feedback(status=body.status, message=body.message, data=body.data)
    )
    return {"accepted": True, "outcome": outcome}
