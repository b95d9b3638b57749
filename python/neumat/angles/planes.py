"""Coordinates of the H and D feature planes: hemisphere directions -> the unit square.

The triple-plane model reads its H plane at the half vector ``h`` and its D plane at a
difference vector ``d``. Four parameterizations exist, named by the ids bundles record:

* :data:`PLANE_PARAMETERIZATION` ``"relief-minrot-concentric-v4"`` (default of new bundles): v3
  with the relief normal at a point taken as the shading normal a renderer interpolates, the
  bilinear interpolation of the unit texel normals ``normalize(-G, 1)`` (``G`` the slope texels;
  slope ``-m.xy / m.z`` of the interpolated ``m``, :mod:`neumat.material.relief`) — the normal
  the BTF's data and the fidelity suite's Mitsuba reference shade with
  (:meth:`neumat.material.heightfield.HeightField.normal_at`). v3 interpolates the slope texels
  themselves; the two agree on flat-ish texels but not on steep ones (hammered copper, at the
  rays that carry the back-scatter glints: median 1.2°, max 6.6°), which misplaces a glossy
  metal's glints (same data and steps, network vs Mitsuba's exact hits on the back-scatter
  pair: 28.1 % -> 13.5 % relative L1 by that one change; the fidelity suite's copper, 3643
  steps of 16384, rendered: mean relative L1 8.6 % -> 5.6 %, back-scatter 26.9 % -> 14.0 %,
  held-out INT8 8.7 % -> 7.4 %);
* :data:`RELIEF_SLOPE_PLANE_PARAMETERIZATION` ``"relief-minrot-concentric-v3"``: v2 in the
  frame of the relief's own normal ``n = normalize(-s_u, -s_v, 1)``, ``s`` the bilinear slope
  of the material's height map at the point (:mod:`neumat.material.relief`): ``wi`` and ``wo``
  are first turned by the minimal rotation taking ``n`` to +z (:func:`.minrot.rotate_to_pole`),
  so that a highlight sits at the H plane's centre on every facet. Continuous in (wi, wo) like
  v2 for a given slope; a direction below the facet's horizon maps outside [0, 1]^2 (clamped);
* :data:`MINROT_PLANE_PARAMETERIZATION` ``"minrot-concentric-v2"``: ``d`` by the minimal
  rotation taking ``h`` to the macro normal (:mod:`.minrot`), continuous everywhere;
* :data:`LEGACY_PLANE_PARAMETERIZATION` ``"rusinkiewicz-concentric-v1"``: Rusinkiewicz's
  ``d`` (:mod:`.rusinkiewicz`), measured in a frame turned by ``phi_h``, discontinuous at
  ``theta_h = 0``; kept so that bundles trained with it evaluate exactly as before.

The H plane is the same in v1 and v2. ``h`` and ``d`` lie in the upper hemisphere for
``wi``, ``wo`` above the surface (``theta_d <= pi/2`` always, since ``h`` bisects them).
A direction ``(theta, phi)`` maps to plane coordinates ``(s, t)`` in [0, 1]^2 in two steps:

1. azimuthal equidistant projection to the unit disk: radius ``r = theta / (pi/2)``, angle
   ``phi`` (so ``theta`` is sampled uniformly, like the 15-degree rings of UBO2014);
2. Shirley-Chiu concentric map disk -> square ``[-1, 1]^2`` (rings -> concentric squares),
   then ``(s, t) = ((a + 1) / 2, (b + 1) / 2)``; ``s`` runs along +x (texture columns),
   ``t`` along +y (texture rows).

Why not the polar layout ``(theta / (pi/2), phi / (2 pi))``: there the pole ``theta = 0`` —
the mirror configuration, where specular highlights live, and ``wi = wo`` for D — is a whole
texel row whose texels all describe one direction, and ``phi`` needs wrap-around addressing
with a seam. Here the pole is the single centre point (0.5, 0.5), the map is continuous over
the whole hemisphere (no seam; plain bilinear filtering with clamp addressing), and an
undefined ``phi`` at the pole does not matter. This is also the layout the public
InstantNeuralMaterial Falcor code samples its H/D planes with (a hemisphere->disk->square map).
Reciprocity (``phi_d -> phi_d + pi``) is not folded into D: folding would put a crease
through the plane's centre; the network learns the symmetry from reciprocal data instead.
Directions below the horizon (``theta > pi/2``) map outside [0, 1]^2 (samplers clamp).

``shaders/rusinkiewicz.slang`` implements the same maps (tested in ``tests/test_angles.py``).
"""

