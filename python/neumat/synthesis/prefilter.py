"""Prefiltered histogram-preserving synthesis: feature LoD of the synthesized planes (numpy
reference of the ``*Lod`` functions of ``shaders/acf_synthesis.slang``).

After Deliot & Heitz 2019 ("Procedural stochastic textures by tiling and blending", section on
prefiltering): the Gaussianized plane ``T`` (:mod:`.histogram`) gets a box mip chain (the chain
of :func:`neumat.material.mips.mip_chain`: level ``l`` is ``[rows >> l, cols >> l, C]``, texel
centres at ``(i + .5) / size``, as long as both sizes are even), and each level ``l`` its own
inverse LUT ``LUT_l`` (same grid as :data:`.histogram.LUT_SIZE` / ``LUT_RANGE``; ``LUT_0`` is the
plane's own). Synthesis at level ``l`` is today's synthesis with ``T_l`` read (bilinear, wrap,
the same whole-guide-texel shifts, i.e. the same UV offsets) in place of ``T`` and ``LUT_l`` in
place of ``LUT_0``; the blend per grid and its weights are unchanged.

``LUT_l`` maps the blended level-``l`` Gaussian value ``y`` to the expected exemplar value of
the level-0 texels under it: model ``(T_0, T_l)`` as jointly Gaussian with ``T_l`` the box mean
of ``T_0`` over its block, so ``Cov(T_0, T_l) = Var(T_l) = s_l²`` (``s_l``: the std of channel
``c`` of ``T_l``, measured on the chain; below 1, and 0 at a 1 × 1 level) and ``T_0 | T_l = y ~
N(y, 1 - s_l²)``::

    LUT_l(y) = E_z[LUT_0(y + sqrt(1 - s_l²) z)],  z ~ N(0, 1)

(96-point Gauss-Hermite quadrature, ``LUT_0`` read as :func:`.histogram.inverse_histogram`
reads it). ``y`` is the blended value as is, not renormalised: the variance-normalised blend
keeps the variance ``s_l²`` of two uncorrelated reads of ``T_l`` (the same formula applied to
``y / s_l`` ~ N(0, 1) would need ``LUT_0(y s_l + sqrt(1 - s_l²) z)``, the same table).

Chosen by measurement against the alternative, ``LUT_l`` histogram-matching ``T_l`` to level
``l`` of the exemplar's own chain (sorted values paired). Shipped gravel's U plane (8 channels,
256², tile 0.5, seeds 0-2, 512² points over 4 × 4 UV units), synthesized level ``l`` against
the exemplar's level ``l`` read bilinearly at the same points (what LoD without synthesis
reads); mean over channels of |std ratio - 1| and of W1 / std (analytic / empirical); the
means agree within 0.6 % of each channel's range for both (level 0: 0.019, W1 shared):

=====  ==================  ==================
level  |std ratio - 1|     W1 / std
=====  ==================  ==================
1      0.064 / 0.063       0.060 / 0.060
2      0.069 / 0.080       0.057 / 0.067
3      0.053 / 0.062       0.044 / 0.052
4      0.041 / 0.043       0.048 / 0.057
5      0.069 / 0.057       0.073 / 0.093
6      0.163 / 0.097       0.139 / 0.130
7      0.097 / 0.206       0.232 / 0.246
=====  ==================  ==================

(levels 6-7 hold 16 and 4 texels; level 8 is one texel, both give its value.)

Bundles with stored (learned) U levels (:attr:`neumat.bundle.Bundle.u_levels`, provenance
``u_filter = "learned-mip-trilinear-v1"``): the network decodes those levels, not box means of
level 0, so ``LUT_l`` histogram-matches ``T_l`` to the *stored* level ``l`` instead (per channel,
``LUT_l(y) = Q_l(F_l(y))`` with ``F_l`` the empirical CDF of ``T_l`` and ``Q_l`` the empirical
quantile function of stored level ``l``; :meth:`PrefilteredPlane.build` with ``targets``): the
synthesized level ``l`` then has the stored level's value distribution, as tiled LoD reads it.

Lookup at ``uv`` with a pixel footprint of ``2^f`` UV units (the g-buffer's ``uv.w``): ``lod =
f + log2(cols)`` (``cols`` of the plane synthesized: the U plane for features, the height map for
the relief), clamped to the last level, as :mod:`neumat.material.mips`. ``lod <= 0`` or NaN:
exactly the level-0 synthesis (the same float operations as without LoD). Otherwise levels
``floor(lod)`` and ``floor(lod) + 1`` are each synthesized and blended by ``frac(lod)``
(float32), like the trilinear lookup of :mod:`neumat.material.mips`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..material.mips import blend_levels, level_of_detail, mip_chain
from .histogram import LUT_RANGE, LUT_SIZE, GaussianizedPlane, inverse_histogram
from .tiling import SINGULARITY_WEIGHT, DualTileSample, bilinear_wrap

QUADRATURE_POINTS = 96
"""Gauss-Hermite nodes of the expectation over z in the level LUTs (module docstring)."""


@dataclass(frozen=True)
class PrefilteredPlane:
    """A Gaussianized plane's mip chain and one inverse LUT per level (module docstring)."""

    chain: list[np.ndarray]
    """float32 ``[rows >> l, cols >> l, C]`` per level; level 0 = the Gaussianized plane."""
    luts: np.ndarray
    """float32 ``[levels, C, LUT_SIZE]``; level 0 = the plane's own LUT."""

    @property
    def levels(self) -> int:
        """Levels of the chain (1: level 0 only)."""
        return len(self.chain)

    @classmethod
    def build(cls, plane: GaussianizedPlane, targets: tuple[np.ndarray, ...] = ()) -> PrefilteredPlane:
        """The chain and per-level LUTs of a Gaussianized plane (module docstring); ``targets``:
        the stored levels 1.. ``[rows >> l, cols >> l, C]`` whose values the level LUTs match
        (learned pyramids), or () for the analytic conditional-mean LUTs."""
        chain = mip_chain(plane.gaussian)
        if targets:
            return cls(chain, _matched_luts(plane, chain, targets))
        grid = np.linspace(-LUT_RANGE, LUT_RANGE, LUT_SIZE)
        z, weight = np.polynomial.hermite_e.hermegauss(QUADRATURE_POINTS)
        weight = weight / weight.sum()
        luts = [plane.lut]
        for t in chain[1:]:
            s = t.reshape(-1, t.shape[2]).std(axis=0, dtype=np.float64)
            level = []
            for c, s_c in enumerate(s):
                y = grid[:, None] + np.sqrt(max(0.0, 1.0 - s_c * s_c)) * z[None, :]
                lut0 = inverse_histogram(plane.lut[c:c + 1], y.reshape(-1, 1))[:, 0].reshape(y.shape)
                level.append(lut0.astype(np.float64) @ weight)
            luts.append(np.stack(level))
        return cls(chain, np.stack(luts).astype(np.float32))


