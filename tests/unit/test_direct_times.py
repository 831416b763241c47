"""The driver path remembers recent times' conversions: equal instants convert alike whatever
their zone, and a naive time is refused every time, not only the first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Boolean
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from ordermill.storage import direct
from ordermill.storage.tables import UTCDateTime

DIALECTS: list[Dialect] = [sqlite.dialect(), postgresql.dialect()]  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_equal_instants_in_other_zones_are_written_alike(dialect: Dialect) -> None:
    process = direct.bind_processor(UTCDateTime(), dialect)
    assert process is not None
    noon_in_brussels = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    eleven_utc = datetime(2026, 1, 1, 11, 0, tzinfo=UTC)
    first, second = process(noon_in_brussels), process(eleven_utc)
    assert first == second
    assert process(datetime(2026, 1, 1, 11, 0, 1, tzinfo=UTC)) != first


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_a_naive_time_is_refused_every_time(dialect: Dialect) -> None:
    process = direct.bind_processor(UTCDateTime(), dialect)
    assert process is not None
    for _ in range(2):
        with pytest.raises(ValueError, match="naive"):
            process(datetime(2026, 1, 1, 11, 0))


def test_times_read_back_from_sqlite_are_aware_utc() -> None:
    dialect = DIALECTS[0]
    process = direct.result_processor(UTCDateTime(), dialect)
    assert process is not None
    read = [process("2026-01-01 11:00:00.000000") for _ in range(2)]
    assert read == [datetime(2026, 1, 1, 11, 0, tzinfo=UTC)] * 2
    assert all(value.tzinfo is UTC for value in read)


def test_other_types_are_not_remembered() -> None:
    kind = Boolean()
    process = direct.bind_processor(kind, DIALECTS[0])
    assert process is not None
    assert process is kind._cached_bind_processor(DIALECTS[0])
    assert not hasattr(process, "cache_info")
    assert hasattr(direct.bind_processor(UTCDateTime(), DIALECTS[0]), "cache_info")
