"""Group commit for requests that arrive together: one transaction for a batch of them.

A caller submits an item and waits for its own answer. While a batch is being written, new
items queue; the next batch takes all of them (up to ``max_batch``). So an item waits at most
for the transaction in flight, and under load many items share one transaction. The answer
is given only after the batch's transaction committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Answer = TypeVar("Answer")


class GroupCommit(Generic[Item, Answer]):
    """Batches concurrent ``submit`` calls into calls of ``flush`` (one transaction each)."""

    def __init__(
        self,
        flush: Callable[[Sequence[Item]], Awaitable[Sequence[Answer | BaseException]]],
        max_batch: int = 64,
    ) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[Answer]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Answer:
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        batch: list[tuple[Item, asyncio.Future[Answer]]] = []
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                try:
                    answers = await self._flush([item for item, _ in batch])
                except Exception as exc:  # every caller of the batch sees the failure
                    answers = [exc] * len(batch)
                for (_, future), answer in zip(batch, answers, strict=True):
                    if future.done():  # the caller went away meanwhile
                        continue
                    if isinstance(answer, BaseException):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)
        finally:
            self._writer = None
            for _, future in (*batch, *self._pending):
                if not future.done():  # we were cancelled: nobody waits forever
                    future.cancel()
            if self._pending:
                self._pending.clear()
