"""Feature LoD: the U plane's mip chain and its trilinear lookup (the infer pass's
``shaders/feature_planes.slang`` uPlaneInto, and the numpy reference of it); the relief frame's
slope texels (:mod:`.relief`) are prefiltered the same way (reliefSlopeAt).

Chain: level 0 is the plane itself ``[rows, cols, C]``; level L is the 2×2 box average of level
L-1 (texel (r, c) of L covers texels 2r..2r+1, 2c..2c+1 of L-1, so texel centres stay at
(i + 0.5) / size and a level still tiles with period 1 in uv), for as long as both sizes are
even — down to 1×1 for power-of-two planes.

Lookup at uv with a pixel footprint of 2^f UV units (the g-buffer's ``uv.w``,
:mod:`neumat.render.passes.base`): ``lod = f + log2(cols)`` (log2 of the footprint in level-0
texels, along u; the levels are square for square planes), clamped to the last level. lod <= 0
(footprint at most one texel, or NaN): exactly the level-0 bilinear lookup, the same float
operations as without LoD. Otherwise the bilinear (wrapping) lookups of levels floor(lod) and
floor(lod) + 1 blended by frac(lod) (float32).

Which chain a bundle is read through (:func:`u_chain`, the one function every renderer asks):
averaged features decode to averaged appearance only for a material trained for it. Three ways,
named by provenance ``u_filter`` (:data:`U_FILTER_KEY`):

* ``"learned-mip-visible-slope-v2"`` (:data:`LEARNED_MIP_VISIBLE`, the default): level 0 and
  the MLP are trained on point samples only; a final phase fits free coarse levels 1..L
  (initialised from this module's box chain of level 0) on prefiltered samples through the same
  trilinear lookup, with level 0, the H/D planes and the quantized MLP frozen
  (NeuMIP-style decoupled pyramid; :attr:`neumat.train.TrainConfig.lod_pyramid`). The levels are
  stored in the bundle (:attr:`neumat.bundle.Bundle.u_levels`); every read at level 0 is the
  point-trained bundle's, bit for bit. A relief-frame bundle's coarse reads take their H/D
  coordinates in the *visible* relief frame (:mod:`.visible_slope`: the slope the viewer sees
  under the pixel, tilted toward it), which the frozen decoder turns into the darkening of
  grazing box means that the mean-slope frame could not express (shipped gravel, receding plane
  vs 4 x 4 supersampling, FLIP: 0.141 in the mean-slope frame, 0.113 here, 0.121 without LoD).
* ``"learned-mip-trilinear-v1"`` (:data:`LEARNED_MIP`, bundles of 2026-12-07): the same, coarse
  reads in the mean-slope frame.
* ``"box-mip-trilinear-v1"`` (:data:`BOX_MIP`, bundles of 2026-12-05/06): level 0 trained jointly
  on point and prefiltered samples through the box chain (:func:`mip_chain`), which renderers
  rebuild.

:func:`trained_for_lod` is true for all three; renderers turn feature LoD on for them by default. A
bundle trained on point samples alone reads level 0 (with the shipped point-trained gravel of
2026-12-04, the box chain made a receding plane worse against 16x supersampling: FLIP 0.197 vs
0.109).

With feature LoD, a relief-frame bundle's slope is read through the mip chain of its slope
texels as well, by the same lod (:func:`slope_level_of_detail`): the exact level-0 slope while
the footprint is at most one U texel (``lod <= 0``, so nothing a pixel reads changes before its
features do), then ``lod + log2(height cols / U cols)`` of the slope chain, reached linearly over
the first U level (``lod * (1 + offset)`` for ``0 < lod < 1``, so the level is continuous in the
footprint), clamped to ``[0, last level]``. The frame of a pixel that covers many texels is the
mean slope under it, which tends to the macro frame as the footprint grows to the tile (a
periodic relief's mean slope is 0). (Until 2026-12-07 the slope used its own rule, ``lod =
f + log2(height cols)``: with 1024² heights under a 512² U plane a basket weave's grazing pixel of
~1.8 height texels read the slope at lod 0.85 while its features stayed at level 0.)

With ACF synthesis on, the synthesized U features and relief slope are prefiltered by the same
rule (:mod:`neumat.synthesis.prefilter`, :mod:`neumat.synthesis.relief`: this module's chain of
the Gaussianized planes, per-level inverse LUTs), in the synthesis pass; the infer pass (INT8
MLP included) reads them as given.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .common import bilinear_lookup_np
from .visible_slope import VISIBLE_SLOPE_GAIN


U_FILTER_KEY = "u_filter"
"""Bundle provenance key naming how the U plane was trained to be filtered."""
BOX_MIP = "box-mip-trilinear-v1"
""":data:`U_FILTER_KEY` of a U plane trained jointly on point and prefiltered samples through the
box chain (:func:`mip_chain`; module docstring)."""
LEARNED_MIP = "learned-mip-trilinear-v1"
""":data:`U_FILTER_KEY` of a bundle whose coarse U levels were fitted after level 0 and stored
(:attr:`neumat.bundle.Bundle.u_levels`; module docstring)."""
LEARNED_MIP_VISIBLE = "learned-mip-visible-slope-v2"
""":data:`U_FILTER_KEY` of a bundle whose learned coarse levels were fitted in the visible relief
frame (:mod:`.visible_slope`; the default since 2026-12-07's second revision)."""
LOD_FILTERS = (LEARNED_MIP_VISIBLE, LEARNED_MIP, BOX_MIP)
"""Every :data:`U_FILTER_KEY` value a renderer reads with feature LoD."""


def trained_for_lod(provenance: dict) -> bool:
    """Whether a bundle's U plane was trained to be read through a mip chain (module docstring)."""
    return provenance.get(U_FILTER_KEY) in LOD_FILTERS


def visible_gain(provenance: dict) -> float:
    """The gain of the visible relief frame a bundle's coarse levels are read in
    (:data:`.visible_slope.VISIBLE_SLOPE_GAIN` for :data:`LEARNED_MIP_VISIBLE`, else 0: the mean
    slope under the pixel)."""
    return VISIBLE_SLOPE_GAIN if provenance.get(U_FILTER_KEY) == LEARNED_MIP_VISIBLE else 0.0


def u_chain(bundle) -> list[np.ndarray]:
    """The U-plane chain a renderer reads with feature LoD: float32 ``[rows >> l, cols >> l, C]``
    per level, level 0 the bundle's U plane; levels 1.. the bundle's stored (learned) levels
    when it has them (:attr:`neumat.bundle.Bundle.u_levels`), else the box chain of level 0
    (:func:`mip_chain`: older bundles). The INM (Falcor) export writes level 0 only."""
    plane = np.asarray(bundle.planes["U"], np.float32)
    levels = getattr(bundle, "u_levels", ())
    if levels:
        return [plane, *(np.asarray(level, np.float32) for level in levels)]
    return mip_chain(plane)


def mip_chain(plane: np.ndarray) -> list[np.ndarray]:
    """``[level 0, level 1, ...]`` float32 ``[rows_L, cols_L, C]`` (module docstring).

    Raises:
        ValueError: ``plane`` is not ``[rows, cols, C]``.
    """
    p = np.asarray(plane, np.float32)
    if p.ndim != 3:
        raise ValueError(f"a feature plane is [rows, cols, C], got shape {p.shape}")
    chain = [p]
    while chain[-1].shape[0] % 2 == 0 and chain[-1].shape[1] % 2 == 0:
        q = chain[-1]
        r, c, ch = q.shape
        chain.append(q.reshape(r // 2, 2, c // 2, 2, ch).mean(axis=(1, 3), dtype=np.float32))
    return chain


def level_of_detail(footprint_log2: np.ndarray, cols: int, levels: int) -> np.ndarray:
    """float32 ``lod = footprint + log2(cols)`` clamped to ``levels - 1`` (module docstring) of
    footprints ``[B]`` (log2 UV units) on a chain whose level 0 is ``cols`` texels wide."""
    return np.minimum(np.asarray(footprint_log2, np.float32) + np.float32(np.log2(cols)), np.float32(levels - 1))


def slope_level_of_detail(footprint_log2: np.ndarray, u_cols: int, cols: int, levels: int) -> np.ndarray:
    """float32 lod of the slope chain (level 0 ``cols`` texels wide, ``levels`` levels) for
    footprints ``[B]`` (log2 UV units) of a bundle whose U plane is ``u_cols`` wide (module
    docstring): ``lod_U = footprint + log2(u_cols)``; ``<= 0`` (or NaN) stays as is (level 0, the
    exact slope); else ``lod_U * (1 + offset)`` below 1 and ``lod_U + offset`` from 1 on, offset
    = log2(cols) - log2(u_cols), clamped to ``[0, levels - 1]`` (0 reads level 0 as well)."""
    lod_u = np.asarray(footprint_log2, np.float32) + np.float32(np.log2(u_cols))
    offset = np.float32(np.log2(cols)) - np.float32(np.log2(u_cols))
    with np.errstate(invalid="ignore"):
        ramp = np.where(lod_u < 1, lod_u * (np.float32(1) + offset), lod_u + offset).astype(np.float32)
        return np.where(lod_u > 0, np.clip(ramp, np.float32(0), np.float32(levels - 1)), lod_u).astype(np.float32)


def trilinear_lookup_np(chain: list[np.ndarray], st: np.ndarray, footprint_log2: np.ndarray) -> np.ndarray:
    """float32 ``[B, C]`` features of ``chain`` at ``st`` ``[B, 2]`` for footprints ``[B]`` (log2 UV
    units), wrapping (module docstring)."""
    return lookup_at_lod_np(chain, st, level_of_detail(footprint_log2, chain[0].shape[1], len(chain)))


def blend_levels(lod: np.ndarray, level0: np.ndarray, levels: int,
                 read: Callable[[int, np.ndarray], np.ndarray]) -> np.ndarray:
    """float32 ``[B, C]``: the trilinear blend of a chain's levels at levels of detail ``lod``
    ``[B]`` — ``level0`` (the level-0 values ``[B, C]``, kept where ``lod <= 0`` or NaN), else
    levels floor(lod) and floor(lod) + 1 (at most ``levels - 1``) blended by frac(lod) as
    ``a + (b - a) * frac``; ``read(level, sel)`` gives level ``level``'s ``[len(sel), C]`` values
    at the samples ``sel`` (indices into B). Updates and returns ``level0``."""
    out = level0
    minified = np.flatnonzero(lod > 0)
    if minified.size == 0:
        return out
    lo = np.floor(lod[minified]).astype(np.int64)
    frac = (lod[minified] - lo.astype(np.float32))[:, None]
    for level in np.unique(lo):
        pick = lo == level
        sel = minified[pick]
        a = out[sel] if level == 0 else read(int(level), sel)
        b = read(int(min(level + 1, levels - 1)), sel)
        out[sel] = a + (b - a) * frac[pick]
    return out


def lookup_at_lod_np(chain: list[np.ndarray], st: np.ndarray, lod: np.ndarray) -> np.ndarray:
    """float32 ``[B, C]`` wrapping lookup of ``chain`` at ``st`` ``[B, 2]`` and float32 levels of
    detail ``[B]``: level-0 bilinear where ``lod <= 0`` (or NaN), else levels floor(lod) and
    floor(lod) + 1 blended by frac(lod) (:func:`blend_levels`)."""
    st = np.asarray(st, np.float32)
    return blend_levels(np.asarray(lod, np.float32), bilinear_lookup_np(chain[0], st, True), len(chain),
                        lambda level, sel: bilinear_lookup_np(chain[level], st[sel], True))
