"""The Bonn "BTF" binary format of the UBO2014 database: a numpy reader and writer.

Implemented from the format as read by Zdravko Velinov's Free BTF Library (``btf.hh``, MIT),
which the PyPI package ``btf-extractor`` wraps (``btf_extractor/c_ext/btf.hh``); that package
does not install here (its build pins an old numpy that does not compile on Python 3.11), so
this is a re-implementation in numpy, checked by round trips (tests/test_data_ubo2014.py).

Layout (little-endian; ``u32`` = uint32, ``f32`` = float32)::

    '!' + signature       "DFMF08FC" (UBO2014: one SVD per channel) | "FMF06FC" | "FMF12FCE"
    ['R']                 optional: per-texel rotations follow the geometry
    header                u32 Size, u32 Version, char[80] ×3 (setup, sensor, light source),
                          f32 PPMM, f32[3] RGB; Version>1: u32 cosine flag; >2: u32 n + XML
                          text; >3: u32 channel count + (u32 n + name) per channel.
                          Size = bytes from the header's start to here.
    geometry              u32 V; per view: f32 θ, f32 φ (radians), u32 L, L × (f32 θ, f32 φ)
                          (the light list, repeated per view); u32 width, u32 height;
                          ['R': u32 n + n × f32[9]]
    DFMF body             u32 components, u32 colour model, f32[3] mean, f32[9] transform;
                          per channel: u8 scalar size (2 half | 4 float | 8 double),
                          u32 C, u32 rows (= V·L), u32 cols (= W·H), C singular values,
                          U [rows, C], S×V [cols, C]
    FMF0/1 body           [FMF1: u8 ext version; >=1: u32 dynamic-range flag; >=2: u32 w, h
                          + u16 height map] u32 C0, u8 scalar size, u32 C1, u32 rows
                          (= V·L·channels), u32 cols, C scalars, U [rows/ch, ch, C],
                          S×V [cols, C] shared by the channels; C = max(1, min(C0, C1))

The file must end right after the body. Value of channel c at row ``lv = view·L + light``
and texel ``xy = y·W + x``: ``Σ_k U_c[lv, k] · SxV_c[xy, k]`` (float32 for half/float data);
colour model 11 is log-luminance YUV (``Y = e^c0 - 1e-5``, chroma × Y, then YUV→RGB clamped
to [0, 1]); the dynamic-range flag applies ``e^x - 1e-5`` last; image rows are then flipped
(row y of the result is stored row H-1-y), as the reference loader does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..fileio import atomic_write_bytes
from .errors import Ubo2014FormatError

SIGNATURES = {b"DFMF": b"08FC", b"FMF0": b"6FC", b"FMF1": b"2FCE"}
HEADER = struct.Struct("<II80s80s80sf3f")
SCALAR_TYPES = {2: np.float16, 4: np.float32, 8: np.float64}
DRR_EPS = 1e-5
YUV_TO_RGB = np.array([[1.0, 0.0, 1.13983], [1.0, -0.39465, -0.5806], [1.0, 2.03211, 0.0]],
                      dtype=np.float32)


@dataclass
class Ubo2014File:
    """A parsed BTF file; the factor matrices are views into a read-only memory map."""

    path: Path
    signature: str
    """"DFMF", "FMF0" or "FMF1"."""
    version: int
    view_angles: np.ndarray
    """[V, 2] float32 (θ, φ) of each view, radians."""
    light_angles: np.ndarray
    """[L, 2] float32 (θ, φ) of each light, radians."""
    width: int
    height: int
    u: list[np.ndarray]
    """Per channel [V·L, C_c] left factors (for FMF files: views of one [V·L, 3, C] array)."""
    sxv: list[np.ndarray]
    """Per channel [W·H, C_c] right factors × singular values (FMF: the same array thrice)."""
    color_model: int = 0
    dynamic_range_reduction: bool = False
    cosine_flag: bool = False
    """Set in the file's header; the reference loader leaves values unchanged, and so do we."""
    strings: dict = field(default_factory=dict)
    """measurement_setup, image_sensor, light_source, xml, channel names."""
    _sxv32: dict = field(default_factory=dict, repr=False)

    def decode_frame(self, view: int, light: int) -> np.ndarray:
        """The image of (view, light) as float32 [H, W, 3] RGB (module docstring)."""
        lv = view * self.light_angles.shape[0] + light
        chans = []
        for c in range(3):
            if c not in self._sxv32:
                self._sxv32[c] = np.asarray(self.sxv[c], dtype=np.float32 if
                                            self.sxv[c].dtype != np.float64 else np.float64)
            right = self._sxv32[c]
            chans.append(right @ np.asarray(self.u[c][lv], dtype=right.dtype))
        value = np.stack(chans, axis=-1).astype(np.float32)
        if self.color_model == 11:
            y = np.exp(value[:, 0]) - DRR_EPS
            yuv = np.stack([y, value[:, 1] * y + DRR_EPS, value[:, 2] * y + DRR_EPS], axis=-1)
            value = np.clip(yuv @ YUV_TO_RGB.T, 0.0, 1.0)
        if self.dynamic_range_reduction:
            value = np.exp(value) - np.float32(DRR_EPS)
        return value.reshape(self.height, self.width, 3)[::-1].astype(np.float32)


