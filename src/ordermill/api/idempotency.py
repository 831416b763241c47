"""``Idempotency-Key`` on the steering actions: a resend gets the first answer again.

The same key with the same route and body within 24 hours replays the first answer (its
status and body) without acting again; the same key with another route or body is refused
(422). Without the header an action acts as usual, and an impossible one answers 409.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from ordermill.api.auth import PrincipalDep, ServiceDep
from ordermill.api.problems import PROBLEM_JSON, domain_problem, status_of
from ordermill.errors import OrdermillError
from ordermill.storage import idempotency
from ordermill.storage.idempotency import Answer, IdempotencyStore

HEADER = "Idempotency-Key"
Answered = dict[str, Any] | JSONResponse


@dataclass(frozen=True)
class Once:
    """Runs an action once per idempotency key (or every time, without one)."""

    store: IdempotencyStore
    request: idempotency.Request | None
    path: str

    async def __call__(self, act: Callable[[], Awaitable[dict[str, Any]]]) -> Answered:
        if self.request is None:
            return await act()
        first = await self.store.claim(self.request)
        if first is not None:
            media = PROBLEM_JSON if first.status >= 400 else "application/json"
            return JSONResponse(first.body, status_code=first.status, media_type=media)
        try:
            answer: dict[str, Any] = jsonable_encoder(await act())
        except OrdermillError as exc:
            if status_of(exc) >= 500:
                await self.store.release(self.request)
                raise
            response = domain_problem(exc, self.path)
            body = json.loads(bytes(response.body))
            await self.store.answer(self.request, Answer(response.status_code, body))
            return response
        except BaseException:
            await self.store.release(self.request)
            raise
        await self.store.answer(self.request, Answer(200, answer))
        return answer


async def once_per_key(
    request: Request,
    principal: PrincipalDep,
    service: ServiceDep,
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description="Send the same key with a resend of the same request within 24 hours "
            "to get the first answer again instead of acting twice.",
        ),
    ] = None,
) -> Once:
    path = request.url.path
    if key is None:
        return Once(service.store.idempotency, None, path)
    digest = hashlib.sha256(await request.body()).hexdigest()
    sent = idempotency.Request(principal.space_key, key, f"POST {path}", digest)
    return Once(service.store.idempotency, sent, path)


OnceDep = Annotated[Once, Depends(once_per_key)]
