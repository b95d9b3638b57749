"""A pinhole camera (look-at, vertical field of view) and the primary rays every pass shares.

Pixel ``(row, col)`` of a ``height × width`` image (row 0 at the top) shoots through its centre:
``d = normalize(forward + x·right + y·up)`` with ``x = (2(col + .5)/width - 1)·tan(fov/2)·aspect``
and ``y = (1 - 2(row + .5)/height)·tan(fov/2)``, ``aspect = width / height``. The same formula
is in ``shaders/render_types.slang`` (:func:`cameraRayDir`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Camera:
    """Look-at pinhole camera; positions in scene units."""

    eye: tuple[float, float, float] = (0.0, -3.0, 1.5)
    """Centre of projection."""
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Point seen at the image centre."""
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    """World up hint (must not be parallel to target - eye)."""
    fov_y: float = 40.0
    """Vertical field of view, degrees."""
    width: int = 512
    """Image width, pixels."""
    height: int = 512
    """Image height, pixels."""

    @classmethod
    def orbit(cls, target=(0.0, 0.0, 0.0), azimuth: float = 0.0, elevation: float = 30.0,
              distance: float = 4.0, **kwargs) -> Camera:
        """A camera on a sphere around ``target`` (z up): azimuth (degrees, from +x towards +y)
        and elevation (degrees above the xy plane), looking at the target."""
        a, e = math.radians(azimuth), math.radians(elevation)
        offset = distance * np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
        eye = tuple(float(x) for x in np.asarray(target, np.float64) + offset)
        return cls(eye=eye, target=tuple(float(x) for x in target), up=(0.0, 0.0, 1.0), **kwargs)

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit (forward, right, up) vectors, float64 [3] each."""
        f = np.asarray(self.target, np.float64) - np.asarray(self.eye, np.float64)
        f /= np.linalg.norm(f)
        r = np.cross(f, np.asarray(self.up, np.float64))
        if np.linalg.norm(r) < 1e-9:
            raise ValueError("camera up is parallel to the viewing direction")
        r /= np.linalg.norm(r)
        return f, r, np.cross(r, f)

    @property
    def spread_angle(self) -> float:
        """Angle subtended by one pixel (radians, vertical), for ray-cone LoD."""
        return 2.0 * math.tan(math.radians(self.fov_y) / 2) / self.height

    def shader_params(self) -> dict:
        """The ``CameraParams`` struct of ``render_types.slang`` as a slangpy-assignable dict."""
        f, r, u = self.basis()
        return {
            "eye": [float(x) for x in self.eye], "forward": f.astype(np.float32).tolist(),
            "right": r.astype(np.float32).tolist(), "up": u.astype(np.float32).tolist(),
            "tan_half_fov_y": math.tan(math.radians(self.fov_y) / 2),
            "aspect": self.width / self.height, "spread_angle": self.spread_angle,
            "width": int(self.width), "height": int(self.height),
        }

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        """Primary rays: origins and unit directions, float64 [height, width, 3] each."""
        f, r, u = self.basis()
        t = math.tan(math.radians(self.fov_y) / 2)
        col = (2 * (np.arange(self.width) + 0.5) / self.width - 1) * t * self.width / self.height
        row = (1 - 2 * (np.arange(self.height) + 0.5) / self.height) * t
        d = f + col[None, :, None] * r + row[:, None, None] * u
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        return np.broadcast_to(np.asarray(self.eye, np.float64), d.shape).copy(), d


FRAMING_MARGIN = 1.05
"""Distance factor of :func:`framing`: 5 % of room around the framed objects."""


def framing(lo, hi, width: int = 1, height: int = 1, fov_y: float = 40.0, count: int = 1,
            spacing: float = 0.0) -> tuple[tuple[float, float, float], float]:
    """Target and eye distance of an orbit camera that sees a box ``[lo, hi]`` (scene units)
    whole, from any direction: its bounding sphere fits the vertical and horizontal fields of
    view of a ``width × height`` image with :data:`FRAMING_MARGIN`. ``count`` copies of the box
    in a row along the image x axis, ``spacing`` apart between centres, are framed together
    (``neumat render --side-by-side``). Returns ``(box centre, distance)``."""
    lo, hi = np.asarray(lo), np.asarray(hi)
    radius = max(float(np.linalg.norm(hi - lo) / 2), 1e-3)
    span = radius + (count - 1) * spacing / 2  # half-width of the row of objects
    half_y = math.radians(fov_y / 2)
    half_x = math.atan(math.tan(half_y) * width / height)
    distance = FRAMING_MARGIN * max(radius / math.sin(half_y), span / math.sin(half_x))
    return tuple(float(x) for x in (lo + hi) / 2), distance