from __future__ import annotations

import numpy as np

from .minrot import minrot_difference, rotate_to_pole
from .rusinkiewicz import rusinkiewicz
from .spherical import as_float, azimuth, normalize, to_spherical, wrap_azimuth

PLANE_PARAMETERIZATION = "relief-minrot-concentric-v4"
"""Id of the default H/D plane parameterization (minimal-rotation ``d`` in the relief frame of
the interpolated unit texel normals; bundle manifests)."""
RELIEF_SLOPE_PLANE_PARAMETERIZATION = "relief-minrot-concentric-v3"
"""Id of the relief-frame parameterization of interpolated slope texels (bundles of 2026-12)."""
MINROT_PLANE_PARAMETERIZATION = "minrot-concentric-v2"
"""Id of the minimal-rotation parameterization in the macro frame (bundles of 2026-11/12)."""
LEGACY_PLANE_PARAMETERIZATION = "rusinkiewicz-concentric-v1"
"""Id of the Rusinkiewicz-``d`` parameterization of earlier bundles."""
PLANE_PARAMETERIZATIONS = (LEGACY_PLANE_PARAMETERIZATION, MINROT_PLANE_PARAMETERIZATION,
                           RELIEF_SLOPE_PLANE_PARAMETERIZATION, PLANE_PARAMETERIZATION)
"""Every parameterization :func:`plane_coords` computes; the index is the Slang selector
(``planeCoords(wi, wo, parameterization, slope, ...)`` in ``shaders/rusinkiewicz.slang``)."""
RELIEF_FRAME_PARAMETERIZATIONS = (RELIEF_SLOPE_PLANE_PARAMETERIZATION, PLANE_PARAMETERIZATION)
"""The parameterizations that read the relief slope (:func:`uses_relief_frame`)."""
NORMAL_RELIEF_PARAMETERIZATIONS = (PLANE_PARAMETERIZATION,)
"""The relief-frame parameterizations whose slope at a point is that of the interpolated unit
texel normals (:func:`interpolates_normals`); the others interpolate the slope texels."""


def uses_relief_frame(parameterization: str) -> bool:
    """True when ``parameterization`` measures directions in the relief frame (needs the slope)."""
    return parameterization in RELIEF_FRAME_PARAMETERIZATIONS


def interpolates_normals(parameterization: str) -> bool:
    """True when ``parameterization``'s relief slope at a point is ``-m.xy / m.z`` of the bilinear
    unit texel normals ``m`` (v4), False when it is the bilinear slope texels (v3) or there is
    no relief frame (:mod:`neumat.material.relief`)."""
    return parameterization in NORMAL_RELIEF_PARAMETERIZATIONS


class AngleParamError(ValueError):
    """An H/D plane parameterization id this neumat does not know."""


def parameterization_index(parameterization: str) -> int:
    """Index of ``parameterization`` in :data:`PLANE_PARAMETERIZATIONS`; :class:`AngleParamError` if unknown."""
    if parameterization not in PLANE_PARAMETERIZATIONS:
        raise AngleParamError(f"unknown H/D plane parameterization {parameterization!r}; "
                              f"known: {', '.join(PLANE_PARAMETERIZATIONS)}")
    return PLANE_PARAMETERIZATIONS.index(parameterization)

_QUARTER = np.pi / 4