class _Cursor:
    """Bounds-checked little-endian reads from a byte buffer; errors name file and offset."""

    def __init__(self, buf, path: Path) -> None:
        self.buf, self.path, self.pos = buf, path, 0

    def take(self, n: int, what: str):
        if n < 0 or self.pos + n > len(self.buf):
            raise Ubo2014FormatError(f"{self.path}: truncated — needed {n} bytes for {what} at "
                                     f"offset {self.pos}, file has {len(self.buf)}")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str):
        s = struct.Struct("<" + fmt)
        return s.unpack(bytes(self.take(s.size, what)))

    def u32(self, what: str) -> int:
        return self.unpack("I", what)[0]

    def array(self, dtype, shape: tuple[int, ...], what: str) -> np.ndarray:
        count = int(np.prod(shape))
        raw = self.take(count * np.dtype(dtype).itemsize, what)
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"), count=count).reshape(
            shape)


def read_ubo2014(path: str | Path) -> Ubo2014File:
    """Parse a UBO2014 / Bonn BTF file (memory-mapped; nothing is decoded yet).

    Raises:
        Ubo2014FormatError: wrong signature, inconsistent sizes, truncation, trailing bytes,
            unsupported variants (not 3 channels, unknown scalar size or colour model).
    """
    path = Path(path)
    try:
        buf = np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as e:
        raise Ubo2014FormatError(f"{path}: cannot open as a BTF file ({e})") from e
    cur = _Cursor(buf, path)
    head = bytes(buf[:5])
    if len(head) < 5 or head[:1] != b"!" or head[1:5] not in SIGNATURES:
        raise Ubo2014FormatError(f"{path}: not a Bonn BTF file (expected '!DFMF08FC', "
                                 f"'!FMF06FC' or '!FMF12FCE', found {head!r})")
    sig = head[1:5]
    cur.take(5, "signature")
    if bytes(cur.take(len(SIGNATURES[sig]), "signature")) != SIGNATURES[sig]:
        raise Ubo2014FormatError(f"{path}: bad signature suffix after {sig.decode()}")
    f = _read_common(cur, sig.decode())
    if sig == b"DFMF":
        _read_dfmf(cur, f)
    else:
        _read_fmf(cur, f, extended=sig == b"FMF1")
    if cur.pos != len(buf):
        raise Ubo2014FormatError(f"{path}: {len(buf) - cur.pos} unexpected bytes after the data "
                                 f"(ends at {cur.pos})")
    return f


