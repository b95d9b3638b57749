"""Height from a normal map: Frankot–Chellappa integration (1988), the least-squares surface whose
gradient is closest to the normals' slopes, solved in the Fourier domain — exact for periodic
(tileable) maps.

Conventions: maps ``[row = v, column = u]`` of R×R texels over one UV tile, normals in the
tangent frame (+x = u, +y = v, +z out of the surface), heights in UV units (the tile is 1×1).
The slopes are ``∂z/∂u = −n_x/n_z`` and ``∂z/∂v = −n_y/n_z``; the derivative is the spectral one
(Fourier transfer ``i·2π·f``, f in cycles per UV unit), the textbook form. A discrete operator
would match :meth:`neumat.material.heightfield.HeightField.gradient_normals` (central
differences, transfer ``i·R·sin(2πf/R)``) exactly, but dividing by it blows up near the Nyquist
frequency, where it vanishes: on predicted normals that made a checkerboard of the texel-level
noise. The spectral operator instead attenuates the field's finest detail by
``sin(2πf/R)/(2πf/R)`` when the normals come from central differences (−6 % at 0.1 cycle per
texel).
"""

from __future__ import annotations

import numpy as np

MIN_NZ = 0.05
"""Normals are clamped to z >= this before their slopes are taken (at most ~87° of tilt)."""


def frankot_chellappa(normal: np.ndarray) -> np.ndarray:
    """``[R, R]`` float64 heights (UV units, zero mean) whose gradient best fits the slopes of
    ``normal`` ``[R, R, 3]`` (module docstring) in the least-squares sense."""
    n = np.asarray(normal, np.float64)
    rows, cols = n.shape[:2]
    nz = np.maximum(n[..., 2], MIN_NZ)
    p, q = -n[..., 0] / nz, -n[..., 1] / nz  # dz/du (along columns), dz/dv (along rows)
    du = 2j * np.pi * np.fft.fftfreq(cols, d=1.0 / cols)[None, :]  # cycles per UV unit -> d/du
    dv = 2j * np.pi * np.fft.fftfreq(rows, d=1.0 / rows)[:, None]
    denom = np.abs(du) ** 2 + np.abs(dv) ** 2
    num = np.conj(du) * np.fft.fft2(p) + np.conj(dv) * np.fft.fft2(q)
    z = np.where(denom > 1e-12, num / np.where(denom > 1e-12, denom, 1.0), 0.0)
    return np.real(np.fft.ifft2(z))


def height_map(normal: np.ndarray) -> tuple[np.ndarray, float]:
    """``(height [R, R] float32 in [0, 1], height_scale)``: :func:`frankot_chellappa` mapped to
    [0, 1]; ``height_scale`` (UV units) is its range, the displacement of height 1 that
    ``neumat train --maps --height-scale`` takes (0 for a flat result)."""
    z = frankot_chellappa(normal)
    lo, hi = float(z.min()), float(z.max())
    if hi - lo < 1e-12:
        return np.zeros(z.shape, np.float32), 0.0
    return ((z - lo) / (hi - lo)).astype(np.float32), hi - lo
