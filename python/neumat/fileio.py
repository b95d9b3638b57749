"""Atomic file and folder replacement (bundles, checkpoints, caches, configs, finished model and
video folders): readers see the old file or folder or the complete new one, never a mix.

Temporary files are named ``.{name}.{random}.tmp`` beside their target ``name`` (``random`` from
:func:`tempfile.mkstemp`, never holding a dot). A write that is killed leaves its temporary file
behind; the next write of the same target removes those of its own that have not been modified
for :data:`STALE_TEMP_AGE_S` (see :func:`atomic_write_bytes`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def staged_folder(target: str | Path) -> Iterator[Path]:
    """A hidden temporary folder ``.{target.name}.{random}`` beside ``target`` to fill inside the
    ``with`` block. Leaving the block normally renames it to ``target`` (a previous ``target`` is
    first moved to ``.{target.name}.old``, then removed), so a reader sees the old folder or the
    complete new one; an exception removes it and leaves ``target`` untouched. Missing parent
    directories are created; the new folder gets mode 0o755."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes it private
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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


class OutputPathError(ValueError):
    """An output path cannot be written (wrong extension, a directory, an unwritable or
    non-directory parent); found before any work is done, the message says which and why."""


def check_output_path(path: str | Path, suffixes: tuple[str, ...], what: str) -> Path:
    """Check, before the work that produces it, that a file can be written at ``path``.

    ``path`` must not be an existing directory, must end in one of ``suffixes`` (lower-case,
    with the dot, compared case-insensitively; ``()`` allows any), and its nearest
    existing ancestor must be a writable directory (missing folders are created by the write,
    see :func:`atomic_write_bytes`). Writability is probed by creating and deleting an anonymous
    temporary file there, so read-only file systems and ``/proc`` fail here even for root.
    Nothing is created.

    Args:
        path: the output file.
        suffixes: the extensions the writer produces.
        what: the option or role, for messages (``"--export"``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputPathError: the message names ``what``, the path and the problem.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{what} {str(path)!r} is a directory; give a file name inside it, "
                              f"e.g. {str(path / ('out' + (suffixes[0] if suffixes else '')))!r}")
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputPathError(f"{what} {str(path)!r} must end in {' or '.join(suffixes)} "
                              f"(got {path.suffix or 'no extension'!r})")
    _check_writable_ancestor(path.parent, what, path)
    return path


def check_output_dir(path: str | Path, what: str) -> Path:
    """Check, before any work, that ``path`` is a writable directory or can be created as one
    (its nearest existing ancestor is a writable directory; the probe is the one of
    :func:`check_output_path`). Nothing is created.

    Raises:
        OutputPathError: ``path`` or an ancestor is a file, or the place is not writable.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{what} {str(path)!r} exists and is not a directory")
    _check_writable_ancestor(path, what, path)
    return path


def _check_writable_ancestor(directory: Path, what: str, target: Path) -> None:
    """Raise :class:`OutputPathError` unless the nearest existing ancestor of ``directory``
    (itself included) is a directory in which a file can be created."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputPathError(f"{what} {str(target)!r}: {str(existing)!r} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise OutputPathError(f"{what} {str(target)!r}: cannot write in {str(existing)!r} "
                              f"({e.strerror or e})") from None