def _read_common(cur: _Cursor, sig: str) -> Ubo2014File:
    rotations = bytes(cur.buf[cur.pos:cur.pos + 1]) == b"R"
    if rotations:
        cur.pos += 1
    start = cur.pos
    size, version, setup, sensor, source, _ppmm, *_rgb = cur.unpack(HEADER.format[1:], "header")
    strings = {k: v.split(b"\0", 1)[0].decode("latin-1") for k, v in
               (("measurement_setup", setup), ("image_sensor", sensor), ("light_source", source))}
    cosine = bool(cur.u32("cosine flag")) if version > 1 else False
    if version > 2:
        strings["xml"] = bytes(cur.take(cur.u32("XML length"), "XML")).decode("latin-1")
    if version > 3:
        n_channels = cur.u32("channel count")
        if n_channels != 3:
            raise Ubo2014FormatError(f"{cur.path}: {n_channels} channels; only RGB (3) is "
                                     "supported")
        strings["channels"] = [bytes(cur.take(cur.u32("channel name length"), "channel name"))
                               .decode("latin-1") for _ in range(3)]
    if cur.pos - start != size:
        raise Ubo2014FormatError(f"{cur.path}: header size field says {size} bytes, read "
                                 f"{cur.pos - start}")
    n_views = cur.u32("view count")
    if n_views * 12 > len(cur.buf) - cur.pos:
        raise Ubo2014FormatError(f"{cur.path}: truncated — {n_views} views announced, only "
                                 f"{len(cur.buf) - cur.pos} bytes left")
    views = np.empty((n_views, 2), np.float32)
    lights = None
    for v in range(n_views):
        views[v] = cur.unpack("2f", "view angles")
        n_lights = cur.u32("light count")
        these = cur.array(np.float32, (n_lights, 2), "light angles")
        if lights is None:
            lights = these.copy()
        elif n_lights != lights.shape[0]:
            raise Ubo2014FormatError(f"{cur.path}: view {v} has {n_lights} lights, view 0 has "
                                     f"{lights.shape[0]}")
    if n_views == 0 or lights is None or lights.shape[0] == 0:
        raise Ubo2014FormatError(f"{cur.path}: no views or no lights")
    width, height = cur.unpack("2I", "image size")
    if rotations:
        cur.array(np.float32, (cur.u32("rotation count"), 9), "rotations")
    return Ubo2014File(path=cur.path, signature=sig, version=version, view_angles=views,
                       light_angles=lights, width=width, height=height, u=[], sxv=[],
                       cosine_flag=cosine, strings=strings)


def _read_dfmf(cur: _Cursor, f: Ubo2014File) -> None:
    cur.u32("component count")
    f.color_model = cur.u32("colour model")
    cur.unpack("12f", "colour mean and transform")
    if f.color_model not in (0, 11):
        raise Ubo2014FormatError(f"{cur.path}: colour model {f.color_model} is not supported "
                                 "(0 = RGB, 11 = log-YUV)")
    rows_expected = f.view_angles.shape[0] * f.light_angles.shape[0]
    for c in range(3):
        dtype = _scalar_type(cur, cur.unpack("B", "scalar size")[0])
        n_comp, rows, cols = cur.unpack("3I", f"channel {c} sizes")
        if rows != rows_expected or cols != f.width * f.height:
            raise Ubo2014FormatError(f"{cur.path}: channel {c} is {rows}x{cols}, expected "
                                     f"{rows_expected}x{f.width * f.height} (views·lights x W·H)")
        cur.take(n_comp * np.dtype(dtype).itemsize, "singular values")
        f.u.append(cur.array(dtype, (rows, n_comp), f"channel {c} U"))
        f.sxv.append(cur.array(dtype, (cols, n_comp), f"channel {c} SxV"))


