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

Which bundles read it: averaged features decode to averaged appearance only for a material
trained that way — on prefiltered samples (:attr:`neumat.data.PointBtfConfig.lod_fraction`)
through the same chain (:func:`neumat.models.triple_plane.trilinear_lookup`). Such bundles carry
provenance ``u_filter = "box-mip-trilinear-v1"`` (:data:`U_FILTER_KEY`, :data:`BOX_MIP`), and
renderers turn feature LoD on for them by default (:func:`trained_for_lod`); a bundle trained on
point samples alone reads level 0 (with the shipped point-trained gravel of 2026-12-04, LoD
made a receding plane worse against 16x supersampling: FLIP 0.197 vs 0.109).

With feature LoD, a relief-frame bundle's slope is read through the mip chain of its slope
texels as well (by the same footprint, ``lod = f + log2(height cols)``): the frame of a pixel
that covers many texels is the mean slope under it, which tends to the macro frame as the
footprint grows to the tile (a periodic relief's mean slope is 0). Without it the frame keeps
the level-0 slope's per-texel noise while the features are averaged, and a receding gravel
plane stayed as speckled as without LoD.

With ACF synthesis on, the synthesized U features and relief slope are prefiltered by the same
rule (:mod:`neumat.synthesis.prefilter`, :mod:`neumat.synthesis.relief`: this module's chain of
the Gaussianized planes, per-level inverse LUTs), in the synthesis pass; the infer pass (INT8
MLP included) reads them as given.
"""

from __future__ import annotations

import numpy as np

from .common import bilinear_lookup_np


U_FILTER_KEY = "u_filter"
"""Bundle provenance key naming how the U plane was trained to be filtered."""
BOX_MIP = "box-mip-trilinear-v1"
""":data:`U_FILTER_KEY` of a U plane trained on prefiltered samples through this module's chain."""


def trained_for_lod(provenance: dict) -> bool:
    """Whether a bundle's U plane was trained to be read through its mip chain (module docstring)."""
    return provenance.get(U_FILTER_KEY) == BOX_MIP


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


def trilinear_lookup_np(chain: list[np.ndarray], st: np.ndarray, footprint_log2: np.ndarray) -> np.ndarray:
    """float32 ``[B, C]`` features of ``chain`` at ``st`` ``[B, 2]`` for footprints ``[B]`` (log2 UV
    units), wrapping (module docstring)."""
    st = np.asarray(st, np.float32)
    lod = level_of_detail(footprint_log2, chain[0].shape[1], len(chain))
    out = bilinear_lookup_np(chain[0], st, True)
    minified = np.flatnonzero(lod > 0)
    if minified.size == 0:
        return out
    lo = np.floor(lod[minified]).astype(np.int64)
    frac = (lod[minified] - lo.astype(np.float32))[:, None]
    for level in np.unique(lo):
        sel = minified[lo == level]
        a = bilinear_lookup_np(chain[level], st[sel], True)
        f = frac[lo == level]
        b = bilinear_lookup_np(chain[min(level + 1, len(chain) - 1)], st[sel], True)
        out[sel] = a + (b - a) * f
    return out
