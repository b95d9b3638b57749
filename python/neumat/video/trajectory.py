"""Camera and light trajectories of the virtual gonioreflectometer (VideoNeuMat seed, §3.1 and
§4.3), their pose files, and the pinhole camera model of one pose.

World frame: the material sample is the square ``[-s/2, s/2]²`` of the plane z = 0, centred
at the origin, side ``s = sample_size`` scene units; +z is the sample's macro normal (up), +x
the material's u axis and +y its v axis (texture uv = (x/s + 1/2, y/s + 1/2) for a sample
showing one texture tile). Every position is in scene units, every angle in degrees.

Geometry (the seed gives only the orbit elevation, 56.31° = atan(3/2); the rest is chosen
here to match it with round numbers, and every length scales with ``sample_size``):

* the overhead camera and the overhead light sit at height ``H = 1.5·s`` above the centre;
* the orbits are circles at the same height ``H`` whose radius ``H / tan(56.31°) = 1·s`` puts
  them at elevation 56.31° seen from the centre (distance ``√(1.5² + 1²)·s ≈ 1.80·s``);
* the vertical field of view makes the sample exactly fill the overhead camera's image
  (``2·atan(s/2 / H)`` = 36.87°); orbit views see it smaller and foreshortened;
* the light is a small disk (radius ``0.05·s``) facing the sample centre. Its radiance is set
  per frame so that the irradiance it casts at the centre, on a patch facing it, is the same
  in every frame (``irradiance``, default π: a white Lambertian patch facing the light shows
  radiance 1, so 8-bit frames use their range; pixel values are BTF values × π):
  a uniform disk of radiance L and radius r at distance d on its axis gives
  ``E = π·L·r² / (r² + d²)``, so ``L = E·(r² + d²) / (π·r²)`` — the seed's distance-based
  light-intensity correction.

Two trajectories:

* :func:`video_trajectory` — the finetuning video, two consecutive phases (81 frames by
  default, the native length of Wan2.1): ``light_orbit`` — camera overhead, light circling at
  56.31° (``ceil(frames/2)`` frames: 41), then ``camera_orbit`` — light overhead, camera
  circling at 56.31° (the other 40). Each orbit is one full turn starting at azimuth 0 (+x),
  counter-clockwise seen from above, frame k at azimuth ``360°·k/n``.
* :func:`cross_trajectory` — the LRM's extra set: ``per_axis``² camera directions ×
  ``per_axis``² light directions (3⁴ = 81), each direction on the hemisphere of radius
  ``√(H² + R²)`` over the centre, placed on an evenly spaced grid of its projection onto the
  plane: (ω_x, ω_y) ∈ {-a, …, a}² with ``a = cos(56.31°)`` (the axis samples are at the orbit
  elevation, the diagonal ones lower, at 38.3°). Camera index outer, light index inner.

Camera convention (Mitsuba's ``look_at``): the camera at ``camera_position`` looks at
``camera_target``; image right = normalize(forward × up), image up = right × forward;
``fov_deg`` is the vertical field of view (Mitsuba ``fov_axis="y"``); pixel (row 0 at the top,
column 0 at the left) centres at half-integers. An overhead camera uses up = +y, so its image
shows +x to the right and +y up; orbiting cameras use up = +z.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..fileio import atomic_write_bytes

ORBIT_ELEVATION_DEG = 56.31
"""Elevation of both orbits above the sample plane, degrees (seed §3.1; atan(3/2))."""
HEIGHT_PER_SAMPLE = 1.5
"""Height of the overhead camera, the overhead light and both orbits, in sample widths."""
LIGHT_RADIUS_PER_SAMPLE = 0.05
"""Radius of the disk light, in sample widths ("a small near-field area light")."""
DEFAULT_IRRADIANCE = math.pi
"""Irradiance at the sample centre on a patch facing the light, every frame (a white Lambertian
patch shows radiance 1)."""
PHASES = ("light_orbit", "camera_orbit", "cross")
"""The values of :attr:`FramePose.phase`."""
POSES_FORMAT = "neumat.video.poses/1"
"""``format`` field of a pose file (:func:`save_poses`)."""
REQUIRED_META = ("width", "height", "sample_size")
"""Keys every pose file's metadata holds."""