def _read_fmf(cur: _Cursor, f: Ubo2014File, extended: bool) -> None:
    if extended:
        ext = cur.unpack("B", "extended header version")[0]
        if ext >= 1:
            f.dynamic_range_reduction = bool(cur.u32("dynamic range flag"))
        if ext >= 2:
            hw, hh = cur.unpack("2I", "height map size")
            cur.array(np.uint16, (hh, hw), "height map")
        if ext >= 3:
            raise Ubo2014FormatError(f"{cur.path}: FMF1 extended header version {ext} unknown")
    c0 = cur.u32("component count")
    dtype = _scalar_type(cur, cur.unpack("B", "scalar size")[0])
    c1, rows, cols = cur.unpack("3I", "matrix sizes")
    n_comp = max(1, min(c0, c1))
    rows_expected = f.view_angles.shape[0] * f.light_angles.shape[0] * 3
    if rows != rows_expected or cols != f.width * f.height:
        raise Ubo2014FormatError(f"{cur.path}: matrix is {rows}x{cols}, expected "
                                 f"{rows_expected}x{f.width * f.height}")
    cur.take(n_comp * np.dtype(dtype).itemsize, "singular values")
    u = cur.array(dtype, (rows // 3, 3, n_comp), "U")
    sxv = cur.array(dtype, (cols, n_comp), "SxV")
    f.u, f.sxv = [u[:, c] for c in range(3)], [sxv] * 3


def _scalar_type(cur: _Cursor, size: int):
    if size not in SCALAR_TYPES:
        raise Ubo2014FormatError(f"{cur.path}: scalar size {size} bytes (expected 2, 4 or 8)")
    return SCALAR_TYPES[size]


def write_ubo2014(path: str | Path, view_angles: np.ndarray, light_angles: np.ndarray,
                  u: list[np.ndarray], sxv: list[np.ndarray], width: int, height: int, *,
                  signature: str = "DFMF", data_size: int = 4, color_model: int = 0,
                  version: int = 1, dynamic_range_reduction: bool = False,
                  strings: dict | None = None) -> Path:
    """Write a BTF file in the layout :func:`read_ubo2014` reads (atomically).

    Args:
        view_angles, light_angles: [V, 2] / [L, 2] (θ, φ) radians.
        u, sxv: per channel [V·L, C] and [W·H, C] factors in file order (rows not flipped;
            see :func:`factorize_frames`). FMF files share one S×V: ``sxv[0]`` is written and
            every ``u[c]`` must have the same C.
        signature: "DFMF", "FMF0" or "FMF1" (FMF1 writes extended header version 1 with the
            ``dynamic_range_reduction`` flag).
        data_size: 2 (half), 4 (float) or 8 (double).
        version: header version 1–4 (2 adds the cosine flag, 3 an XML string, 4 channel names).
        strings: optional "measurement_setup", "image_sensor", "light_source", "xml".
    """
    strings = strings or {}
    dtype = np.dtype(SCALAR_TYPES[data_size]).newbyteorder("<")
    views = np.asarray(view_angles, "<f4")
    lights = np.asarray(light_angles, "<f4")
    extra = b""
    if version > 1:
        extra += struct.pack("<I", 0)
    if version > 2:
        xml = strings.get("xml", "").encode("latin-1")
        extra += struct.pack("<I", len(xml)) + xml
    if version > 3:
        extra += struct.pack("<I", 3) + b"".join(struct.pack("<I", 1) + c for c in (b"R", b"G",
                                                                                      b"B"))
    texts = [strings.get(k, "").encode("latin-1")[:79] for k in
             ("measurement_setup", "image_sensor", "light_source")]
    out = [b"!" + signature.encode() + SIGNATURES[signature.encode()],
           HEADER.pack(HEADER.size + len(extra), version, *texts, 1.0, 1.0, 1.0, 1.0), extra,
           struct.pack("<I", views.shape[0])]
    for view in views:
        out += [view.tobytes(), struct.pack("<I", lights.shape[0]), lights.tobytes()]
    out.append(struct.pack("<2I", width, height))
    if signature == "DFMF":
        out.append(struct.pack("<2I", u[0].shape[1], color_model) + bytes(48))
        for uc, sc in zip(u, sxv, strict=True):
            n = uc.shape[1]
            out += [struct.pack("<B3I", data_size, n, uc.shape[0], sc.shape[0]),
                    np.ones(n, dtype).tobytes(), np.asarray(uc, dtype).tobytes(),
                    np.asarray(sc, dtype).tobytes()]
    else:
        if signature == "FMF1":
            out.append(struct.pack("<BI", 1, int(dynamic_range_reduction)))
        n = u[0].shape[1]
        stacked = np.stack([np.asarray(uc, dtype) for uc in u], axis=1)  # [V·L, 3, C]
        out += [struct.pack("<IBIII", n, data_size, n, stacked.shape[0] * 3, sxv[0].shape[0]),
                np.ones(n, dtype).tobytes(), stacked.tobytes(),
                np.asarray(sxv[0], dtype).tobytes()]
    return atomic_write_bytes(path, b"".join(out))


def factorize_frames(frames: np.ndarray, rank: int | None = None):
    """Exact (or rank-truncated) per-channel SVD factors of a BTF, ready for :func:`write_ubo2014`.

    Args:
        frames: [V, L, H, W, 3] images (row order as :meth:`Ubo2014File.decode_frame` returns).
        rank: components kept per channel (default: all, so decoding reproduces the frames up
            to the storage precision).

    Returns:
        ``(u, sxv)``: lists of 3 float64 arrays [V·L, C] and [W·H, C] in file order.
    """
    n_views, n_lights, h, w, _ = frames.shape
    u, sxv = [], []
    for c in range(3):
        m = np.asarray(frames[:, :, ::-1, :, c], np.float64).reshape(n_views * n_lights, h * w)
        left, sing, right = np.linalg.svd(m, full_matrices=False)
        k = rank or sing.size
        u.append(left[:, :k])
        sxv.append((sing[:k, None] * right[:k]).T)
    return u, sxv
