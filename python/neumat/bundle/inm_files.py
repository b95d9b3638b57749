"""Bounded readers of the raw files of an InstantNeuralMaterial directory (:mod:`.inm`): every
read is limited to the size the format allows, refuses what is not a regular file, and turns
every failure into a :class:`~.errors.BundleError` that says what to do."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BundleError

MAX_JSON_BYTES = 16 * 1024 * 1024
"""Largest metadata JSON file read."""


def read_bytes(path: Path, limit: int) -> bytes:
    """Content of the regular file ``path`` if it has at most ``limit`` bytes (else up to limit + 1)."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or device would block or never end
            raise BundleError(f"cannot read INM file {path}: not a regular file")
        with open(path, "rb") as f:
            return f.read(limit + 1)
    except FileNotFoundError as e:
        raise BundleError(
            f"INM file {path} is missing; import needs a directory written by export_inm "
            "(`neumat export --layout inm`)"
        ) from e
    except OSError as e:
        raise BundleError(f"cannot read INM file {path}: {e}") from e


def read_f32(path: Path, count: int | tuple[int, ...]) -> np.ndarray:
    """float32 values of ``path``, which must hold exactly ``count`` (or one of the counts)."""
    counts = (count,) if isinstance(count, int) else count
    data = read_bytes(path, 4 * max(counts))
    if len(data) not in [4 * c for c in counts]:
        what = "missing data (short)" if len(data) < 4 * min(counts) else "too long"
        raise BundleError(
            f"{path}: {len(data)}{'+' if len(data) > 4 * max(counts) else ''} bytes, expected "
            f"{' or '.join(str(4 * c) for c in counts)}: {what}; re-export it"
        )
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def read_json(path: Path) -> dict[str, Any]:
    data = read_bytes(path, MAX_JSON_BYTES)
    if len(data) > MAX_JSON_BYTES:
        raise BundleError(f"{path} is larger than {MAX_JSON_BYTES} bytes; not an INM metadata file")
    try:
        obj = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise BundleError(f"{path} is not valid JSON ({e})") from e
    if not isinstance(obj, dict):
        raise BundleError(f"{path} must hold a JSON object")
    return obj
