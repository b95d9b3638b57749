"""The viewer's orbit camera (orbit / pan / zoom) and its light given by angles.

Conventions are those of :meth:`neumat.render.camera.Camera.orbit`: world z up, azimuth in
degrees from +x towards +y, elevation in degrees above the xy plane, distances in scene units.
The light direction uses the same angles (unit vector from the surface towards the light).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..render.camera import Camera, framing
from ..render.lights import DirectionalLight, direction_from_angles
from ..render.shapes import Mesh

FOV_Y = 40.0
"""Vertical field of view of the viewer's camera, degrees (the Camera default)."""
ELEVATION_LIMIT = 89.0
"""|elevation| stays below this (degrees) so that the view never looks straight along z."""


@dataclass
class OrbitCamera:
    """A camera on a sphere around ``target``."""

    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Point looked at, scene units."""
    azimuth: float = -60.0
    """Degrees from +x towards +y."""
    elevation: float = 35.0
    """Degrees above the xy plane, clamped to ±:data:`ELEVATION_LIMIT`."""
    distance: float = 4.0
    """Eye-to-target distance, scene units (> 0)."""

    @classmethod
    def framing(cls, mesh: Mesh, azimuth: float = -60.0, elevation: float = 35.0) -> OrbitCamera:
        """A camera that sees the whole mesh: target at the bounding-box centre, distance such
        that the bounding sphere fills the vertical field of view (with 5 % margin)."""
        target, distance = framing(mesh.positions.min(0), mesh.positions.max(0), fov_y=FOV_Y)
        return cls(target, azimuth, elevation, distance)

    def orbit(self, d_azimuth: float, d_elevation: float) -> None:
        """Rotate around the target by the given degrees."""
        self.azimuth = (self.azimuth + d_azimuth + 180.0) % 360.0 - 180.0
        self.elevation = float(np.clip(self.elevation + d_elevation, -ELEVATION_LIMIT, ELEVATION_LIMIT))

    def pan(self, dx: float, dy: float) -> None:
        """Move the target in the image plane by (dx, dy) fractions of the view height
        (dx > 0: scene moves left, i.e. the target moves right; dy > 0: target moves up)."""
        _, right, up = self.camera(1, 1).basis()
        extent = 2.0 * self.distance * math.tan(math.radians(FOV_Y) / 2)
        shift = extent * (dx * right + dy * up)
        self.target = tuple(float(x) for x in np.asarray(self.target) + shift)

    def zoom(self, factor: float) -> None:
        """Multiply the distance by ``factor`` (< 1 moves closer)."""
        self.distance = float(np.clip(self.distance * factor, 1e-3, 1e4))

    def camera(self, width: int, height: int) -> Camera:
        """The :class:`Camera` of this orbit for a ``width × height`` image."""
        return Camera.orbit(self.target, self.azimuth, self.elevation, self.distance,
                            fov_y=FOV_Y, width=width, height=height)


@dataclass
class LightControl:
    """One directional light given by angles and intensity."""

    azimuth: float = 30.0
    """Degrees from +x towards +y."""
    elevation: float = 50.0
    """Degrees above the xy plane."""
    intensity: float = 3.0
    """Irradiance on a surface facing the light (grey, linear)."""

    def light(self) -> DirectionalLight:
        """The :class:`DirectionalLight`."""
        return DirectionalLight(direction_from_angles(self.azimuth, self.elevation), (self.intensity,) * 3)
