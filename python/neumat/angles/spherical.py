"""Spherical coordinates of unit vectors in the local shading frame.

Frame: right-handed, +z is the surface normal n, +x the tangent, +y the bitangent. Angles in
radians: polar angle ``theta`` in [0, pi] measured from +z, azimuth ``phi`` in [0, 2 pi)
measured from +x towards +y. Where the azimuth is undefined (the vector lies on the z axis,
x = y = 0) it is defined as 0, here and in ``shaders/rusinkiewicz.slang``.

Arrays: vectors have shape ``[..., 3]``; angles have the matching shape ``[...]``. float32
and float64 are kept (other dtypes are promoted to float64).
"""

from __future__ import annotations

import numpy as np

TWO_PI = 2.0 * np.pi
"""2 pi, the azimuth period."""


def as_float(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Arrays converted to their common float dtype (float32 stays float32, else float64)."""
    dtype = np.result_type(*[np.asarray(a) for a in arrays], np.float32)
    if dtype not in (np.float32, np.float64):
        dtype = np.float64
    return tuple(np.asarray(a, dtype=dtype) for a in arrays)


def normalize(v: np.ndarray) -> np.ndarray:
    """``v / |v|`` along the last axis (shape ``[..., 3]``); a zero vector stays zero."""
    (v,) = as_float(v)
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)


def wrap_azimuth(phi: np.ndarray) -> np.ndarray:
    """Azimuth(s) wrapped into [0, 2 pi) (keeps the dtype; exact multiples map to 0)."""
    (phi,) = as_float(phi)
    two_pi = phi.dtype.type(TWO_PI)
    wrapped = np.mod(phi, two_pi)
    return np.where(wrapped >= two_pi, wrapped - two_pi, wrapped)


def azimuth(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``atan2(y, x)`` wrapped into [0, 2 pi); 0 where ``x == y == 0`` (undefined azimuth)."""
    x, y = as_float(x, y)
    phi = np.where((x == 0) & (y == 0), x.dtype.type(0), np.arctan2(y, x))
    return wrap_azimuth(phi)


def to_spherical(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors ``[..., 3]`` -> ``(theta, phi)``, each ``[...]`` (radians).

    ``theta = atan2(sqrt(x^2 + y^2), z)`` (accurate near the poles, unlike ``acos(z)``),
    ``phi = atan2(y, x)`` in [0, 2 pi), 0 on the z axis.
    """
    (v,) = as_float(v)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    theta = np.arctan2(np.hypot(x, y), z)
    return theta, azimuth(x, y)


def from_spherical(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """``(theta, phi)`` (radians, broadcast together) -> unit vectors ``[..., 3]``."""
    theta, phi = as_float(theta, phi)
    theta, phi = np.broadcast_arrays(theta, phi)
    s = np.sin(theta)
    return np.stack([s * np.cos(phi), s * np.sin(phi), np.cos(theta)], axis=-1)
