"""Read, write and inspect ``.nmat`` bundle files.

A ``.nmat`` file is one safetensors file (no pickle, no code): the tensors named in
:mod:`.manifest` plus the JSON manifest under the metadata key ``"neumat"``. Writes are atomic
(:mod:`.atomic`). Loading checks, in order: the container (sizes against the real file size
before allocating anything), the manifest (format, version, keys), the tensor table against
the container, the content checksum, then the model (:meth:`Bundle.validate`, which includes
the INT8 contract). Every failure is a :class:`BundleError` saying what is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..fileio import atomic_write_bytes
from .checksum import content_checksum
from .container import read_header, read_raw_header, read_tensors, serialize, validate_header
from .errors import BundleError
from .manifest import (
    METADATA_KEY,
    bundle_from_manifest,
    build_manifest,
    check_tensor_table,
    decode_manifest,
    encode_manifest,
)
from .model import Bundle

INTERNAL_ERROR = "internal error while loading"
"""Prefix of the BundleError that wraps an unexpected exception (a neumat bug: please report)."""


def bundle_bytes(bundle: Bundle) -> bytes:
    """The complete ``.nmat`` file content of ``bundle`` (validated first)."""
    bundle.validate()
    tensors = bundle.tensors()
    manifest = build_manifest(bundle, tensors, content_checksum(tensors))
    return serialize(tensors, {METADATA_KEY: encode_manifest(manifest)})


def save_bundle(bundle: Bundle, path: str | Path) -> Path:
    """Validate ``bundle`` and write it to ``path`` atomically (temp file + fsync + rename).

    Raises:
        BundleError: the bundle is invalid; nothing is written.
        OSError: the write failed; ``path`` keeps its old content and no temp file is left.
    """
    return atomic_write_bytes(path, bundle_bytes(bundle))


def load_bundle(path: str | Path) -> Bundle:
    """Load and fully validate a ``.nmat`` file.

    Raises:
        BundleError: for every problem — unreadable, truncated or non-safetensors file,
            missing/bad manifest, unsupported format version, unknown kind, tensors that
            disagree with the manifest, checksum mismatch, non-finite planes, invalid INT8 MLP
            (scales NaN/inf/<= 0, widths not matching the planes), invalid height map.
            Nothing else is raised.
    """
    try:
        header = read_header(path)
        with _prefixed(path):
            manifest = decode_manifest(header.metadata)
            check_tensor_table(manifest, header.entries)
        arrays = read_tensors(path, header)
        computed = content_checksum(arrays)
        if computed != manifest["checksum"]:
            raise BundleError(
                f"{path}: checksum mismatch: manifest says {manifest['checksum']}, content is {computed}; "
                "the tensor data is corrupt or was edited — re-export or re-download the bundle"
            )
        with _prefixed(path):
            return bundle_from_manifest(manifest, arrays)
    except BundleError:
        raise
    except Exception as e:  # a bug, not a file problem: keep the one-exception contract, say so
        raise BundleError(f"{path}: {INTERNAL_ERROR} ({type(e).__name__}: {e}); please report this") from e


def inspect_bundle(path: str | Path) -> dict[str, Any]:
    """Describe a ``.nmat`` file, reporting (not raising) what is wrong with a broken one.

    Returns a dict:
        ``path`` (str), ``file_size`` (bytes or None), ``header_size`` (bytes or None),
        ``manifest`` (the decoded manifest dict, or None if absent/undecodable),
        ``tensors``: list of ``{"name", "dtype", "shape", "bytes"}`` in file order (best
        effort for a broken header; dtype is the safetensors code there),
        ``checksum``: ``{"stored", "computed", "status"}`` with status ``"OK"``,
        ``"MISMATCH"`` or ``"UNAVAILABLE"`` (header or manifest unreadable),
        ``valid`` (bool: :func:`load_bundle` succeeds) and ``error`` (its message or None).
    """
    report: dict[str, Any] = {
        "path": str(path),
        "file_size": None,
        "header_size": None,
        "manifest": None,
        "tensors": [],
        "checksum": {"stored": None, "computed": None, "status": "UNAVAILABLE"},
        "valid": False,
        "error": None,
    }
    try:
        load_bundle(path)
        report["valid"] = True
    except BundleError as e:
        report["error"] = str(e)
    try:
        file_size, header_size, raw = read_raw_header(path)
    except BundleError:
        return report
    report["file_size"], report["header_size"] = file_size, header_size
    if not isinstance(raw, dict):
        return report
    report["manifest"] = _manifest_or_none(raw.get("__metadata__"))
    if isinstance(report["manifest"], dict):
        stored = report["manifest"].get("checksum")
        report["checksum"]["stored"] = stored if isinstance(stored, str) else None
    try:
        header = validate_header(path, file_size, header_size, raw)
    except BundleError:
        report["tensors"] = _loose_listing(raw)
        return report
    report["tensors"] = [
        {"name": e.name, "dtype": e.dtype, "shape": list(e.shape), "bytes": e.end - e.begin}
        for e in header.entries.values()
    ]
    try:
        computed = content_checksum(read_tensors(path, header))
    except BundleError:
        return report
    report["checksum"]["computed"] = computed
    if report["checksum"]["stored"] is not None:
        report["checksum"]["status"] = "OK" if computed == report["checksum"]["stored"] else "MISMATCH"
    return report


class _prefixed:
    """Context manager: re-raise a BundleError with the file path in front of its message."""

    def __init__(self, path: str | Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> None:
        if isinstance(exc, BundleError):
            raise BundleError(f"{self.path}: {exc}") from exc


def _manifest_or_none(metadata: Any) -> dict[str, Any] | None:
    if not isinstance(metadata, dict) or not isinstance(metadata.get(METADATA_KEY), str):
        return None
    try:
        m = json.loads(metadata[METADATA_KEY])
    except (ValueError, RecursionError):
        return None
    return m if isinstance(m, dict) else None


def _loose_listing(raw: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, rec in raw.items():
        if name == "__metadata__" or not isinstance(rec, dict):
            continue
        off = rec.get("data_offsets")
        size = (
            off[1] - off[0]
            if isinstance(off, list) and len(off) == 2 and all(type(x) is int for x in off)
            else None
        )
        rows.append({"name": name, "dtype": rec.get("dtype"), "shape": rec.get("shape"), "bytes": size})
    return rows
