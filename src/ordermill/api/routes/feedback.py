"""/api/feedback/{token}: a connector's asynchronous answer (the order's ``updateUrl``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ordermill.api.auth import ServiceDep
from ordermill.api.limits import BoundedRoute
from ordermill.api.schemas import FeedbackIn, parse_feedback
from ordermill.flows.work import AssetRecord
from ordermill.storage.feedback import Feedback

router = APIRouter(prefix="/api/feedback", tags=["feedback"], route_class=BoundedRoute)


@router.post(
    "/{token}",
    summary="Post feedback for a task (no API key: the token is the credential)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": FeedbackIn.model_json_schema()}},
        }
    },
)
async def post_feedback(token: str, request: Request, service: ServiceDep) -> dict[str, Any]:
    """``success``/``failure`` end a waiting (or timed-out) task; ``progress`` records a note
    and counts as a heartbeat. 200 accepted (also for the same final answer twice), 400
    malformed, 401 bad or missing signature (when the space requires one), 404 unknown token,
    409 the task already ended differently. Feedback that arrives before the connector's HTTP
    answer is held, then applied."""
    body = parse_feedback(await request.json())
    raw = await request.body()
    feedback = Feedback(
        status=body.status,
        message=body.message,
        data=body.data,
        problem=body.problem,
        assets=tuple(
            AssetRecord(
                asset_id=asset.id,
                source="feedback",
                item_id=asset.itemId,
                url=asset.url,
                file_name=asset.fileName,
                content_type=asset.contentType,
                is_public=asset.isPublic,
            )
            for asset in body.assets
        ),
    )
    outcome = await service.receive_feedback(token, raw, request.headers, feedback)
    return {"accepted": True, "outcome": outcome}
