"""Files only ordermill's own user may read: the SQLite database and the local blob folder.

The database holds the instance secret, the spaces' signing secrets and the API key hashes; the
blob folder holds the tenants' files. Under the usual umask (022) they would be readable by every
local user, so they are created 0600 (files) and 0700 (folders), and tightened when found wider.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def _tighten(path: Path, mode: int) -> None:
    """Give ``path`` ``mode`` when this user owns it and it allows more."""
    info = path.stat()
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & ~mode:
        path.chmod(mode)


def private_dir(path: Path) -> Path:
    """``path`` as a folder only this user may enter; missing parents are created as usual."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=DIR_MODE, exist_ok=True)
    _tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """``path`` (and its SQLite journals) as files only this user may read and write.

    A missing file is created empty, 0600, in a parent folder that is created 0700 when missing.
    """
    if not path.parent.exists():
        private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if candidate.exists():
            _tighten(candidate, FILE_MODE)
    return path