def hemisphere_to_square(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Direction angles (radians, broadcast together) -> plane coordinates ``[..., 2]``.

    ``theta`` in [0, pi/2] maps into [0, 1]^2; ``theta = 0`` maps to (0.5, 0.5) for any phi.
    """
    theta, phi = as_float(theta, phi)
    theta, phi = np.broadcast_arrays(theta, phi)
    r = theta / theta.dtype.type(np.pi / 2)
    p = wrap_azimuth(phi)
    p = np.where(p >= 7 * _QUARTER, p - 2 * np.pi, p).astype(r.dtype)  # [-pi/4, 7pi/4)
    sector = np.floor((p + _QUARTER) / (2 * _QUARTER)).astype(np.int64).clip(0, 3)
    # Sector 0: a = r, 1: b = r, 2: a = -r, 3: b = -r; the other coordinate is linear in phi.
    lin = [p / _QUARTER, -(p - 2 * _QUARTER) / _QUARTER,
           -(p - 4 * _QUARTER) / _QUARTER, (p - 6 * _QUARTER) / _QUARTER]
    a = np.select([sector == 0, sector == 1, sector == 2], [r, r * lin[1], -r], r * lin[3])
    b = np.select([sector == 0, sector == 1, sector == 2], [r * lin[0], r, r * lin[2]], -r)
    half = r.dtype.type(0.5)
    return np.stack([(a + 1) * half, (b + 1) * half], axis=-1).astype(r.dtype)


def square_to_hemisphere(st: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`hemisphere_to_square`: coordinates ``[..., 2]`` -> ``(theta, phi)``.

    The centre (0.5, 0.5) gives ``theta = 0, phi = 0``.
    """
    (st,) = as_float(st)
    a = 2 * st[..., 0] - 1
    b = 2 * st[..., 1] - 1
    a_major = np.abs(a) > np.abs(b)
    r = np.where(a_major, a, b)
    safe_a = np.where(a == 0, 1, a)
    safe_b = np.where(b == 0, 1, b)
    ang = np.where(a_major, _QUARTER * (b / safe_a), 2 * _QUARTER - _QUARTER * (a / safe_b))
    x, y = r * np.cos(ang), r * np.sin(ang)
    theta = np.hypot(x, y) * st.dtype.type(np.pi / 2)
    return theta.astype(st.dtype), azimuth(x, y).astype(st.dtype)


def relief_frame(w: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """Directions ``w`` ``[..., 3]`` (macro frame) in the frame of the relief normal
    ``normalize(-s_u, -s_v, 1)`` of slopes ``slope`` ``[..., 2]`` (UV units per UV unit)."""
    w, slope = as_float(w, slope)
    one = np.ones_like(slope[..., :1])
    return rotate_to_pole(normalize(w), normalize(np.concatenate([-slope, one], axis=-1)))


def plane_coords(wi: np.ndarray, wo: np.ndarray, parameterization: str = PLANE_PARAMETERIZATION,
                 slope: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """H- and D-plane coordinates ``([..., 2], [..., 2])`` of direction pairs ``[..., 3]``.

    ``wi``, ``wo``: unit vectors pointing away from the surface, local frame (+z = normal).
    ``parameterization``: one of :data:`PLANE_PARAMETERIZATIONS` (:class:`AngleParamError` otherwise).
    ``slope``: ``[..., 2]`` relief slope ``(dz/du, dz/dv)`` at each pair's point
    (:mod:`neumat.material.relief`: v3 and v4 differ only in how it is interpolated, not here),
    read by the relief-frame parameterizations only; ``None``: a flat relief.
    """
    index = parameterization_index(parameterization)
    if index == 0:
        theta_h, phi_h, theta_d, phi_d = rusinkiewicz(wi, wo)
        return hemisphere_to_square(theta_h, phi_h), hemisphere_to_square(theta_d, phi_d)
    if uses_relief_frame(parameterization) and slope is not None:
        tilted = np.any(np.asarray(slope) != 0, axis=-1, keepdims=True)  # flat texels: exactly v2
        wi = np.where(tilted, relief_frame(wi, slope), wi)
        wo = np.where(tilted, relief_frame(wo, slope), wo)
    h, d = minrot_difference(wi, wo)
    return hemisphere_to_square(*to_spherical(h)), hemisphere_to_square(*to_spherical(d))
