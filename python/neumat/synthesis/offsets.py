"""Deterministic per-tile offsets drawn from the curved-ACF pdf (numpy reference of the hash
and inverse-CDF sampling in ``shaders/acf_synthesis.slang``).

Each tile ``(i, j)`` (column, row index; may be negative) of tile grid ``g`` (0 = A, 1 = B)
gets two uniforms from a 32-bit integer hash of ``(i, j, g, seed)``; the first picks the row
shift ``dy`` by inverting the marginal CDF over rows, the second the column shift ``dx`` by
inverting that row's conditional CDF. Shifts are whole texels of the guide plane; as UV offsets
they are ``(dx / cols, dy / rows)``.

Both sides compute in uint32 / float32 with the same operations, so offsets are identical:

* ``hash32`` is "lowbias32" (Chris Wellons' integer hash);
  ``h = hash32(seed ^ hash32(g ^ hash32(uint(j) ^ hash32(uint(i)))))``, ``h1 = hash32(h)``,
  ``h2 = hash32(h1)``; uniforms ``u = (h >> 8) * 2^-24`` (exact in float32, in [0, 1)).
* CDF tables are float32, each ending at exactly 1.0; the sample is the first index whose CDF
  value is ``> u`` (``np.searchsorted(cdf, u, side="right")``; binary search in Slang).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .acf import OffsetPdf

_M32 = np.uint64(0xFFFFFFFF)


def hash32(x: np.ndarray) -> np.ndarray:
    """lowbias32 integer hash, elementwise on uint32 arrays (returns uint32)."""
    x = np.asarray(x, dtype=np.uint64) & _M32
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & _M32
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & _M32
    x ^= x >> np.uint64(16)
    return x.astype(np.uint32)


def tile_uniforms(i: np.ndarray, j: np.ndarray, grid: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two float32 uniforms in [0, 1) per tile (see the module docstring).

    Args:
        i, j: int tile column / row indices (any shape, broadcastable).
        grid: 0 for tile grid A, 1 for grid B.
        seed: uint32 synthesis seed.
    """
    ui = np.asarray(i, dtype=np.int64).astype(np.uint32)
    uj = np.asarray(j, dtype=np.int64).astype(np.uint32)
    h = hash32(np.uint32(seed) ^ hash32(np.uint32(grid) ^ hash32(uj ^ hash32(ui))))
    h1 = hash32(h)
    h2 = hash32(h1)
    scale = np.float32(2.0**-24)
    return (h1 >> np.uint32(8)).astype(np.float32) * scale, (h2 >> np.uint32(8)).astype(np.float32) * scale


@dataclass(frozen=True)
class OffsetTables:
    """Inverse-CDF tables of an :class:`~.acf.OffsetPdf`, as uploaded to the GPU.

    ``marginal`` float32 ``[rows]``: CDF over row shifts ``dy``. ``conditional`` float32
    ``[rows, cols]``: per row, the CDF over column shifts ``dx`` (rows without mass are a
    uniform CDF; they are never selected). Every CDF ends at exactly 1.0.
    """

    marginal: np.ndarray
    conditional: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the guide plane."""
        return self.conditional.shape  # type: ignore[return-value]

    @classmethod
    def from_pdf(cls, pdf: OffsetPdf | np.ndarray) -> OffsetTables:
        """Build the tables from a pdf (``OffsetPdf`` or a non-negative ``[rows, cols]``)."""
        p = np.asarray(pdf.pdf if isinstance(pdf, OffsetPdf) else pdf, dtype=np.float64)
        if p.ndim != 2 or p.min() < 0 or not p.sum() > 0:
            raise ValueError("pdf must be a non-negative [rows, cols] array with positive mass")
        row_mass = p.sum(axis=1)
        marginal = np.cumsum(row_mass) / row_mass.sum()
        cols = p.shape[1]
        uniform = np.arange(1, cols + 1) / cols
        safe = np.where(row_mass[:, None] > 0, row_mass[:, None], 1.0)
        conditional = np.where(row_mass[:, None] > 0, np.cumsum(p, axis=1) / safe, uniform)
        marginal = marginal.astype(np.float32)
        conditional = conditional.astype(np.float32)
        marginal[-1] = 1.0
        conditional[:, -1] = 1.0
        return cls(marginal, np.ascontiguousarray(conditional))

    def sample(self, u1: np.ndarray, u2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Texel shifts ``(dx, dy)`` (int64, in [0, cols) x [0, rows)) for float32 uniforms."""
        rows, cols = self.shape
        dy = np.minimum(np.searchsorted(self.marginal, u1, side="right"), rows - 1)
        flat = self.conditional.ravel()
        # Search each row's CDF: offsetting by the row index keeps one sorted searchsorted call.
        shifted = (flat + np.repeat(np.arange(rows, dtype=np.float64), cols)).astype(np.float64)
        dx = np.searchsorted(shifted, dy + np.asarray(u2, dtype=np.float64), side="right") - dy * cols
        return np.minimum(dx, cols - 1), dy

    def tile_offsets(self, i: np.ndarray, j: np.ndarray, grid: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Texel shifts ``(dx, dy)`` of tiles ``(i, j)`` of ``grid`` (see module docstring)."""
        u1, u2 = tile_uniforms(i, j, grid, seed)
        return self.sample(u1, u2)
