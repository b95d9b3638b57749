"""The visible relief frame of a prefiltered pixel: the slope of the relief the viewer sees.

A pixel that covers many relief texels does not see their mean slope. From a view direction
``ωo`` (local frame, +z = macro normal) a facet of slope ``s = (dz/du, dz/dv)`` covers
``max(1 - s·t, 0)`` units of projected area per unit of flat tile, ``t = ωo.xy / ωo.z``: facets
turned toward the viewer fill the pixel, facets turned away shrink or vanish. Their
area-weighted mean slope is what a supersampled render shades, and it tilts toward the viewer
the more grazing the view (gravel at 20° elevation: mean slope 0, weighted mean 1.15, 49°).

The slopes under a pixel are summarized by their first and second moments, ``(E[s_u], E[s_v],
E[s_u²], E[s_v²], E[s_u s_v])`` (:func:`moment_texels`, mip-mapped as the slope texels are, as
in LEAN mapping). For a Gaussian slope distribution ``N(μ, C)`` the weighted mean has a closed
form: with ``m = μ·t``, ``σ² = tᵀCt``, ``z = (1 - m) / σ`` and Φ, φ the standard normal CDF
and density,

    E[w] = (1 - m) Φ(z) + σ φ(z),        s_vis = μ - C t Φ(z) / E[w]

(:func:`visible_slope`; masking by other facets is not modelled). A single point (``C = 0``)
gives its own slope back, bit for bit, so the frame is continuous as the footprint grows from
one texel.

The frame a bundle's coarse levels are read in is ``μ + gain (s_vis - μ)``. The gain is
:data:`VISIBLE_SLOPE_GAIN`, chosen on the training data (the learned pyramid's fit to held-out
prefiltered samples of the shipped gravel, 32768 box means over the training directions, relative
L1: gain 0 0.44, 0.4 0.30, 0.5 0.287, **0.6 0.285**, 0.8 0.30, 1.0 0.33; the full tilt
overshoots, the masking it ignores hides the steepest facets that face the viewer). Bundles whose
pyramid was fitted in this frame say so with ``u_filter = "learned-mip-visible-slope-v2"``
(:mod:`.mips`); older ones read their coarse levels in the mean-slope frame (gain 0).

Arithmetic is float32, in this order, as ``shaders/relief_frame.slang`` (``visibleSlope``)
performs it; Φ is Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7), so numpy and the
shader agree to float rounding.
"""

from __future__ import annotations

import numpy as np

VISIBLE_SLOPE_GAIN = 0.6
"""Fraction of the tilt from the mean slope to the visible mean slope (module docstring)."""

_ERF_P = np.float32(0.3275911)
_ERF_A = tuple(np.float32(a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429))
_INV_SQRT2 = np.float32(0.70710678)
_INV_SQRT_2PI = np.float32(0.39894228)
MIN_VIEW_Z = np.float32(1e-3)
"""Smallest ``ωo.z`` the tilt is computed for (a view at or below the macro horizon reads as this)."""
MIN_SIGMA = np.float32(1e-8)
MIN_WEIGHT = np.float32(1e-6)


def moment_texels(slopes: np.ndarray) -> np.ndarray:
    """Float32 ``[..., 5]`` moments ``(s_u, s_v, s_u², s_v², s_u s_v)`` of slopes ``[..., 2]``."""
    g = np.asarray(slopes, np.float32)
    return np.concatenate([g, g * g, g[..., :1] * g[..., 1:]], axis=-1).astype(np.float32)


def normal_cdf_and_density(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float32 ``(Φ(z), φ(z))`` of float32 ``z`` (module docstring: A&S 7.1.26)."""
    z = np.asarray(z, np.float32)
    e = np.exp(np.float32(-0.5) * z * z).astype(np.float32)
    k = np.float32(1) / (np.float32(1) + _ERF_P * (np.abs(z) * _INV_SQRT2))
    a1, a2, a3, a4, a5 = _ERF_A
    tail = np.float32(0.5) * (k * (a1 + k * (a2 + k * (a3 + k * (a4 + k * a5))))) * e
    cdf = np.where(z >= 0, np.float32(1) - tail, tail).astype(np.float32)
    return cdf, (e * _INV_SQRT_2PI).astype(np.float32)


def visible_slope(moments: np.ndarray, wo: np.ndarray, gain: float = VISIBLE_SLOPE_GAIN) -> np.ndarray:
    """Float32 ``[B, 2]`` slope of the visible frame, ``μ + gain (s_vis - μ)`` (module
    docstring), of slope moments ``[B, 5]`` (:func:`moment_texels`, blended) seen from unit
    directions ``wo`` ``[B, 3]`` (local frame)."""
    m5 = np.asarray(moments, np.float32)
    wo = np.asarray(wo, np.float32)
    mu_u, mu_v = m5[:, 0], m5[:, 1]
    c_uu = np.maximum(m5[:, 2] - mu_u * mu_u, np.float32(0))
    c_vv = np.maximum(m5[:, 3] - mu_v * mu_v, np.float32(0))
    c_uv = m5[:, 4] - mu_u * mu_v
    inv_z = np.float32(1) / np.maximum(wo[:, 2], MIN_VIEW_Z)
    t_u, t_v = wo[:, 0] * inv_z, wo[:, 1] * inv_z
    ct_u = c_uu * t_u + c_uv * t_v
    ct_v = c_uv * t_u + c_vv * t_v
    sigma = np.sqrt(np.maximum(ct_u * t_u + ct_v * t_v, np.float32(0)))
    c = np.float32(1) - (mu_u * t_u + mu_v * t_v)
    cdf, density = normal_cdf_and_density(c / np.maximum(sigma, MIN_SIGMA))
    ratio = cdf / np.maximum(c * cdf + sigma * density, MIN_WEIGHT)
    g = np.float32(gain)
    return np.stack([mu_u - g * (ct_u * ratio), mu_v - g * (ct_v * ratio)], axis=-1).astype(np.float32)


def synthesized_moments(slope: np.ndarray, lod: np.ndarray, covariances: np.ndarray) -> np.ndarray:
    """Float32 ``[B, 5]`` moments of a prefiltered slope ``[B, 2]`` of a relief without moment
    chain (the synthesized one) at slope-chain levels of detail ``lod`` ``[B]``: the slope and
    its square plus the per-level covariances ``[levels, 3]`` ``(C_uu, C_vv, C_uv)`` of that
    relief (:func:`neumat.synthesis.relief.slope_covariances`) blended between levels floor(lod)
    and floor(lod) + 1 (zero where lod <= 0 or NaN)."""
    s = np.asarray(slope, np.float32)
    lod = np.nan_to_num(np.asarray(lod, np.float32), nan=0.0)
    top = len(covariances) - 1
    lo = np.clip(np.floor(np.maximum(lod, 0)).astype(np.int64), 0, top)
    frac = (np.maximum(lod, 0) - lo.astype(np.float32))[:, None]
    cov = covariances[lo] + (covariances[np.minimum(lo + 1, top)] - covariances[lo]) * frac
    cov = np.where((lod > 0)[:, None], cov, np.float32(0)).astype(np.float32)
    out = moment_texels(s)
    out[:, 2:] += cov
    return out