class PoseFileError(ValueError):
    """A pose file that cannot be read or does not match what it is used with; the message
    names the file and the problem."""


@dataclass(frozen=True)
class FramePose:
    """Camera and light of one frame (world frame and conventions: module docstring).

    Positions in scene units; the light is a one-sided disk facing the sample centre."""

    index: int
    """Frame number in its video, from 0."""
    phase: str
    """``"light_orbit"`` | ``"camera_orbit"`` | ``"cross"`` (:data:`PHASES`)."""
    camera_position: tuple[float, float, float]
    """Pinhole position, scene units."""
    camera_target: tuple[float, float, float]
    """Point at the image centre, scene units (the sample centre)."""
    camera_up: tuple[float, float, float]
    """Up hint of ``look_at`` (+y overhead, +z otherwise), unit."""
    fov_deg: float
    """Vertical field of view, degrees."""
    light_position: tuple[float, float, float]
    """Centre of the disk light, scene units; the disk faces the sample centre."""
    light_radius: float
    """Disk radius, scene units."""
    light_intensity: float
    """Emitted radiance of the disk (linear RGB, equal in all channels), after the distance
    correction: the irradiance at the sample centre, facing the light, is the trajectory's
    ``irradiance`` in every frame."""

    def camera_basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(right, up, forward): float64 [3] unit vectors of the image axes (module docstring)."""
        eye, target = np.asarray(self.camera_position, float), np.asarray(self.camera_target, float)
        forward = _unit(target - eye)
        right = _unit(np.cross(forward, np.asarray(self.camera_up, float)))
        return right, np.cross(right, forward), forward

    def rotation(self) -> np.ndarray:
        """[3, 3] float64 camera-to-world rotation, columns (right, up, forward)."""
        return np.stack(self.camera_basis(), axis=1)

    def project(self, points: np.ndarray, width: int, height: int) -> np.ndarray:
        """Continuous pixel coordinates (column, row) [..., 2] float64 of world ``points``
        [..., 3]: pixel (c, r) covers [c, c+1) × [r, r+1), row 0 at the top. Points behind
        the camera get NaN."""
        right, up, forward = self.camera_basis()
        d = np.asarray(points, float) - np.asarray(self.camera_position, float)
        z = d @ forward
        z = np.where(z > 0, z, np.nan)
        t = math.tan(math.radians(self.fov_deg) / 2.0)
        x = (d @ right) / (z * t * width / height)
        y = (d @ up) / (z * t)
        return np.stack([(x + 1.0) * 0.5 * width, (1.0 - y) * 0.5 * height], axis=-1)

    def rays(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """(origin [3], unit directions [height, width, 3]) float64 of the pixel centres."""
        right, up, forward = self.camera_basis()
        t = math.tan(math.radians(self.fov_deg) / 2.0)
        cols = ((np.arange(width) + 0.5) / width * 2.0 - 1.0) * t * width / height
        rows = (1.0 - (np.arange(height) + 0.5) / height * 2.0) * t
        d = forward + cols[None, :, None] * right + rows[:, None, None] * up
        return np.asarray(self.camera_position, float), d / np.linalg.norm(d, axis=-1, keepdims=True)


def disk_radiance(irradiance: float, radius: float, distance: float) -> float:
    """Radiance of a uniform disk (``radius``) that casts ``irradiance`` on a patch facing it
    on its axis at ``distance``: ``E·(r² + d²) / (π·r²)`` (module docstring)."""
    return float(irradiance * (radius**2 + distance**2) / (math.pi * radius**2))


def _geometry(sample_size: float, elevation_deg: float, height: float | None, fov_deg: float | None,
              light_radius: float | None) -> tuple[float, float, float, float]:
    """(height, orbit radius, fov, light radius) with the module's defaults, checked."""
    if not (np.isfinite(sample_size) and sample_size > 0):
        raise ValueError(f"sample_size must be > 0 scene units, got {sample_size}")
    if not 0.0 < elevation_deg <= 90.0:
        raise ValueError(f"elevation_deg must be in (0, 90], got {elevation_deg}")
    h = HEIGHT_PER_SAMPLE * sample_size if height is None else float(height)
    if h <= 0:
        raise ValueError(f"height must be > 0 scene units, got {h}")
    fov = math.degrees(2.0 * math.atan(0.5 * sample_size / h)) if fov_deg is None else float(fov_deg)
    if not 0.0 < fov < 180.0:
        raise ValueError(f"fov_deg must be in (0, 180), got {fov}")
    r = LIGHT_RADIUS_PER_SAMPLE * sample_size if light_radius is None else float(light_radius)
    if r <= 0:
        raise ValueError(f"light_radius must be > 0 scene units, got {r}")
    return h, h / math.tan(math.radians(elevation_deg)), fov, r


