"""Half vector and minimal-rotation difference vector of a direction pair (numpy definition).

``shaders/rusinkiewicz.slang`` (``minRotDifference``, ``fromMinRot``) performs the same
arithmetic in float32 (tested in ``tests/test_angles.py``).

Frame and conventions as :mod:`.rusinkiewicz`: +z = normal n, ``wi`` (towards the light) and
``wo`` (towards the viewer) unit vectors pointing away from the surface, shape ``[..., 3]``.

* ``h = normalize(wi + wo)`` (the normal where ``wi = -wo``), as in Rusinkiewicz.
* ``d = R(h) wi`` where ``R(h)`` is the *minimal* rotation taking ``h`` to n, about the axis
  ``w = h x n`` (``|w| = sin theta_h``), with ``c = h . n = cos theta_h``:
  ``R = I + [w]x + [w]x^2 / (1 + c)`` — Rodrigues' formula without the division by
  ``sin theta_h``. Written out with ``p = h_x wi_x + h_y wi_y`` and ``k = wi_z + p / (1 + h_z)``:
  ``d = (wi_x - h_x k, wi_y - h_y k, p + h_z wi_z)`` (``d_z = wi . h = cos theta_d``).

Why not Rusinkiewicz's ``d = rot_b(-theta_h) rot_n(-phi_h) wi``: that frame turns with
``phi_h``, which is undefined at ``theta_h = 0`` (the mirror configuration), so ``d`` jumps
there (a 0.2 degree view change moved the D-plane coordinate from 0.78 to 0.30). ``R(h)`` is
smooth in ``h`` on the whole upper hemisphere (``1 + h_z >= 1``) and is the identity at
``h = n``, so ``d`` is continuous in (wi, wo) wherever ``h`` is, i.e. everywhere except
``wi = -wo`` (both on the horizon), where the half vector itself is undefined. For
``theta_h > 0`` the two differ only by a rotation about n by ``phi_h`` (``theta_d`` agrees).

``(h, d)`` is bijective with ``(wi, wo)``: ``wi = R(h)^T d`` and ``wo = 2 (wi . h) h - wi``
(:func:`from_minrot`); ``R^T = I - [w]x + [w]x^2 / (1 + c)``.
"""

from __future__ import annotations

import numpy as np

from .rusinkiewicz import _bisector
from .spherical import as_float, normalize


def rotate_to_pole(w: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``R(n) w``: vectors ``w`` ``[..., 3]`` turned by the minimal rotation taking the unit
    vector ``n`` ``[..., 3]`` (upper hemisphere, ``n_z > -1``) to +z (see module; the
    arithmetic of ``d`` with ``n`` for ``h``)."""
    nx, ny, nz = n[..., 0], n[..., 1], n[..., 2]
    p = nx * w[..., 0] + ny * w[..., 1]
    k = w[..., 2] + p / (1 + nz)
    return np.stack([w[..., 0] - nx * k, w[..., 1] - ny * k, p + nz * w[..., 2]], axis=-1)


def minrot_difference(wi: np.ndarray, wo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(h, d)``, unit vectors ``[..., 3]`` each, of direction pairs ``[..., 3]`` (see module)."""
    wi, wo = as_float(wi, wo)
    wi = normalize(wi)
    h = _bisector(wi, normalize(wo))
    return h, rotate_to_pole(wi, h)


def from_minrot(h: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`minrot_difference`: ``(h, d)`` ``[..., 3]`` -> ``(wi, wo)`` ``[..., 3]``.

    ``h`` must lie in the upper hemisphere (``h_z > -1``).
    """
    h, d = as_float(h, d)
    h, d = np.broadcast_arrays(h, d)
    hx, hy, hz = h[..., 0], h[..., 1], h[..., 2]
    q = hx * d[..., 0] + hy * d[..., 1]
    m = d[..., 2] - q / (1 + hz)
    wi = np.stack([d[..., 0] + hx * m, d[..., 1] + hy * m, hz * d[..., 2] - q], axis=-1)
    wo = 2 * np.sum(wi * h, axis=-1, keepdims=True) * h - wi
    return wi, wo
