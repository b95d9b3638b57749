"""Analytic lights (linear Rec.709 RGB; directions point away from the surface, towards the
light, like ωi)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def direction_from_angles(azimuth: float, elevation: float) -> tuple[float, float, float]:
    """Unit vector for (azimuth from +x towards +y, elevation above the xy plane), degrees, z up."""
    a, e = math.radians(azimuth), math.radians(elevation)
    return (math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e))


@dataclass
class DirectionalLight:
    """A distant light: radiance arrives along ``-direction``."""

    direction: tuple[float, float, float] = (0.3, -0.4, 0.87)
    """Unit vector from the surface towards the light (normalized on construction)."""
    radiance: tuple[float, float, float] = (3.0, 3.0, 3.0)
    """Irradiance on a surface facing the light, linear RGB (W/m² per channel)."""

    def __post_init__(self) -> None:
        d = np.asarray(self.direction, np.float64)
        self.direction = tuple(float(x) for x in d / np.linalg.norm(d))

    def wi(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit directions towards the light [N, 3] and RGB irradiance [N, 3] at ``points``."""
        n = points.shape[0]
        return (np.tile(self.direction, (n, 1)), np.tile(self.radiance, (n, 1)))


@dataclass
class PointLight:
    """An isotropic point light."""

    position: tuple[float, float, float] = (1.0, -1.0, 2.0)
    """Light position, scene units."""
    intensity: tuple[float, float, float] = (10.0, 10.0, 10.0)
    """Radiant intensity, linear RGB (W/sr per channel); irradiance falls off as 1/r²."""

    def wi(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit directions towards the light [N, 3] and RGB irradiance I/r² [N, 3] at ``points``
        (normal incidence; the caller applies the cosine)."""
        d = np.asarray(self.position, np.float64) - points
        r2 = np.maximum(np.sum(d * d, axis=1, keepdims=True), 1e-12)
        return d / np.sqrt(r2), np.asarray(self.intensity, np.float64)[None, :] / r2
