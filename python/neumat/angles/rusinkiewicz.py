"""Rusinkiewicz half/difference angles (Rusinkiewicz 1998), the numpy definition.

``shaders/rusinkiewicz.slang`` implements the same arithmetic (tested against this module in
``tests/test_angles.py``).

Conventions: local shading frame with +z = normal n, +x = tangent, +y = bitangent; ``wi``
(towards the light) and ``wo`` (towards the viewer) are unit vectors pointing AWAY from the
surface, shape ``[..., 3]``, float32 or float64. Angles in radians (see :mod:`.spherical`):

* ``h = normalize(wi + wo)`` is the half vector; ``(theta_h, phi_h)`` its spherical angles.
* ``d = rot_b(-theta_h) rot_n(-phi_h) wi`` is the difference vector: ``wi`` in the frame
  where ``h`` is the north pole (rotate by ``-phi_h`` about n, then by ``-theta_h`` about the
  bitangent b = y); ``(theta_d, phi_d)`` its spherical angles.

For ``wi``, ``wo`` in the upper hemisphere, ``theta_h`` and ``theta_d`` lie in [0, pi/2].
Degenerate inputs, defined identically in Slang: ``phi_h = 0`` when ``h`` lies on the normal
(mirror configuration), ``phi_d = 0`` when ``wi = wo``, and ``h = n`` when ``wi = -wo``.
The rotations use ``cos/sin phi_h = h_x/|h_xy|, h_y/|h_xy|`` and ``cos/sin theta_h = h_z,
|h_xy|`` directly (no trigonometric round trip), which keeps float32 GPU results accurate.
Conditioning: ``phi_h`` is ill-conditioned near ``theta_h = 0`` (error ~ eps / sin theta_h),
and ``phi_d``, measured in the ``phi_h`` frame, inherits it; ``theta_h``, ``theta_d`` and the
pair (wi, wo) they describe stay accurate there.

Identities (tested): the mirror configuration ``wo = reflect(wi, n)`` gives ``theta_h = 0``;
``wi = wo`` gives ``theta_d = 0``; swapping ``wi`` and ``wo`` keeps ``theta_h, phi_h,
theta_d`` and maps ``phi_d -> phi_d + pi (mod 2 pi)`` (so reciprocity is a half-turn in
``phi_d``); :func:`from_rusinkiewicz` inverts :func:`rusinkiewicz`.
"""

from __future__ import annotations

import numpy as np

from .spherical import as_float, azimuth, from_spherical, normalize


def half_vector(wi: np.ndarray, wo: np.ndarray) -> np.ndarray:
    """``normalize(wi + wo)``, shape ``[..., 3]``; the normal (0, 0, 1) where ``wi = -wo``."""
    wi, wo = as_float(wi, wo)
    return _bisector(normalize(wi), normalize(wo))


def _bisector(wi: np.ndarray, wo: np.ndarray) -> np.ndarray:
    """:func:`half_vector` of already normalized directions."""
    h = normalize(wi + wo)
    degenerate = ~np.any(h != 0, axis=-1)
    return np.where(degenerate[..., None], np.array([0, 0, 1], dtype=h.dtype), h)


def rusinkiewicz(
    wi: np.ndarray, wo: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(theta_h, phi_h, theta_d, phi_d)`` (radians, each ``[...]``) of directions ``[..., 3]``.

    Args:
        wi: incident directions (towards the light), unit vectors in the shading frame.
        wo: outgoing directions (towards the viewer), same shape.

    Returns:
        ``theta_h``, ``theta_d`` in [0, pi]; ``phi_h``, ``phi_d`` in [0, 2 pi).
    """
    wi, wo = as_float(wi, wo)
    wi = normalize(wi)
    h = _bisector(wi, normalize(wo))
    hx, hy, hz = h[..., 0], h[..., 1], h[..., 2]
    rho = np.hypot(hx, hy)  # sin(theta_h)
    on_axis = rho == 0
    safe = np.where(on_axis, 1, rho)
    cos_phi = np.where(on_axis, 1, hx / safe)
    sin_phi = np.where(on_axis, 0, hy / safe)
    # rot_n(-phi_h): azimuth of h moves to 0.
    x1 = wi[..., 0] * cos_phi + wi[..., 1] * sin_phi
    y1 = wi[..., 1] * cos_phi - wi[..., 0] * sin_phi
    z1 = wi[..., 2]
    # rot_b(-theta_h): h moves to the north pole (cos theta_h = hz, sin theta_h = rho).
    dx = x1 * hz - z1 * rho
    dz = x1 * rho + z1 * hz
    theta_h = np.arctan2(rho, hz)
    theta_d = np.arctan2(np.hypot(dx, y1), dz)
    return theta_h, azimuth(hx, hy), theta_d, azimuth(dx, y1)


def from_rusinkiewicz(
    theta_h: np.ndarray, phi_h: np.ndarray, theta_d: np.ndarray, phi_d: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`rusinkiewicz`: angles (radians, broadcast together) -> ``(wi, wo)``.

    ``wi = rot_n(phi_h) rot_b(theta_h) sph(theta_d, phi_d)`` and ``wo`` is ``wi`` reflected
    about ``h = sph(theta_h, phi_h)``: ``wo = 2 (wi . h) h - wi``. Shapes ``[..., 3]``.
    """
    theta_h, phi_h, theta_d, phi_d = as_float(theta_h, phi_h, theta_d, phi_d)
    d = from_spherical(theta_d, phi_d)
    ct, st = np.cos(theta_h), np.sin(theta_h)
    cp, sp = np.cos(phi_h), np.sin(phi_h)
    # rot_b(theta_h) then rot_n(phi_h).
    x1 = d[..., 0] * ct + d[..., 2] * st
    z1 = d[..., 2] * ct - d[..., 0] * st
    y1 = d[..., 1]
    wi = np.stack(np.broadcast_arrays(x1 * cp - y1 * sp, x1 * sp + y1 * cp, z1), axis=-1)
    h = from_spherical(theta_h, phi_h)
    wo = 2 * np.sum(wi * h, axis=-1, keepdims=True) * h - wi
    return wi, wo
