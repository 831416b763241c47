"""The SQLite database and the local blob folder are readable by ordermill's user only."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ordermill.blobs import LocalBlobStore
from ordermill.private import private_file
from ordermill.storage.database import Database


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


async def test_a_new_sqlite_database_and_its_folder_are_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ordermill.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.transaction() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    finally:
        await db.dispose()

    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    for journal in (path.with_name("ordermill.db-wal"), path.with_name("ordermill.db-shm")):
        if journal.exists():
            assert mode(journal) == 0o600


def test_an_existing_database_readable_by_others_is_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "chosen"
    folder.mkdir(mode=0o755)
    path = folder / "ordermill.db"
    path.write_bytes(b"")
    path.chmod(0o644)
    private_file(path)

    assert mode(path) == 0o600
    assert mode(folder) == 0o755  # a folder the operator chose is left as it is


async def test_blobs_are_private_files_in_a_private_folder(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "data" / "blobs")
    source = tmp_path / "source.bin"
    source.write_bytes(b"from a file")

    await store.put("orders/ord_1/sheet.pdf", b"%PDF-1.7", "application/pdf")
    await store.put("orders/ord_1/model.stl", source, "model/stl")

    assert mode(tmp_path / "data" / "blobs") == 0o700
    assert mode(store.path_of("orders/ord_1/sheet.pdf")) == 0o600
    assert mode(store.path_of("orders/ord_1/model.stl")) == 0o600
    assert await store.get("orders/ord_1/model.stl") == b"from a file"
