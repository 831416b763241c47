"""The hot statements' way to the driver (``storage/direct.py``) reads and writes what
SQLAlchemy's execution would, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from ordermill.config import Settings
from ordermill.service import Service
from ordermill.storage import direct
from ordermill.storage import tables as t

_KEYS = bindparam("keys", expanding=True)
_SPACES = select(t.spaces.c.key, t.spaces.c.settings, t.spaces.c.created_at).where(
    t.spaces.c.key.in_(_KEYS)
)
_ADD_SPACE = insert(t.spaces).values(
    key=bindparam("key"),
    name=bindparam("name"),
    settings=bindparam("settings", type_=t.Json),
    created_at=bindparam("at", type_=t.UTCDateTime),
)


@pytest.mark.parametrize("wanted", [[], ["b"], ["a", "c", "zz"]])
async def test_rows_read_what_sqlalchemy_reads_for_any_number_of_ids(
    make_settings: Callable[..., Settings], wanted: list[str]
) -> None:
    service = await Service.open(make_settings())
    at = datetime(2026, 12, 7, 10, 30, 15, 123456, tzinfo=UTC)
    try:
        async with service.store.db.transaction() as conn:
            await direct.many(
                conn,
                _ADD_SPACE,
                [
                    {"key": key, "name": key.upper(), "settings": {"n": n, "k": [key]}, "at": at}
                    for n, key in enumerate("abc")
                ],
            )
        async with service.store.db.transaction() as conn:
            found = await direct.rows(conn, _SPACES, {"keys": wanted})
            expected = (await conn.execute(_SPACES, {"keys": wanted})).all()
        assert sorted(found) == sorted(tuple(row) for row in expected)
        assert {row.key for row in found} == set(wanted) & set("abc")
        for row in found:
            assert row.settings == {"n": "abc".index(row.key), "k": [row.key]}
            assert row.created_at == at
            assert row.created_at.tzinfo is not None
    finally:
        await service.close()


async def test_a_driver_error_comes_out_as_sqlalchemys_without_its_parameters(
    make_settings: Callable[..., Settings],
) -> None:
    service = await Service.open(make_settings())
    at = datetime.now(UTC) - timedelta(days=1)
    row: dict[str, Any] = {"key": "dup", "name": "secret-name", "settings": {}, "at": at}
    try:
        async with service.store.db.transaction() as conn:
            await direct.rows(conn, _ADD_SPACE, row)
        with pytest.raises(IntegrityError) as raised:
            async with service.store.db.transaction() as conn:
                await direct.rows(conn, _ADD_SPACE, row)
        assert "secret-name" not in str(raised.value)
        async with service.store.db.read() as conn:
            names = (await conn.execute(select(t.spaces.c.name))).scalars().all()
        assert names == ["secret-name"]  # the second insert changed nothing
    finally:
        await service.close()
