"""Live reload of a ``.nmat`` bundle: :class:`BundleWatcher` polls the file's identity
(mtime in ns, size, inode) and reloads it when that changes.

Writers (``save_bundle``, ``neumat train --export``) replace the file atomically
(``os.replace``), so the watcher normally sees either the old or the new file; a half-written or
otherwise broken file makes :func:`~neumat.bundle.load_bundle` raise, and the watcher keeps the
last good bundle and reports the error until the file changes again.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..bundle import Bundle, BundleError, load_bundle

POLL_INTERVAL_S = 0.5
"""Default time between two looks at the file, seconds."""


def file_signature(path: Path) -> tuple[int, int, int] | None:
    """(mtime_ns, size, inode) of ``path``, or None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@dataclass
class BundleWatcher:
    """A bundle file, its last good content and the last load error.

    Args:
        path: the ``.nmat`` file.
        interval_s: minimum time between two polls (0: every :meth:`poll` looks).
    """

    path: Path
    interval_s: float = POLL_INTERVAL_S
    bundle: Bundle | None = None
    """The last bundle that loaded (None until one did)."""
    error: str | None = None
    """Why the newest version of the file did not load (None when it did)."""
    generation: int = 0
    """Incremented at every successful (re)load; renderers compare it to rebuild."""
    _signature: tuple[int, int, int] | None = field(default=None, repr=False)
    _last_poll: float = field(default=-1e30, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._load(file_signature(self.path))

    @property
    def name(self) -> str:
        """The file name, for menus."""
        return self.path.name

    def poll(self, now: float | None = None) -> bool:
        """Look at the file (at most every ``interval_s``); reload it when its signature changed.

        Returns:
            True when a new bundle was loaded (the caller re-renders).
        """
        now = time.monotonic() if now is None else now
        if now - self._last_poll < self.interval_s:
            return False
        self._last_poll = now
        signature = file_signature(self.path)
        if signature == self._signature:
            return False
        return self._load(signature)

    def _load(self, signature: tuple[int, int, int] | None) -> bool:
        self._signature = signature
        if signature is None:
            self.error = f"{self.path}: file not found (keeping the last good material)"
            return False
        try:
            bundle = load_bundle(self.path)
        except (BundleError, OSError) as e:
            self.error = f"{self.path.name}: {e}"
            return False
        self.bundle, self.error = bundle, None
        self.generation += 1
        return True
