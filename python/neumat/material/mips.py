"""Feature LoD: the U plane's mip chain and its trilinear lookup (the infer pass's
``shaders/infer.slang`` uPlaneInto, and the numpy reference of it).

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
"""

from __future__ import annotations

import numpy as np

from ..material import bilinear_lookup_np


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


def trilinear_lookup_np(chain: list[np.ndarray], st: np.ndarray, footprint_log2: np.ndarray) -> np.ndarray:
    """float32 ``[B, C]`` features of ``chain`` at ``st`` ``[B, 2]`` for footprints ``[B]`` (log2 UV
    units), wrapping (module docstring)."""
    st = np.asarray(st, np.float32)
    lod = np.minimum(np.asarray(footprint_log2, np.float32) + np.float32(np.log2(chain[0].shape[1])),
                     np.float32(len(chain) - 1))
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
