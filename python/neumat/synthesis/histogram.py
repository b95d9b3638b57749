"""Per-channel histogram transform: Gaussianize a plane and map Gaussian values back.

The variance-preserving blend of Heitz & Neyret 2018 ("High-performance by-example noise using
a histogram-preserving blending operator") and Deliot & Heitz 2019 ("Procedural stochastic
textures by tiling and blending") works on a Gaussianized copy ``T`` of the exemplar: each
channel is pushed through its own empirical CDF and then the standard-normal quantile, so
``T[..., c] ~ N(0, 1)``. After blending in ``T`` space, values return to the exemplar's
histogram through an inverse lookup table.

Conventions (shared with ``shaders/acf_synthesis.slang``):

* ``T[r, k, c] = Phi^-1((rank + 0.5) / N)`` with ``rank`` the 0-based position of texel
  ``(r, k)`` in channel ``c`` sorted ascending (ties broken by memory order, so equal values
  get distinct Gaussian values and map back to the same value).
* The inverse LUT samples the Gaussian domain uniformly: entry ``i`` of :data:`LUT_SIZE`
  holds the exemplar quantile at ``Phi(g_i)``, ``g_i = -LUT_RANGE + 2 LUT_RANGE i / (LUT_SIZE
  - 1)``; lookups interpolate linearly between entries and clamp outside ``[-LUT_RANGE,
  LUT_RANGE]``. Uniform in ``g`` (not in ``Phi(g)`` as Deliot & Heitz store it) so the shader
  needs no ``erf``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

LUT_SIZE = 1024
"""Entries per channel of the inverse-histogram table."""
LUT_RANGE = 4.5
"""Half-width of the Gaussian domain the table covers (Phi^-1(0.5 / 4096²) = -5.42; beyond 4.5
sigma lies 7e-6 of the mass, clamped to the exemplar's extreme quantiles)."""


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF ``Phi(x)``, float64 (``math.erfc`` per element: small inputs only)."""
    x = np.asarray(x, dtype=np.float64)
    return np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x.ravel()]).reshape(x.shape)


@lru_cache(maxsize=1)
def _quantile_table() -> tuple[np.ndarray, np.ndarray]:
    grid = np.linspace(-10.0, 10.0, 40001)
    return normal_cdf(grid), grid


def normal_quantile(p: np.ndarray) -> np.ndarray:
    """Standard normal quantile ``Phi^-1(p)`` for p in (0, 1), float64: linear interpolation of
    a 40001-point table on [-10, 10], lower half only and mirrored (``Phi^-1(p) =
    -Phi^-1(1 - p)``), so both tails are equally exact (abs. error < 1e-5 for p in [1e-12,
    1 - 1e-12]). numpy only: no scipy in a render-only install."""
    cdf, grid = _quantile_table()
    p = np.asarray(p, dtype=np.float64)
    lower = np.minimum(p, 1.0 - p)
    q = np.interp(lower, cdf[:20001], grid[:20001])
    return np.where(p <= 0.5, q, -q)


@dataclass(frozen=True)
class GaussianizedPlane:
    """A plane in Gaussian space plus the tables that map it back.

    ``gaussian`` float32 ``[rows, cols, C]`` (same axes as the source plane: row = v,
    col = u); ``lut`` float32 ``[C, LUT_SIZE]`` (inverse histogram per channel).
    """

    gaussian: np.ndarray
    lut: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(rows, cols, channels)``."""
        return self.gaussian.shape  # type: ignore[return-value]


def gaussianize(plane: np.ndarray) -> GaussianizedPlane:
    """Histogram-transform every channel of ``plane`` to a standard normal.

    Args:
        plane: ``[rows, cols, C]`` or ``[rows, cols]`` (one channel), any float dtype.

    Returns:
        :class:`GaussianizedPlane` (float32), ``lut`` as described in the module docstring.
    """
    values = np.asarray(plane, dtype=np.float64)
    if values.ndim == 2:
        values = values[..., None]
    if values.ndim != 3 or min(values.shape) < 1:
        raise ValueError(f"plane must be [rows, cols, C] or [rows, cols], got {plane.shape}")
    rows, cols, channels = values.shape
    n = rows * cols
    flat = values.reshape(n, channels)
    order = np.argsort(flat, axis=0, kind="stable")
    quantiles = normal_quantile((np.arange(n) + 0.5) / n)
    gaussian = np.empty_like(flat)
    np.put_along_axis(gaussian, order, quantiles[:, None], axis=0)
    sorted_values = np.take_along_axis(flat, order, axis=0)
    grid = np.linspace(-LUT_RANGE, LUT_RANGE, LUT_SIZE)
    position = np.clip(normal_cdf(grid) * n - 0.5, 0.0, n - 1)
    lut = np.stack([np.interp(position, np.arange(n), sorted_values[:, c]) for c in range(channels)])
    return GaussianizedPlane(
        gaussian.reshape(rows, cols, channels).astype(np.float32), lut.astype(np.float32)
    )


def inverse_histogram(lut: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Map Gaussian values back to the exemplar histogram (float32 arithmetic, as the shader).

    Args:
        lut: float32 ``[C, LUT_SIZE]`` from :func:`gaussianize`.
        g: float32 ``[..., C]`` Gaussian-space values.

    Returns:
        float32 ``[..., C]``.
    """
    g = np.asarray(g, dtype=np.float32)
    scale = np.float32((LUT_SIZE - 1) / (2.0 * LUT_RANGE))
    x = np.clip((g + np.float32(LUT_RANGE)) * scale, np.float32(0), np.float32(LUT_SIZE - 1))
    i0 = np.minimum(np.floor(x).astype(np.int64), LUT_SIZE - 2)
    t = x - i0.astype(np.float32)
    channel = np.arange(lut.shape[0])
    lo = lut[channel, i0]
    hi = lut[channel, i0 + 1]
    return (lo + t * (hi - lo)).astype(np.float32)
