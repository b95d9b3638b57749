"""A pinhole camera (look-at, vertical field of view) and the primary rays every pass shares.

Pixel ``(row, col)`` of a ``height × width`` image (row 0 at the top) shoots through its centre:
``d = normalize(forward + x·right + y·up)`` with ``x = (2(col + .5)/width - 1)·tan(fov/2)·aspect``
and ``y = (1 - 2(row + .5)/height)·tan(fov/2)``, ``aspect = width / height``. The same formula
is in ``shaders/render_types.slang`` (:func:`cameraRayDir`).

A :class:`Camera` is checked when made (:meth:`Camera.validate`): finite eye, target and up, an
eye-to-target distance in (0, :data:`MAX_CAMERA_DISTANCE`], a field of view in (0°, 180°) and an
image of 1 to :data:`MAX_IMAGE_SIDE` pixels per side (:func:`check_image_size`); ValueError
otherwise, before anything is allocated.
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

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """ValueError naming the first field that cannot make an image (module docstring); also
        for an ``up`` parallel to the viewing direction (see :meth:`basis`)."""
        check_image_size((self.width, self.height))
        for name in ("eye", "target", "up"):
            value = np.asarray(getattr(self, name), np.float64)
            if value.shape != (3,) or not np.isfinite(value).all():
                raise ValueError(f"camera {name} must be 3 finite numbers, got {getattr(self, name)!r}")
        distance = float(np.linalg.norm(np.subtract(self.target, self.eye, dtype=np.float64)))
        if not 0.0 < distance <= MAX_CAMERA_DISTANCE:
            raise ValueError(f"camera eye-to-target distance must be > 0 and at most {MAX_CAMERA_DISTANCE:g} "
                             f"scene units, got {distance:g} (eye {self.eye}, target {self.target})")
        if not 0.0 < self.fov_y < 180.0:
            raise ValueError(f"camera fov_y must lie in (0, 180) degrees, got {self.fov_y!r}")
        self.basis()

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


MAX_IMAGE_SIDE = 8192
"""Largest image width or height, pixels: each RGBA32F g-buffer slot of an 8192² frame takes
1 GiB, and a frame holds several (uv, normal, tangent, position, mask, btf, ...); checked before
anything is allocated (lavapipe's 2D limit, 16384, is not the binding one)."""
MAX_CAMERA_DISTANCE = 1e6
"""Largest eye-to-target distance, scene units: float32 ray origins (24-bit mantissa) resolve
positions no finer than 1/16 unit there, so a farther view of a unit-sized mesh hits nothing."""


def check_image_size(size) -> tuple[int, int]:
    """``(width, height)`` as ints; ValueError unless each is a whole number of pixels in
    [1, :data:`MAX_IMAGE_SIDE`]."""
    try:
        width, height = (int(x) for x in size)
    except (TypeError, ValueError):
        raise ValueError(f"image size must be (width, height) pixels, got {size!r}") from None
    if (width, height) != tuple(size) or not (1 <= width <= MAX_IMAGE_SIDE and 1 <= height <= MAX_IMAGE_SIDE):
        raise ValueError(f"image size must be whole pixels from 1 to {MAX_IMAGE_SIDE} per side, got {size!r}")
    return width, height


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
