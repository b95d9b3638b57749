"""Dual tiling: two tile grids offset by half a tile, per-tile ACF offsets, smooth windows,
and the wrap-around bilinear fetch (numpy reference of ``shaders/acf_synthesis.slang``).

Geometry (UV units; the exemplar spans [0, 1)², u along columns, v along rows):

* grid A tiles are squares of side ``tile_size`` with corners at multiples of it; grid B is
  grid A moved by half a tile in u and v. For grid ``g``, ``a = uv / tile_size + 0.5 g``,
  tile index ``floor(a)``, fraction ``f = a - floor(a)``.
* window ``w_g = q(f_x)² q(f_y)²`` with ``q(f) = 4 f (1 - f)``: 1 at the tile centre, 0 with
  zero slope on its edges, so the tile's seams never show (a polynomial rather than ``sin²``:
  no transcendental, so shader and numpy agree to float rounding; the blend normalizes the
  weights, so they need not sum to 1). ``w_A + w_B`` is not constant and both vanish at the
  points where an edge of A crosses an edge of B (any two square grids have such points):
  :data:`SINGULARITY_WEIGHT` adds a third term there (the Gaussian mean; see
  :mod:`.synthesizer`), like InstantNeuralMaterial's "two tiles and a singularity term".
* each tile's offset is a whole-texel shift of the guide plane (:mod:`.offsets`); a point
  reads grid A's exemplar at ``uv + (dx_A / cols, dy_A / rows)`` and grid B's likewise.

All arithmetic is float32 in the order the shader uses (``precise`` there), so tile indices
and offsets match exactly and features to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .offsets import OffsetTables

SINGULARITY_WEIGHT = 0.02
"""Constant weight of the singularity term (the Gaussian mean 0): dominates only where both
windows are below ~0.02, i.e. within ~3.5 % of a tile of the A-edge x B-edge crossings."""
GRIDS = 2
"""Tile grids (A and B)."""


@dataclass(frozen=True)
class DualTileSample:
    """Where one set of points reads the exemplar, per grid (axis 0 of every array = grid).

    ``tile`` int64 ``[2, ..., 2]`` tile indices (i = column, j = row); ``shift`` int64
    ``[2, ..., 2]`` texel shifts (dx, dy) of the guide plane; ``weight`` float32 ``[2, ...]``
    window values.
    """

    tile: np.ndarray
    shift: np.ndarray
    weight: np.ndarray


def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def dual_tile_sample(uv: np.ndarray, tile_size: float, tables: OffsetTables, seed: int) -> DualTileSample:
    """Tiles, ACF offsets and window weights of both grids at ``uv``.

    Args:
        uv: float ``[..., 2]`` texture coordinates (u, v), any range (the exemplar repeats).
        tile_size: tile side in UV units (> 0).
        tables: offset CDF tables of the guide plane.
        seed: uint32 synthesis seed.
    """
    uv = _f32(uv)
    inv = np.float32(1.0 / tile_size)
    four, one = np.float32(4.0), np.float32(1.0)
    tiles, shifts, weights = [], [], []
    for grid in range(GRIDS):
        a = uv * inv + np.float32(0.5 * grid)
        cell = np.floor(a)
        f = a - cell
        tile = cell.astype(np.int64)
        dx, dy = tables.tile_offsets(tile[..., 0], tile[..., 1], grid, seed)
        q = four * f * (one - f)
        window = q * q
        tiles.append(tile)
        shifts.append(np.stack([dx, dy], axis=-1))
        weights.append(window[..., 0] * window[..., 1])
    return DualTileSample(np.stack(tiles), np.stack(shifts), _f32(np.stack(weights)))


def bilinear_wrap(plane: np.ndarray, uv: np.ndarray, shift: np.ndarray, guide_shape: tuple[int, int]) -> np.ndarray:
    """Bilinear fetch with wrap addressing at ``uv`` moved by a guide-texel shift.

    Args:
        plane: float32 ``[rows, cols, C]`` (texel centres at ``(k + 0.5) / cols``).
        uv: float32 ``[..., 2]``.
        shift: int ``[..., 2]`` (dx, dy) in texels of the guide plane.
        guide_shape: ``(rows, cols)`` of the guide plane (the shift becomes
            ``dx * cols / guide_cols`` texels of ``plane``).

    Returns:
        float32 ``[..., C]``.
    """
    rows, cols = plane.shape[:2]
    uv = _f32(uv)
    size = np.array([cols, rows], dtype=np.float32)
    ratio = np.array([cols / guide_shape[1], rows / guide_shape[0]], dtype=np.float32)
    p = uv * size + (_f32(shift) * ratio - np.float32(0.5))
    p0 = np.floor(p)
    t = p - p0
    x0 = np.mod(p0[..., 0].astype(np.int64), cols)
    y0 = np.mod(p0[..., 1].astype(np.int64), rows)
    x1, y1 = (x0 + 1) % cols, (y0 + 1) % rows
    tx, ty = t[..., 0:1], t[..., 1:2]
    top = plane[y0, x0] + tx * (plane[y0, x1] - plane[y0, x0])
    bottom = plane[y1, x0] + tx * (plane[y1, x1] - plane[y1, x0])
    return _f32(top + ty * (bottom - top))
