"""The two hash streams behind a bundle's ``"checksum"`` (which one a file uses: its version,
see :func:`neumat.bundle.manifest.manifest_checksum`).

:func:`content_checksum` — the tensors alone (the whole checksum of a version-1 file).
``sha256`` over, for each tensor in ascending order of its UTF-8 name: the name, a NUL byte,
the numpy dtype name (``"float16"``, ``"float32"``, ``"uint32"``), a NUL byte, the shape as
decimal sides joined by ``","`` (empty for a scalar), a NUL byte, then the raw little-endian
C-order bytes. Names never contain NUL, and dtype + shape fix the byte count, so the stream
is unambiguous.

:func:`sealed_checksum` — the manifest and the tensors (version 2 on). ``sha256`` over
:data:`SEAL_TAG`, the manifest's canonical JSON without its ``"checksum"`` key (UTF-8, sorted
keys, no whitespace: :func:`neumat.bundle.manifest.encode_manifest`), a NUL byte, then the
ASCII :func:`content_checksum` of the tensors. The JSON holds no raw NUL (control characters
are escaped), so the stream is unambiguous; one changed byte of provenance, height range,
widths or tensor data changes it.

Both are written as ``"sha256:<64 hex digits>"``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

PREFIX = "sha256:"
SEAL_TAG = b"neumat.nmat manifest+tensors\0"
"""First bytes of the :func:`sealed_checksum` stream (keeps it apart from the tensor stream)."""


def content_checksum(tensors: Mapping[str, np.ndarray]) -> str:
    """``"sha256:<hex>"`` of ``tensors`` (name -> array) in the canonical order above.

    Hashes each array's buffer in place (no copy unless it is big-endian or not C-contiguous).
    """
    h = hashlib.sha256()
    for name in sorted(tensors, key=lambda n: n.encode("utf-8")):
        a = np.asarray(tensors[name])
        le = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        h.update(name.encode("utf-8") + b"\0")
        h.update(a.dtype.name.encode("ascii") + b"\0")
        h.update(",".join(str(int(n)) for n in a.shape).encode("ascii") + b"\0")
        h.update(le.reshape(-1).view(np.uint8))
    return PREFIX + h.hexdigest()


def sealed_checksum(manifest_json: str, tensor_checksum: str) -> str:
    """``"sha256:<hex>"`` sealing a manifest's canonical JSON text (without its ``"checksum"``
    key) to its tensors' :func:`content_checksum` ``tensor_checksum``."""
    h = hashlib.sha256(SEAL_TAG)
    h.update(manifest_json.encode("utf-8") + b"\0")
    h.update(tensor_checksum.encode("ascii"))
    return PREFIX + h.hexdigest()
