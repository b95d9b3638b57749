"""Atomic file replacement (bundles, checkpoints, caches, configs): readers see the old file or the
complete new one, never a mix."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

NEW_FILE_MODE = 0o644
"""Permissions of a newly created file (an existing file keeps its own)."""


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably.

    Missing parent directories are created. The bytes go to a temporary file in the same
    directory (same filesystem), which is
    flushed and fsynced, then renamed over ``path`` with :func:`os.replace`; on POSIX the
    directory is fsynced too so the rename survives a crash. If anything fails, the temporary
    file is removed, ``path`` is untouched and the exception (e.g. :class:`OSError` for a full
    disk) propagates.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)  # `--export new_dir/x.nmat` is a normal request
    mode = path.stat().st_mode & 0o7777 if path.exists() else NEW_FILE_MODE
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if os.name == "posix":
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path
