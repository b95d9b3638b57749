"""Content checksum of a bundle's tensors (never of its metadata).

``sha256`` over, for each tensor in ascending order of its UTF-8 name: the name, a NUL byte,
the numpy dtype name (``"float16"``, ``"float32"``, ``"uint32"``), a NUL byte, the shape as
decimal sides joined by ``","`` (empty for a scalar), a NUL byte, then the raw little-endian
C-order bytes. Names never contain NUL, and dtype + shape fix the byte count, so the stream
is unambiguous. Written as ``"sha256:<64 hex digits>"``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

PREFIX = "sha256:"


def content_checksum(tensors: Mapping[str, np.ndarray]) -> str:
    """``"sha256:<hex>"`` of ``tensors`` (name -> array) in the canonical order above."""
    h = hashlib.sha256()
    for name in sorted(tensors, key=lambda n: n.encode("utf-8")):
        a = np.asarray(tensors[name])
        le = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        h.update(name.encode("utf-8") + b"\0")
        h.update(a.dtype.name.encode("ascii") + b"\0")
        h.update(",".join(str(int(n)) for n in a.shape).encode("ascii") + b"\0")
        h.update(le.tobytes())
    return PREFIX + h.hexdigest()
