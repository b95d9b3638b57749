"""Tileable procedural fields on an R×R periodic grid (numpy): noise, blur, Voronoi cells.

Every field here is periodic with period R texels in both axes (the UV tile), so materials
built from them tile seamlessly. Texel (r, c) is at uv = ((c + .5) / R, (r + .5) / R).
"""

from __future__ import annotations

import numpy as np


def texel_grid(res: int) -> tuple[np.ndarray, np.ndarray]:
    """(u, v): two [R, R] float64 arrays of texel-centre coordinates (u along columns)."""
    c = (np.arange(res) + 0.5) / res
    return np.meshgrid(c, c)


def periodic_blur(field: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur of an [R, R] field with standard deviation ``sigma_px`` texels, wrapping
    around the tile (FFT; exact circular convolution)."""
    res = field.shape[0]
    k = np.fft.fftfreq(res)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    gain = np.exp(-2.0 * (np.pi * sigma_px) ** 2 * k2)
    return np.fft.ifft2(np.fft.fft2(field) * gain).real


def periodic_noise(res: int, wavelength: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance tileable Gaussian noise whose features are ``wavelength`` UV
    units across (white noise blurred by a Gaussian of σ = wavelength/4 tile). [R, R] float64."""
    field = periodic_blur(rng.standard_normal((res, res)), max(wavelength * res / 4.0, 0.3))
    field -= field.mean()
    return field / max(field.std(), 1e-12)


def fbm(res: int, wavelength: float, rng: np.random.Generator, octaves: int = 4,
        gain: float = 0.5) -> np.ndarray:
    """Fractal sum of :func:`periodic_noise` octaves (wavelength halves, amplitude × ``gain``
    each octave), renormalized to zero mean and unit variance. [R, R] float64."""
    total = np.zeros((res, res))
    amp = 1.0
    for i in range(octaves):
        total += amp * periodic_noise(res, wavelength / 2**i, rng)
        amp *= gain
    total -= total.mean()
    return total / max(total.std(), 1e-12)


def voronoi(res: int, n_cells: int, rng: np.random.Generator, jitter: float = 0.8):
    """Tileable Worley/Voronoi cells from jittered-grid seeds.

    Seeds: one per cell of a ⌈√n⌉² grid, displaced by up to ``jitter`` of a cell. Distances
    use the minimum image on the unit torus, so cells wrap around the tile.

    Returns:
        ``(f1, f2, cell)``: [R, R] distance to the nearest and second-nearest seed (UV units)
        and [R, R] int index of the nearest seed.
    """
    g = max(1, int(np.ceil(np.sqrt(n_cells))))
    gy, gx = np.meshgrid(np.arange(g), np.arange(g), indexing="ij")
    seeds = (np.stack([gx.ravel(), gy.ravel()], 1) + 0.5
             + jitter * (rng.random((g * g, 2)) - 0.5)) / g
    u, v = texel_grid(res)
    f1, f2 = np.empty((res, res)), np.empty((res, res))
    cell = np.empty((res, res), dtype=np.int64)
    for r0 in range(0, res, 32):  # row blocks bound memory to 32·R·(number of seeds) floats
        rows = slice(r0, r0 + 32)
        du = (u[rows, :, None] - seeds[:, 0] + 0.5) % 1.0 - 0.5
        dv = (v[rows, :, None] - seeds[:, 1] + 0.5) % 1.0 - 0.5
        dist = np.sqrt(du * du + dv * dv)
        order = np.argsort(dist, axis=-1)[..., :2]
        nearest = np.take_along_axis(dist, order, axis=-1)
        f1[rows], f2[rows], cell[rows] = nearest[..., 0], nearest[..., 1], order[..., 0]
    return f1, f2, cell


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Hermite step: 0 below ``edge0``, 1 above ``edge1``, 3t² - 2t³ between."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def normalize01(field: np.ndarray, lo_pct: float = 0.0, hi_pct: float = 100.0) -> np.ndarray:
    """Map the ``lo_pct``..``hi_pct`` percentile range of ``field`` to [0, 1] and clip."""
    lo, hi = np.percentile(field, [lo_pct, hi_pct])
    return np.clip((field - lo) / max(hi - lo, 1e-12), 0.0, 1.0)


def make_seamless(image: np.ndarray) -> np.ndarray:
    """Make a non-tileable [R, R] or [R, R, C] image tileable by offset blending.

    Per axis, the image is blended with a copy rolled by half the tile using weights
    w = sin²(π·x) (1 in the middle, 0 at the borders): at the borders only the rolled copy —
    whose own seam sits in the middle, where its weight is 0 — is seen, so both edges show the
    same content. Features near the borders lose some contrast where the copies mix.
    """
    out = np.asarray(image, dtype=np.float64)
    res = out.shape[0]
    w = np.sin(np.pi * (np.arange(res) + 0.5) / res) ** 2
    for axis in (0, 1):
        shape = [1] * out.ndim
        shape[axis] = res
        wa = w.reshape(shape)
        out = wa * out + (1.0 - wa) * np.roll(out, res // 2, axis=axis)
    return out
