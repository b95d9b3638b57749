"""Atomic file replacement (bundles, checkpoints, caches, configs): readers see the old file or the
complete new one, never a mix.

Temporary files are named ``.{name}.{random}.tmp`` beside their target ``name`` (``random`` from
:func:`tempfile.mkstemp`, never holding a dot). A write that is killed leaves its temporary file
behind; the next write of the same target removes those of its own that have not been modified
for :data:`STALE_TEMP_AGE_S` (see :func:`atomic_write_bytes`).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from pathlib import Path

NEW_FILE_MODE = 0o644
"""Permissions of a newly created file (an existing file keeps its own)."""
STALE_TEMP_AGE_S = 3600.0
"""Seconds without modification after which a temporary file of ours is orphaned (1 hour).

A live write keeps its temporary file's mtime current and finishes in minutes even for a 4 GiB
bundle on a slow disk, so a temporary file untouched for an hour belongs to a killed writer."""

log = logging.getLogger(__name__)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably.

    Missing parent directories are created. The bytes go to a temporary file
    ``.{path.name}.{random}.tmp`` in the same directory (same filesystem), which is
    flushed and fsynced, then renamed over ``path`` with :func:`os.replace`; on POSIX the
    directory is fsynced too so the rename survives a crash. If anything fails, the temporary
    file is removed, ``path`` is untouched and the exception (e.g. :class:`OSError` for a full
    disk) propagates.

    First, temporary files of the same target left by killed writes are removed: regular files
    named ``.{path.name}.{random}.tmp`` (``random`` without a dot, so another target's
    ``.{path.name}.x.{random}.tmp`` never matches) whose mtime is more than
    :data:`STALE_TEMP_AGE_S` seconds old. A concurrent writer's live temporary file is younger
    and stays. Failing to remove one is logged, never an error.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)  # `--export new_dir/x.nmat` is a normal request
    _remove_stale_temps(directory, path.name)
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


def _remove_stale_temps(directory: Path, name: str) -> list[Path]:
    """Remove ``directory``'s orphaned temporary files of target ``name`` (the rule above)."""
    pattern = re.compile(re.escape(f".{name}.") + r"[^./]+\.tmp")
    cutoff = time.time() - STALE_TEMP_AGE_S
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError as e:
        log.warning("cannot list %s to remove stale temporary files: %s", directory, e)
        return removed
    for entry in entries:
        try:
            if (
                pattern.fullmatch(entry.name)
                and entry.is_file(follow_symlinks=False)
                and entry.stat(follow_symlinks=False).st_mtime < cutoff
            ):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
                log.info("removed stale temporary file %s (left by a killed write)", entry.path)
        except FileNotFoundError:
            continue  # another writer removed it first
        except OSError as e:
            log.warning("cannot remove stale temporary file %s: %s", entry.path, e)
    return removed