def _pose(index: int, phase: str, camera: np.ndarray, light: np.ndarray, fov: float, radius: float,
          irradiance: float) -> FramePose:
    overhead = math.hypot(camera[0], camera[1]) < 1e-9 * max(1.0, abs(camera[2]))
    return FramePose(
        index=index, phase=phase, camera_position=_tuple(camera), camera_target=(0.0, 0.0, 0.0),
        camera_up=(0.0, 1.0, 0.0) if overhead else (0.0, 0.0, 1.0), fov_deg=float(fov),
        light_position=_tuple(light), light_radius=float(radius),
        light_intensity=disk_radiance(irradiance, radius, float(np.linalg.norm(light))))


def video_trajectory(frames: int = 81, elevation_deg: float = ORBIT_ELEVATION_DEG, sample_size: float = 1.0,
                     height: float | None = None, fov_deg: float | None = None,
                     light_radius: float | None = None, irradiance: float = DEFAULT_IRRADIANCE) -> list[FramePose]:
    """The two-phase gonioreflectometer video (module docstring): ``ceil(frames/2)``
    ``light_orbit`` frames, then ``frames // 2`` ``camera_orbit`` frames.

    Args:
        frames: total frame count (>= 2; Wan2.1 wants 4k + 1, the default is 81).
        elevation_deg: orbit elevation seen from the sample centre, degrees.
        sample_size: side of the sample square, scene units.
        height: height of the overhead camera/light and both orbits (default 1.5·sample_size).
        fov_deg: vertical field of view (default: the sample fills the overhead view).
        light_radius: disk light radius (default 0.05·sample_size).
        irradiance: irradiance at the sample centre facing the light, every frame.
    """
    if frames < 2:
        raise ValueError(f"frames must be >= 2 (one per phase at least), got {frames}")
    h, orbit, fov, radius = _geometry(sample_size, elevation_deg, height, fov_deg, light_radius)
    overhead = np.array([0.0, 0.0, h])
    n_light = (frames + 1) // 2
    poses = []
    for k in range(frames):
        phase, j, n = ("light_orbit", k, n_light) if k < n_light else ("camera_orbit", k - n_light, frames - n_light)
        phi = 2.0 * math.pi * j / n
        circle = np.array([orbit * math.cos(phi), orbit * math.sin(phi), h])
        camera, light = (overhead, circle) if phase == "light_orbit" else (circle, overhead)
        poses.append(_pose(k, phase, camera, light, fov, radius, irradiance))
    return poses


def hemisphere_grid(per_axis: int, elevation_deg: float = ORBIT_ELEVATION_DEG) -> np.ndarray:
    """[per_axis², 3] float64 unit directions over the centre: the projected coordinates
    (ω_x, ω_y) on the evenly spaced grid {-a, …, a}², a = cos(elevation), ω_y outer, ω_x
    inner; ω_z = √(1 - ω_x² - ω_y²)."""
    if per_axis < 1:
        raise ValueError(f"per_axis must be >= 1, got {per_axis}")
    a = math.cos(math.radians(elevation_deg))
    if 2.0 * a * a >= 1.0:
        raise ValueError(f"elevation_deg {elevation_deg} puts the grid's corners below the horizon "
                         "(need cos(elevation) < 1/√2, i.e. elevation > 45°)")
    ticks = np.linspace(-a, a, per_axis) if per_axis > 1 else np.zeros(1)
    wy, wx = np.meshgrid(ticks, ticks, indexing="ij")
    wx, wy = wx.ravel(), wy.ravel()
    return np.stack([wx, wy, np.sqrt(1.0 - wx**2 - wy**2)], axis=1)


