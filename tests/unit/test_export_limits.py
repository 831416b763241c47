"""The export's size limits: per file and per order, announced or discovered while streaming."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ordermill.errors import PermanentError
from ordermill.handlers.export.fetch import ByteBudget, copy_to_file

LABEL = "asset 'model' of item 'item-1'"


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_file_within_the_limits_lands_with_its_size_and_checksum(tmp_path: Path) -> None:
    budget = ByteBudget(max_file_bytes=10, max_order_bytes=20)
    target = tmp_path / "f"
    size, sha = await copy_to_file(chunks(b"abc", b"defg"), target, LABEL, budget)
    assert (size, sha) == (7, hashlib.sha256(b"abcdefg").hexdigest())
    assert target.read_bytes() == b"abcdefg"
    assert budget.total == 7


async def test_a_file_that_grows_past_the_file_limit_fails_permanently(tmp_path: Path) -> None:
    budget = ByteBudget(max_file_bytes=5, max_order_bytes=100)
    with pytest.raises(PermanentError) as caught:
        await copy_to_file(chunks(b"abc", b"def"), tmp_path / "f", LABEL, budget)
    assert caught.value.message == (
        "asset 'model' of item 'item-1' is larger than the per-file limit of 5 bytes; "
        "raise ORDERMILL_EXPORT_MAX_FILE_BYTES or leave the file out of the order"
    )


async def test_files_that_together_pass_the_order_limit_fail_permanently(tmp_path: Path) -> None:
    budget = ByteBudget(max_file_bytes=10, max_order_bytes=12)
    await copy_to_file(chunks(b"x" * 8), tmp_path / "a", "asset 'a' of item 'i'", budget)
    with pytest.raises(PermanentError) as caught:
        await copy_to_file(chunks(b"y" * 5), tmp_path / "b", LABEL, budget)
    assert caught.value.message == (
        "the order's files pass the per-order limit of 12 bytes at asset 'model' of item "
        "'item-1'; raise ORDERMILL_EXPORT_MAX_ORDER_BYTES or split the order"
    )


def test_an_announced_size_past_a_limit_is_refused_before_any_byte() -> None:
    budget = ByteBudget(max_file_bytes=10, max_order_bytes=15)
    budget.check_declared(LABEL, None)
    budget.check_declared(LABEL, 10)
    with pytest.raises(PermanentError, match="per-file limit of 10 bytes"):
        budget.check_declared(LABEL, 11)
    budget.count("other", 9, 9)
    with pytest.raises(PermanentError, match="per-order limit of 15 bytes"):
        budget.check_declared(LABEL, 7)
    assert budget.total == 9