def _matched_luts(plane: GaussianizedPlane, chain: list[np.ndarray], targets: tuple[np.ndarray, ...]) -> np.ndarray:
    """float32 ``[levels, C, LUT_SIZE]``: level 0 the plane's own LUT, level ``l`` the histogram
    match of ``chain[l]`` to ``targets[l - 1]`` (module docstring)."""
    grid = np.linspace(-LUT_RANGE, LUT_RANGE, LUT_SIZE)
    luts = [plane.lut]
    for t, target in zip(chain[1:], targets, strict=True):
        level = []
        for c in range(t.shape[2]):
            src = np.sort(t[..., c].ravel().astype(np.float64))
            dst = np.sort(np.asarray(target[..., c], np.float64).ravel())
            p = np.interp(grid, src, (np.arange(src.size) + 0.5) / src.size)
            level.append(np.interp(p, (np.arange(dst.size) + 0.5) / dst.size, dst))
        luts.append(np.stack(level))
    return np.stack(luts).astype(np.float32)


def blend_level(plane: PrefilteredPlane, level: int, uv: np.ndarray, sample: DualTileSample,
                guide: tuple[int, int]) -> np.ndarray:
    """float32 ``[..., C]``: the histogram-preserving blend of level ``level`` at ``uv``
    (``level`` 0: exactly :class:`~.synthesizer.Synthesizer`'s level-0 synthesis)."""
    t = plane.chain[level]
    t_a = bilinear_wrap(t, uv, sample.shift[0], guide)
    t_b = bilinear_wrap(t, uv, sample.shift[1], guide)
    w_a, w_b = sample.weight[0][..., None], sample.weight[1][..., None]
    eps = np.float32(SINGULARITY_WEIGHT)
    norm = np.sqrt(w_a * w_a + w_b * w_b + eps * eps)
    return inverse_histogram(plane.luts[level], (w_a * t_a + w_b * t_b) / norm)


def _take(sample: DualTileSample, sel: np.ndarray) -> DualTileSample:
    return DualTileSample(sample.tile[:, sel], sample.shift[:, sel], sample.weight[:, sel])


def blend_lod(plane: PrefilteredPlane, uv: np.ndarray, sample: DualTileSample, guide: tuple[int, int],
              footprint: np.ndarray) -> np.ndarray:
    """float32 ``[B, C]`` prefiltered synthesis at ``uv`` ``[B, 2]`` for footprints ``[B]``
    (log2 UV units; module docstring: trilinear between the levels' syntheses)."""
    uv = np.asarray(uv, np.float32)
    lod = level_of_detail(footprint, plane.chain[0].shape[1], plane.levels)
    return blend_levels(lod, blend_level(plane, 0, uv, sample, guide), plane.levels,
                        lambda level, sel: blend_level(plane, level, uv[sel], _take(sample, sel), guide))
