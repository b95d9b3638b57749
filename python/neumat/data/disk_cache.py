"""On-disk cache of rendered BTF slice blocks (safetensors files, atomic writes).

Layout: ``<root>/<name>-<key[:20]>/manifest.json`` (what the key covers, for humans) and one
``block_<i>.safetensors`` per block holding the float32 tensor ``slices`` [n, H, W, 3].
``root`` is ``$NEUMAT_CACHE/btf`` when ``NEUMAT_CACHE`` is set, else ``~/.cache/neumat/btf``.
The key is a SHA-256 over everything that changes the pixels, so a stale entry is never read;
a corrupt or mismatched file is reported, deleted and re-rendered. Writers go through a temp
file + rename, so concurrent processes at worst render the same block twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

from ..fileio import atomic_write_bytes

log = logging.getLogger(__name__)

CACHE_ENV = "NEUMAT_CACHE"
"""Environment variable naming neumat's cache root (the BTF cache is its ``btf`` folder)."""
TENSOR_KEY = "slices"


def default_cache_root() -> Path:
    """``$NEUMAT_CACHE/btf`` if the variable is set, else ``~/.cache/neumat/btf``."""
    base = os.environ.get(CACHE_ENV)
    return (Path(base) if base else Path.home() / ".cache" / "neumat") / "btf"


def hash_key(*parts: object) -> str:
    """SHA-256 hex digest of ``parts``: arrays by dtype, shape and bytes, other values by repr."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(f"{part.dtype}{part.shape}".encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(repr(part).encode())
        h.update(b"\x00")
    return h.hexdigest()


class SliceDiskCache:
    """Blocks of slices of one (material, renderer settings, directions) combination.

    Args:
        root: cache root folder (created on first write).
        name: human-readable prefix of the entry's folder (e.g. the material name).
        key: content hash of everything that determines the pixels (:func:`hash_key`).
        manifest: JSON-serializable description written beside the blocks.
    """

    def __init__(self, root: str | Path, name: str, key: str, manifest: dict) -> None:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
        self.directory = Path(root) / f"{safe}-{key[:20]}"
        self.key = key
        self.manifest = manifest

    def path(self, block: int) -> Path:
        """File of block ``block``."""
        return self.directory / f"block_{block:05d}.safetensors"

    def load(self, block: int, shape: tuple[int, ...]) -> np.ndarray | None:
        """Block ``block`` as float32 ``shape``, or ``None`` if absent or unusable (deleted)."""
        path = self.path(block)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            arr = load(data)[TENSOR_KEY]
        except (SafetensorError, KeyError, ValueError) as e:
            arr, why = None, f"unreadable ({e})"
        else:
            why = f"shape {arr.shape} {arr.dtype}, expected {shape} float32"
            if arr.shape == tuple(shape) and arr.dtype == np.float32:
                return arr
        log.warning("slice cache %s is %s; re-rendering it", path, why)
        path.unlink(missing_ok=True)
        return None

    def save(self, block: int, slices: np.ndarray) -> None:
        """Store ``slices`` (float32 [n, H, W, 3]) as block ``block``, atomically."""
        self.directory.mkdir(parents=True, exist_ok=True)
        manifest_path = self.directory / "manifest.json"
        if not manifest_path.exists():
            text = json.dumps({"key": self.key, **self.manifest}, indent=1, sort_keys=True)
            atomic_write_bytes(manifest_path, text.encode())
        tensor = np.ascontiguousarray(slices, dtype=np.float32)
        atomic_write_bytes(self.path(block), save({TENSOR_KEY: tensor}))
