"""Angle parameterizations in the local shading frame (numpy only, no torch, no device).

Frame: +z = surface normal, +x = tangent, +y = bitangent; ``wi`` (towards the light) and
``wo`` (towards the viewer) are unit vectors pointing away from the surface; radians.

* :mod:`.spherical` — ``(theta, phi)`` of unit vectors and back.
* :mod:`.rusinkiewicz` — half/difference angles (Rusinkiewicz 1998) and their inverse.
* :mod:`.minrot` — half vector and minimal-rotation difference vector, and their inverse.
* :mod:`.planes` — [0, 1]^2 coordinates of the H and D feature planes (every parameterization,
  the relief frame of v3 and v4).

``shaders/rusinkiewicz.slang`` holds the same functions for the renderer.
"""

from .minrot import from_minrot, minrot_difference, rotate_to_pole
from .planes import (
    LEGACY_PLANE_PARAMETERIZATION,
    MINROT_PLANE_PARAMETERIZATION,
    PLANE_PARAMETERIZATION,
    PLANE_PARAMETERIZATIONS,
    RELIEF_SLOPE_PLANE_PARAMETERIZATION,
    AngleParamError,
    hemisphere_to_square,
    interpolates_normals,
    parameterization_index,
    plane_coords,
    relief_frame,
    square_to_hemisphere,
    uses_relief_frame,
)
from .rusinkiewicz import from_rusinkiewicz, half_vector, rusinkiewicz
from .spherical import azimuth, from_spherical, normalize, to_spherical, wrap_azimuth

__all__ = [
    "LEGACY_PLANE_PARAMETERIZATION",
    "MINROT_PLANE_PARAMETERIZATION",
    "PLANE_PARAMETERIZATION",
    "PLANE_PARAMETERIZATIONS",
    "RELIEF_SLOPE_PLANE_PARAMETERIZATION",
    "AngleParamError",
    "azimuth",
    "from_minrot",
    "from_rusinkiewicz",
    "from_spherical",
    "half_vector",
    "hemisphere_to_square",
    "interpolates_normals",
    "minrot_difference",
    "normalize",
    "parameterization_index",
    "plane_coords",
    "relief_frame",
    "rotate_to_pole",
    "rusinkiewicz",
    "square_to_hemisphere",
    "to_spherical",
    "uses_relief_frame",
    "wrap_azimuth",
]
