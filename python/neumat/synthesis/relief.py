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

With a pixel footprint of ``2^f`` UV units: the lod of the tiled relief's slope one level finer,
:func:`neumat.material.mips.slope_level_of_detail` of ``f - 1`` (:data:`SLOPE_LEVEL_SHIFT`;
counted in U texels: the level-0 slope while the footprint is at most two U texels, then the
height map's levels); ``lod <= 0`` or NaN: the level-0 slope; else the slopes of levels
``floor(lod)`` and ``floor(lod) + 1`` blended by ``frac(lod)``. One level finer because a
level's central difference spans two of its texels, so the slope of the level-``l`` heights is
about as smooth as the tiled chain's mean slope one level up (shipped gravel, rms slope at U lod
1 / 2 / 3 / 4: tiled chain 0.71 / 0.40 / 0.17 / 0.065; synthesized at the same lod 0.53 / 0.20 /
0.060 / 0.013, one level finer 0.92 / 0.53 / 0.20 / 0.060). Receding gravel plane against 4 x 4
supersampling, synthesis on, visible frame (FLIP): 0.134 at the same lod, 0.114 one level finer
(0.116 without LoD).

The visible relief frame (:mod:`neumat.material.visible_slope`) needs the slopes' covariance
under a pixel, which the synthesized relief has no chain of: :func:`slope_covariances` gives it
per level, the synthesized relief's total slope covariance minus that of its level-``l`` slope
(the variance a level-``l`` texel hides, by the law of total variance).
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


SLOPE_LEVEL_SHIFT = 1.0
"""Levels finer than the tiled relief's slope lod the synthesized slope is read at (module docstring)."""
COVARIANCE_SAMPLES = 16384
"""Points :func:`slope_covariances` measures the synthesized relief's slopes at."""


def slope_covariances(synth, extent: float, normals: bool = False, samples: int = COVARIANCE_SAMPLES) -> np.ndarray:
    """Float32 ``[levels, 3]`` ``(C_uu, C_vv, C_uv)`` per level of the synthesized relief's
    height chain: the covariance of its level-0 slope (v4's point slope for ``normals``) over
    ``samples`` points spread over 16 x 16 tiles (fixed seed), minus that of its level-``l``
    slope, diagonal clamped at 0; level 0 zeros (module docstring)."""
    uv = (np.random.default_rng(0x434F56).random((samples, 2)) * 16.0).astype(np.float32)

    def covariance(slope: np.ndarray) -> np.ndarray:
        return np.cov(slope.astype(np.float64).T, bias=True)

    total = covariance(level_slope(synth, uv, extent, 0, normals))
    rows = [np.zeros(3)]
    for level in range(1, synth.height_prefiltered.levels):
        c = total - covariance(level_slope(synth, uv, extent, level))
        rows.append([max(c[0, 0], 0.0), max(c[1, 1], 0.0), c[0, 1]])
    return np.asarray(rows, np.float32)


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
    lod = slope_level_of_detail(np.asarray(footprint, np.float32) - np.float32(SLOPE_LEVEL_SHIFT),
                                synth.u_plane.gaussian.shape[1], plane.chain[0].shape[1], plane.levels)
    return blend_levels(lod, out, plane.levels, lambda level, sel: level_slope(synth, uv[sel], extent, level))
