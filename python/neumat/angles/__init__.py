"""Angle parameterizations in the local shading frame (numpy only, no torch, no device).

Frame: +z = surface normal, +x = tangent, +y = bitangent; ``wi`` (towards the light) and
``wo`` (towards the viewer) are unit vectors pointing away from the surface; radians.

* :mod:`.spherical` — ``(theta, phi)`` of unit vectors and back.
* :mod:`.rusinkiewicz` — half/difference angles (Rusinkiewicz 1998) and their inverse.
* :mod:`.planes` — [0, 1]^2 coordinates of the H and D feature planes.

``shaders/rusinkiewicz.slang`` holds the same functions for the renderer.
"""

from .planes import PLANE_PARAMETERIZATION, hemisphere_to_square, plane_coords, square_to_hemisphere
from .rusinkiewicz import from_rusinkiewicz, half_vector, rusinkiewicz
from .spherical import azimuth, from_spherical, normalize, to_spherical, wrap_azimuth

__all__ = [
    "PLANE_PARAMETERIZATION",
    "azimuth",
    "from_rusinkiewicz",
    "from_spherical",
    "half_vector",
    "hemisphere_to_square",
    "normalize",
    "plane_coords",
    "rusinkiewicz",
    "square_to_hemisphere",
    "to_spherical",
    "wrap_azimuth",
]
