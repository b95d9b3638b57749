"""Read, write and inspect ``.nmat`` bundle files.

A ``.nmat`` file is one safetensors file (no pickle, no code): the tensors named in
:mod:`.manifest` plus the JSON manifest under the metadata key ``"neumat"``. Writes are atomic
(:func:`neumat.fileio.atomic_write_bytes`). Loading checks, in order: the container (sizes
against the real file size and :data:`~.container.MAX_TENSOR_BYTES`), the manifest (format,
version, keys), the tensor table against the container, the declared model (every tensor the
manifest's model needs, each shape within the model limits) — all before a tensor byte is read
— then the checksum (version 2: the manifest and the tensors; version 1: the tensors only), then
the model (:meth:`Bundle.validate`, which includes the INT8 contract). Every failure is a
:class:`BundleError` saying what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..fileio import atomic_write_bytes
from .checksum import content_checksum
from .container import (
    MAX_TENSOR_BYTES,
    Header,
    read_header,
    read_raw_header,
    read_tensors,
    serialize,
)
from .errors import BundleError
from .manifest import (
    METADATA_KEY,
    bundle_from_manifest,
    build_manifest,
    check_declared_model,
    checksum_scope,
    check_tensor_table,
    decode_manifest,
    encode_manifest,
    manifest_checksum,
)
from .bundle import Bundle

INTERNAL_ERROR = "internal error while loading"
"""Prefix of the BundleError that wraps an unexpected exception (a neumat bug: please report)."""


def bundle_bytes(bundle: Bundle) -> bytes:
    """The complete ``.nmat`` file content of ``bundle`` (validated first; a :class:`BundleError`
    if its tensors exceed :data:`~.container.MAX_TENSOR_BYTES`, which no reader would accept)."""
    bundle.validate()
    tensors = bundle.tensors()
    total = sum(a.nbytes for a in tensors.values())
    if total > MAX_TENSOR_BYTES:
        raise BundleError(
            f"the bundle's tensors hold {total} bytes, more than the {MAX_TENSOR_BYTES}-byte limit of a "
            ".nmat file (neumat.bundle.container.MAX_TENSOR_BYTES); lower the plane resolution or channels"
        )
    manifest = build_manifest(bundle, tensors, content_checksum(tensors))
    return serialize(tensors, {METADATA_KEY: encode_manifest(manifest)})


def save_bundle(bundle: Bundle, path: str | Path) -> Path:
    """Validate ``bundle`` and write it to ``path`` atomically (temp file + fsync + rename).

    Always writes the newest format version (:data:`~.manifest.FORMAT_VERSION`).

    Raises:
        BundleError: the bundle is invalid; nothing is written.
        OSError: the write failed; ``path`` keeps its old content and no temp file is left.
    """
    return atomic_write_bytes(path, bundle_bytes(bundle))


def load_bundle(path: str | Path) -> Bundle:
    """Load and fully validate a ``.nmat`` file.

    Version-2 files are self-validating: their checksum covers the manifest (provenance, value
    scale, height range, widths, ...) and the tensors. Version-1 files still load, but their
    checksum covers the tensors only, so an edited manifest goes unnoticed: re-export them.

    Raises:
        BundleError: for every problem — unreadable, truncated or non-safetensors file, one
            declaring more than :data:`~.container.MAX_TENSOR_BYTES` or a tensor beyond the
            model limits (both before anything is read), missing/bad manifest, unsupported
            format version, unknown kind, tensors that disagree with the manifest, checksum
            mismatch, non-finite planes, invalid INT8 MLP (scales NaN/inf/<= 0, widths not
            matching the planes), invalid height map. Nothing else is raised.
    """
    return _load(path, _Progress())


@dataclass
class _Progress:
    """What :func:`_load` established before it returned or raised (for :func:`inspect_bundle`)."""

    header: Header | None = None
    """The validated container header."""
    computed: str | None = None
    """The checksum the manifest's version asks for, computed from the file."""


def _load(path: str | Path, progress: _Progress) -> Bundle:
    try:
        progress.header = header = read_header(path)
        with _prefixed(path):
            manifest = decode_manifest(header.metadata)
            check_tensor_table(manifest, header.entries)
            check_declared_model(manifest, header.entries)
        arrays = read_tensors(path, header)
        with _prefixed(path):
            progress.computed = computed = manifest_checksum(manifest, content_checksum(arrays))
        if computed != manifest["checksum"]:
            raise BundleError(
                f"{path}: checksum mismatch: manifest says {manifest['checksum']}, content is {computed} "
                f"({checksum_scope(manifest['version'])}); the file is corrupt or was edited — "
                "re-export or re-download the bundle"
            )
        with _prefixed(path):
            return bundle_from_manifest(manifest, arrays)
    except BundleError:
        raise
    except Exception as e:  # a bug, not a file problem: keep the one-exception contract, say so
        raise BundleError(f"{path}: {INTERNAL_ERROR} ({type(e).__name__}: {e}); please report this") from e


def inspect_bundle(path: str | Path) -> dict[str, Any]:
    """Describe a ``.nmat`` file, reporting (not raising) what is wrong with a broken one.

    Reads the tensor data at most once, and only when :func:`load_bundle` would (the header
    passed every size and model-limit check).

    Returns a dict:
        ``path`` (str), ``file_size`` (bytes or None), ``header_size`` (bytes or None),
        ``manifest`` (the decoded manifest dict, or None if absent/undecodable),
        ``tensors``: list of ``{"name", "dtype", "shape", "bytes"}`` in file order (best
        effort for a broken header; dtype is the safetensors code there),
        ``checksum``: ``{"stored", "computed", "status", "scope"}`` with status ``"OK"``,
        ``"MISMATCH"`` or ``"UNAVAILABLE"`` (the file was rejected before its tensors were
        read) and scope what the stored checksum covers (:data:`~.manifest.CHECKSUM_SCOPES`,
        e.g. ``"manifest and tensors"``; None for an unknown version),
        ``valid`` (bool: :func:`load_bundle` succeeds) and ``error`` (its message or None).
    """
    report: dict[str, Any] = {
        "path": str(path),
        "file_size": None,
        "header_size": None,
        "manifest": None,
        "tensors": [],
        "checksum": {"stored": None, "computed": None, "status": "UNAVAILABLE", "scope": None},
        "valid": False,
        "error": None,
    }
    progress = _Progress()
    try:
        _load(path, progress)
        report["valid"] = True
    except BundleError as e:
        report["error"] = str(e)
    if progress.header is not None:
        header, raw_metadata = progress.header, progress.header.metadata
        report["file_size"], report["header_size"] = header.file_size, header.header_size
        report["tensors"] = [
            {"name": e.name, "dtype": e.dtype, "shape": list(e.shape), "bytes": e.end - e.begin}
            for e in header.entries.values()
        ]
    else:
        try:
            file_size, header_size, raw = read_raw_header(path)
        except BundleError:
            return report
        report["file_size"], report["header_size"] = file_size, header_size
        if not isinstance(raw, dict):
            return report
        raw_metadata = raw.get("__metadata__")
        report["tensors"] = _loose_listing(raw)
    manifest = report["manifest"] = _manifest_or_none(raw_metadata)
    if manifest is not None:
        stored = manifest.get("checksum")
        report["checksum"]["stored"] = stored if isinstance(stored, str) else None
        report["checksum"]["scope"] = checksum_scope(manifest.get("version"))
    cs = report["checksum"]
    if progress.computed is not None:
        cs["computed"] = progress.computed
        cs["status"] = "OK" if progress.computed == cs["stored"] else "MISMATCH"
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
