"""Measurement direction sets: UBO2014-like (view × light) grids over the hemisphere.

A set holds V view and L light directions (unit vectors, local frame, +z = normal, pointing
away from the surface); configuration ``k = view * L + light`` pairs ``wo = views[view]`` with
``wi = lights[light]`` — the row order of the UBO2014 file format (``lv_idx``), so held-out
splits and caches index both kinds of source the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DataError

GOLDEN_RATIO_CONJUGATE = 0.6180339887498949


@dataclass(frozen=True, eq=False)
class DirectionSet:
    """The angular configurations of a BTF: every (light, view) pair of two direction lists."""

    views: np.ndarray
    """[V, 3] float64 unit view directions ωo (z > 0)."""
    lights: np.ndarray
    """[L, 3] float64 unit light directions ωi (z > 0)."""

    def __post_init__(self) -> None:
        for key in ("views", "lights"):
            a = np.asarray(getattr(self, key), dtype=np.float64)
            if a.ndim != 2 or a.shape[1] != 3 or a.shape[0] == 0:
                raise DataError(f"{key} must have shape [n >= 1, 3], got {list(a.shape)}")
            if np.any(a[:, 2] <= 0) or np.any(np.abs(np.linalg.norm(a, axis=1) - 1) > 1e-6):
                raise DataError(f"{key} must be unit vectors with z > 0")
            object.__setattr__(self, key, a)

    @property
    def n_configs(self) -> int:
        """V·L, the number of (ωi, ωo) configurations."""
        return self.views.shape[0] * self.lights.shape[0]

    def split_index(self, k: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """(view index, light index) of configuration(s) ``k``."""
        return np.divmod(np.asarray(k), self.lights.shape[0])

    def pair(self, k: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """(wi, wo) of configuration(s) ``k``: [..., 3] float64 each."""
        view, light = self.split_index(k)
        return self.lights[light], self.views[view]


def spherical_to_vector(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """[..., 3] unit vectors (sinθ cosφ, sinθ sinφ, cosθ) from polar/azimuth angles in radians
    (θ from +z, φ from +x toward +y)."""
    theta, phi = np.asarray(theta, np.float64), np.asarray(phi, np.float64)
    return np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)],
                    axis=-1)


def vector_to_spherical(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(θ, φ) in degrees, φ in [0, 360), of [..., 3] unit vectors — UBO2014's angle notation."""
    theta = np.degrees(np.arccos(np.clip(w[..., 2], -1.0, 1.0)))
    phi = np.degrees(np.arctan2(w[..., 1], w[..., 0])) % 360.0
    return theta, phi


def stratified_cap(n: int, theta_max_deg: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` directions spread evenly (equal solid angle each) over the cap θ <= θmax.

    A jittered spherical Fibonacci lattice: direction k has cosθ uniform in the k-th of n equal
    strata of [cos θmax, 1] and φ = 2π·frac(k·φ_golden + offset); the jitter and the azimuthal
    offset come from ``rng``. Returns [n, 3] float64, z > 0.
    """
    if n < 1 or not 0.0 < theta_max_deg < 90.0:
        raise DataError(f"need n >= 1 and 0 < theta_max_deg < 90, got n={n}, "
                        f"theta_max_deg={theta_max_deg}")
    cos_max = np.cos(np.radians(theta_max_deg))
    k = np.arange(n)
    strata = (k + rng.random(n)) / n
    cos_t = 1.0 - strata * (1.0 - cos_max)
    phi = 2.0 * np.pi * ((k * GOLDEN_RATIO_CONJUGATE + rng.random()) % 1.0)
    return spherical_to_vector(np.arccos(cos_t), phi)


def ubo_like_directions(n_views: int = 12, n_lights: int = 12, theta_max_deg: float = 75.0,
                        seed: int = 0) -> DirectionSet:
    """A UBO2014-like measurement set: ``n_views`` × ``n_lights`` configurations, each list
    stratified over the cap θ <= ``theta_max_deg`` (UBO2014 itself: 151 × 151 up to 75°),
    reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    return DirectionSet(views=stratified_cap(n_views, theta_max_deg, rng),
                        lights=stratified_cap(n_lights, theta_max_deg, rng))