def cross_trajectory(per_axis: int = 3, elevation_deg: float = ORBIT_ELEVATION_DEG, sample_size: float = 1.0,
                     height: float | None = None, fov_deg: float | None = None,
                     light_radius: float | None = None, irradiance: float = DEFAULT_IRRADIANCE) -> list[FramePose]:
    """The LRM's cross-joined set (module docstring): ``per_axis⁴`` frames, every camera
    direction of :func:`hemisphere_grid` with every light direction, both at the orbit distance
    from the centre. Arguments as :func:`video_trajectory`."""
    h, orbit, fov, radius = _geometry(sample_size, elevation_deg, height, fov_deg, light_radius)
    directions = hemisphere_grid(per_axis, elevation_deg) * math.hypot(h, orbit)
    return [_pose(i * len(directions) + j, "cross", cam, light, fov, radius, irradiance)
            for i, cam in enumerate(directions) for j, light in enumerate(directions)]


TRAJECTORIES = {"video": video_trajectory, "cross": cross_trajectory}
"""The trajectory generators by name (the ``<trajectory_name>`` of a dataset folder)."""


def save_poses(path: str | Path, poses: list[FramePose], **meta) -> Path:
    """Write ``poses`` as JSON (atomically): ``{"format": POSES_FORMAT, "meta": {...},
    "frames": [FramePose fields, ...]}``. ``meta`` must hold :data:`REQUIRED_META` (``width``
    and ``height`` in pixels, ``sample_size`` in scene units) and be JSON-serializable."""
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ValueError(f"save_poses needs meta {missing} (pixels, pixels, scene units)")
    doc = {"format": POSES_FORMAT, "meta": meta, "frames": [asdict(p) for p in poses]}
    return atomic_write_bytes(path, json.dumps(doc, indent=1).encode())


def load_poses(path: str | Path) -> tuple[list[FramePose], dict]:
    """Read a pose file of :func:`save_poses`: (poses, meta).

    Raises:
        PoseFileError: unreadable JSON, another format, missing metadata, frames with missing
            or unknown fields, an unknown phase, or frame indices that are not 0, 1, 2, …
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise PoseFileError(f"pose file {path}: cannot read it as JSON ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != POSES_FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise PoseFileError(f"pose file {path}: format is {got!r}, expected {POSES_FORMAT!r}")
    meta, frames = doc.get("meta"), doc.get("frames")
    if not isinstance(meta, dict) or any(k not in meta for k in REQUIRED_META):
        raise PoseFileError(f"pose file {path}: meta must hold {list(REQUIRED_META)}, got {meta!r}")
    if not isinstance(frames, list) or not frames:
        raise PoseFileError(f"pose file {path}: 'frames' must be a non-empty list")
    fields = set(FramePose.__dataclass_fields__)
    poses = []
    for i, f in enumerate(frames):
        if not isinstance(f, dict) or set(f) != fields:
            keys = sorted(f) if isinstance(f, dict) else type(f).__name__
            raise PoseFileError(f"pose file {path}: frame {i} has fields {keys}, expected {sorted(fields)}")
        if f["phase"] not in PHASES or f["index"] != i:
            raise PoseFileError(f"pose file {path}: frame {i} has index {f['index']!r} and phase "
                                f"{f['phase']!r} (expected index {i}, phase one of {PHASES})")
        try:
            poses.append(FramePose(**{k: tuple(float(x) for x in v) if isinstance(v, list) else v
                                      for k, v in f.items()}))
        except (TypeError, ValueError) as e:
            raise PoseFileError(f"pose file {path}: frame {i} is malformed ({e})") from e
    return poses, meta


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _tuple(v: np.ndarray) -> tuple[float, float, float]:
    return tuple(float(x) for x in v)
