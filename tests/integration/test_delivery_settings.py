"""What a delivery needs of its space (its signing secrets, its network allowances), read
once for many deliveries, and the space's first signing secret made once, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, func, select

from ordermill.config import Settings
from ordermill.service import Service
from ordermill.storage import tables as t


@pytest.fixture
async def other_process(settings: Settings) -> AsyncIterator[Service]:
    """A second service on the same database, as a second `ordermill worker` would be."""
    other = await Service.open(settings)
    try:
        yield other
    finally:
        await other.close()


async def test_first_deliveries_at_once_in_two_processes_make_one_signing_secret(
    service: Service, other_process: Service
) -> None:
    await service.store.spaces.create_space("acme")
    stores = [service.store.spaces, other_process.store.spaces]

    answers = await asyncio.gather(*(stores[n % 2].signing_secrets("acme") for n in range(12)))

    async with service.db.read() as conn:
        current = (
            await conn.execute(
                select(func.count())
                .select_from(t.signing_secrets)
                .where(t.signing_secrets.c.space_key == "acme")
            )
        ).scalar_one()
    assert current == 1
    assert len({tuple(answer) for answer in answers}) == 1


async def test_deliveries_that_find_the_settings_stale_share_one_read_and_see_a_change(
    service: Service,
) -> None:
    spaces = service.store.spaces
    await spaces.create_space("acme")
    await spaces.signing_secrets("acme")  # made before, as by an earlier delivery
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM spaces" in statement or "FROM signing_secrets" in statement:
            reads.append(statement)

    engines = {service.db.reader.sync_engine, service.db.writer.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        first = await asyncio.gather(*(spaces.delivery_settings("acme") for _ in range(20)))
        assert len(reads) == 2  # the space, its secrets: once for all twenty
        assert {settings.require_feedback_signature for settings in first} == {False}

        await spaces.update_settings("acme", requireFeedbackSignature=True)
        after = await asyncio.gather(*(spaces.delivery_settings("acme") for _ in range(5)))
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    assert {settings.require_feedback_signature for settings in after} == {True}


async def test_changes_of_different_settings_at_once_in_two_processes_all_hold(
    service: Service, other_process: Service
) -> None:
    await service.store.spaces.create_space("acme", settings={"kept": True})
    stores = [service.store.spaces, other_process.store.spaces]

    await asyncio.gather(
        *(stores[n % 2].update_settings("acme", **{f"setting{n}": n}) for n in range(10))
    )

    settings = (await service.store.spaces.get_space("acme")).settings
    assert settings == {"kept": True, **{f"setting{n}": n for n in range(10)}}
