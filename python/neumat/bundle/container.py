"""A bounded reader and a writer of the safetensors container (the bytes of a ``.nmat`` file).

Layout (https://github.com/huggingface/safetensors): an 8-byte little-endian unsigned header
length ``N``, ``N`` bytes of UTF-8 JSON, then the tensor data. The JSON maps each tensor name
to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets relative to the data start)
and may hold ``"__metadata__"``: a str -> str map.

The header is parsed here, not by the ``safetensors`` package, so that every size is checked
against the real file size and :data:`MAX_TENSOR_BYTES` *before* anything is allocated: a
corrupt or hostile (e.g. sparse) file can neither crash the loader nor make it allocate more
than the limit, whatever its header declares. Tensors must tile the data region exactly
(contiguous, in offset order, no gap, no trailing bytes), as the ``safetensors`` writer
produces them. Only the dtypes a bundle uses are accepted.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BundleError

MAX_HEADER_BYTES = 100 * 1024 * 1024
"""Largest JSON header accepted (a bundle's header is a few KiB)."""
MAX_TENSOR_BYTES = 4 * 1024**3
"""Most bytes of tensor data a ``.nmat`` file may hold, all tensors together (4 GiB).

Room for an 8192² float32 U plane of 8 channels with its height map (2.25 GiB); the shipped
materials hold 2.5 MB. Readers check the header's declared total against it before allocating
or reading anything, and :func:`neumat.bundle.bundle_bytes` refuses to write more."""
MAX_RANK = 8
"""Most dimensions a tensor may have."""
DTYPES = {"F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "U32": np.dtype("<u4")}
"""safetensors dtype code -> little-endian numpy dtype (the only ones a bundle uses)."""
DTYPE_NAMES = {code: dt.name for code, dt in DTYPES.items()}
"""safetensors dtype code -> numpy dtype name (``"F16"`` -> ``"float16"``)."""
_ENTRY_KEYS = {"dtype", "shape", "data_offsets"}


@dataclass(frozen=True)
class TensorEntry:
    """One tensor's record in the header, validated.

    Attributes:
        name: tensor name.
        dtype: numpy dtype name (``"float16"``, ``"float32"``, ``"uint32"``).
        shape: sides, each >= 0.
        begin: first byte, relative to the data region.
        end: one past the last byte; ``end - begin`` equals the shape's byte count.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class Header:
    """A validated safetensors header: sizes, metadata and tensor records in offset order."""

    file_size: int
    """Bytes in the whole file."""
    header_size: int
    """``N``, bytes of JSON after the 8-byte length."""
    metadata: dict[str, str]
    """The ``"__metadata__"`` map (empty if absent)."""
    entries: dict[str, TensorEntry]
    """Tensor name -> record, in ascending offset order."""

    @property
    def data_start(self) -> int:
        """File offset of the data region."""
        return 8 + self.header_size


def read_raw_header(path: str | Path) -> tuple[int, int, Any]:
    """Read and JSON-decode the header: ``(file_size, N, decoded JSON)``.

    Checks only that the sizes are possible and the JSON decodes; :func:`validate_header`
    checks its content. Raises :class:`BundleError` (I/O errors included).
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device would block or never end
            raise BundleError(f"cannot read bundle file {path}: not a regular file")
        with open(path, "rb") as f:
            file_size = os.fstat(f.fileno()).st_size
            if file_size < 8:
                raise BundleError(
                    f"{path}: not a safetensors/.nmat file: {file_size} bytes, "
                    "shorter than the 8-byte header length"
                )
            n = int.from_bytes(f.read(8), "little")
            if n > MAX_HEADER_BYTES:
                raise BundleError(
                    f"{path}: header length {n} exceeds the {MAX_HEADER_BYTES}-byte limit; "
                    "the file is corrupt or not a safetensors/.nmat file"
                )
            if 8 + n > file_size:
                raise BundleError(
                    f"{path}: header declares {n} bytes, the file has only {file_size - 8} after the length; "
                    "the file is truncated (re-export or re-download it) or not a safetensors/.nmat file"
                )
            raw = f.read(n)
    except OSError as e:
        raise BundleError(f"cannot read bundle file {path}: {e}") from e
    if len(raw) != n:
        raise BundleError(
            f"{path}: file shrank while reading its header; retry when it is no longer being written"
        )
    try:
        decoded = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise BundleError(
            f"{path}: header is not valid UTF-8 JSON ({e}); the file is corrupt or not a .nmat file"
        ) from e
    return file_size, n, decoded


def validate_header(path: str | Path, file_size: int, header_size: int, decoded: Any) -> Header:
    """Check a decoded header against the safetensors rules and the file size.

    Raises :class:`BundleError` naming the first problem: wrong JSON types, an unsupported
    dtype, a shape whose byte count disagrees with its offsets, overlapping or gapped
    tensors, more than :data:`MAX_TENSOR_BYTES` of declared data, or data that the file is
    too short (truncated) or too long to hold: the declared bytes must equal the file's size.
    """
    if not isinstance(decoded, dict):
        raise BundleError(f"{path}: header must be a JSON object, got {type(decoded).__name__}")
    metadata = decoded.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise BundleError(f"{path}: header '__metadata__' must map strings to strings")
    entries = []
    for name, rec in decoded.items():
        if name != "__metadata__":
            entries.append(_entry(path, name, rec))
    entries.sort(key=lambda e: (e.begin, e.end))
    data_size = file_size - 8 - header_size
    pos = 0
    for e in entries:
        if e.begin != pos:
            what = (
                "overlaps the previous tensor" if e.begin < pos else f"leaves a gap of {e.begin - pos} bytes"
            )
            raise BundleError(
                f"{path}: tensor {e.name!r} at data offset {e.begin} {what}; the header is corrupt"
            )
        pos = e.end
    if pos > MAX_TENSOR_BYTES:
        raise BundleError(
            f"{path}: header declares {pos} bytes of tensor data, more than the {MAX_TENSOR_BYTES}-byte "
            "limit of a .nmat file (neumat.bundle.container.MAX_TENSOR_BYTES); nothing was read — "
            "the header is corrupt or hostile"
        )
    if pos > data_size:
        raise BundleError(
            f"{path}: header declares {pos} bytes of tensor data but the file holds {data_size}; "
            "the file is truncated (re-export or re-download it)"
        )
    if pos < data_size:
        raise BundleError(
            f"{path}: {data_size - pos} unexpected bytes after the last tensor; the file is corrupt"
        )
    return Header(file_size, header_size, dict(metadata), {e.name: e for e in entries})


def read_header(path: str | Path) -> Header:
    """:func:`read_raw_header` then :func:`validate_header`."""
    return validate_header(path, *read_raw_header(path))


def read_tensors(path: str | Path, header: Header) -> dict[str, np.ndarray]:
    """Read every tensor of a validated ``header``: name -> numpy array (aligned, writable).

    Allocates only the data region's size, which :func:`validate_header` matched to the file
    and bounded by :data:`MAX_TENSOR_BYTES`; too little memory for it is a :class:`BundleError`.
    """
    data_size = header.file_size - header.data_start
    try:
        buf = bytearray(data_size)
    except MemoryError as e:
        raise BundleError(
            f"{path}: not enough memory to read its {data_size} bytes of tensor data; free memory and retry"
        ) from e
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size != header.file_size:
                raise BundleError(
                    f"{path}: file changed size while being read; retry when it is no longer being written"
                )
            f.seek(header.data_start)
            got = f.readinto(buf)
    except OSError as e:
        raise BundleError(f"cannot read bundle file {path}: {e}") from e
    if got != data_size:
        raise BundleError(
            f"{path}: read {got} of {data_size} data bytes; the file is truncated or being rewritten"
        )
    out = {}
    for e in header.entries.values():
        dt = np.dtype(e.dtype).newbyteorder("<")
        count = (e.end - e.begin) // dt.itemsize
        a = np.frombuffer(buf, dtype=dt, count=count, offset=e.begin).reshape(e.shape)
        if not a.flags.aligned:
            a = a.copy()
        out[e.name] = a.astype(a.dtype.newbyteorder("="), copy=False)
    return out


def serialize(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """The safetensors bytes of ``tensors`` (float16/float32/uint32 arrays) and ``metadata``."""
    from safetensors.numpy import save

    return save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=metadata)


def _entry(path: str | Path, name: str, rec: Any) -> TensorEntry:
    where = f"{path}: tensor {name!r}"
    if not isinstance(rec, dict) or set(rec) != _ENTRY_KEYS:
        raise BundleError(
            f"{where}: header record must be an object with exactly the keys {sorted(_ENTRY_KEYS)}"
        )
    code, shape, offsets = rec["dtype"], rec["shape"], rec["data_offsets"]
    if not isinstance(code, str) or code not in DTYPES:
        raise BundleError(f"{where}: dtype {code!r} is not one a bundle uses ({sorted(DTYPES)})")
    if not _int_list(shape) or len(shape) > MAX_RANK or any(n < 0 for n in shape):
        raise BundleError(
            f"{where}: shape must be a list of at most {MAX_RANK} non-negative integers, got {shape!r}"
        )
    if not _int_list(offsets) or len(offsets) != 2 or not 0 <= offsets[0] <= offsets[1]:
        raise BundleError(
            f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end, got {offsets!r}"
        )
    nbytes = DTYPES[code].itemsize
    for n in shape:
        nbytes *= n
    if nbytes != offsets[1] - offsets[0]:
        raise BundleError(
            f"{where}: shape {shape} of {code} needs {nbytes} bytes, "
            f"but data_offsets span {offsets[1] - offsets[0]}"
        )
    return TensorEntry(name, DTYPE_NAMES[code], tuple(shape), offsets[0], offsets[1])


def _int_list(x: Any) -> bool:
    return isinstance(x, list) and all(isinstance(n, int) and not isinstance(n, bool) for n in x)
