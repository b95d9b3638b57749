"""The slope of the synthesized relief, at level 0 and prefiltered (numpy reference of the
``relief_slope`` output of ``shaders/acf_synthesis.slang``; the relief frame's arithmetic is
:mod:`neumat.material.relief` / ``shaders/relief_frame.slang``).

Level ``l`` relief: the synthesized height at level ``l`` (:mod:`.prefilter`, integer level, its
own LUT) at the texel centres of level ``l``'s grid, ``((x, y) + .5) / (cols >> l, rows >> l)``
(float32, unbounded: the synthesis does not repeat). Its slope at ``uv`` is the relief frame's
(:mod:`neumat.material.relief`: central differences ``(H(x + 1) - H(x - 1)) * (cols_l / 2) *
extent``, then bilinear at ``uv``), on the level's texel spacing. Level 0 is exactly the
synthesis pass's slope without LoD; for v4 bundles (``normals``) its point slope is that of the
interpolated unit texel normals, ``-m.xy / m.z`` (:mod:`neumat.material.relief`, step 2), and
the coarser levels stay the bilinear slopes, as the tiled relief's chain does.

With a pixel footprint of ``2^f`` UV units: the lod of the tiled relief's slope,
:func:`neumat.material.mips.slope_level_of_detail` (counted in U texels: the level-0 slope while
the footprint is at most one U texel, then the height map's levels); ``lod <= 0`` or NaN: the
level-0 slope; else the slopes of levels ``floor(lod)`` and ``floor(lod) + 1`` blended by ``frac(lod)``.
The prefiltered relief flattens as the levels coarsen (at the last, 1 × 1 level of a
power-of-two map every texel has the same value: slope 0, the macro frame), as the mean slope
of the tiled relief does (:mod:`neumat.material.mips`).
"""

from __future__ import annotations

import numpy as np

from ..material.mips import blend_levels, slope_level_of_detail
from ..material.relief import normal_slope, normal_texels
from .prefilter import blend_level
from .tiling import dual_tile_sample


def level_slope(synth, uv: np.ndarray, extent: float, level: int, normals: bool = False) -> np.ndarray:
    """float32 ``[B, 2]`` (dz/du, dz/dv) of the level-``level`` synthesized relief at float32
    ``uv`` ``[B, 2]``; ``synth`` a :class:`~.synthesizer.Synthesizer` with a height map,
    ``extent`` = h_max - h_min (UV units); ``normals``: the slope of the bilinear unit texel
    normals instead of the bilinear slope texels (v4's point slope)."""
    plane = synth.height_prefiltered
    rows, cols = plane.chain[level].shape[:2]
    uv = np.asarray(uv, np.float32)
    size = np.array([cols, rows], np.float32)
    g = uv * size - np.float32(0.5)
    base = np.floor(g)
    f = g - base
    # heights on the 4 x 4 texels around each uv: texel (x, y) = base + (i - 1, j - 1)
    ij = np.stack(np.meshgrid(np.arange(-1, 3), np.arange(-1, 3), indexing="xy"), -1).reshape(-1, 2)
    centres = ((base[:, None, :] + ij.astype(np.float32)) + np.float32(0.5)) / size
    flat = centres.reshape(-1, 2)
    sample = dual_tile_sample(flat, synth.config.tile_size, synth.tables, synth.config.seed)
    h = blend_level(plane, level, flat, sample, synth.tables.shape)[:, 0].reshape(len(uv), 4, 4)
    half_cols, half_rows = np.float32(cols) * np.float32(0.5), np.float32(rows) * np.float32(0.5)
    e = np.float32(extent)
    du = (h[:, 1:3, 2:4] - h[:, 1:3, 0:2]) * half_cols * e  # [B, y, x] for y, x in {0, 1}
    dv = (h[:, 2:4, 1:3] - h[:, 0:2, 1:3]) * half_rows * e
    fx, fy = f[:, 0:1], f[:, 1:2]
    gx, gy = np.float32(1) - fx, np.float32(1) - fy
    g00, g01 = np.stack([du[:, 0, 0], dv[:, 0, 0]], -1), np.stack([du[:, 0, 1], dv[:, 0, 1]], -1)
    g10, g11 = np.stack([du[:, 1, 0], dv[:, 1, 0]], -1), np.stack([du[:, 1, 1], dv[:, 1, 1]], -1)
    if normals:
        g00, g01, g10, g11 = (normal_texels(g) for g in (g00, g01, g10, g11))
    top = g00 * gx + g01 * fx
    bottom = g10 * gx + g11 * fx
    out = (top * gy + bottom * fy).astype(np.float32)
    return normal_slope(out) if normals else out


def relief_slope(synth, uv: np.ndarray, extent: float, footprint: np.ndarray | None = None,
                 normals: bool = False) -> np.ndarray:
    """float32 ``[B, 2]`` slope of the synthesized relief at ``uv`` ``[B, 2]``; with footprints
    ``[B]`` (log2 UV units) the prefiltered slope; ``normals``: v4's point slope at level 0
    (module docstring)."""
    uv = np.asarray(uv, np.float32)
    out = level_slope(synth, uv, extent, 0, normals)
    if footprint is None:
        return out
    plane = synth.height_prefiltered
    lod = slope_level_of_detail(footprint, synth.u_plane.gaussian.shape[1], plane.chain[0].shape[1], plane.levels)
    return blend_levels(lod, out, plane.levels, lambda level, sel: level_slope(synth, uv[sel], extent, level))
