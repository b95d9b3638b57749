"""Multi-view captures of a material sample on a plane: the cameras and light of one scene
(:func:`capture_poses`) and the exact ground-truth buffers of a view (:func:`gt_buffers`).

Frames (those of :mod:`neumat.video.trajectory` and :mod:`neumat.video.scene`):

* **world** — scene units; the sample is the square ``[-s/2, s/2]²`` of the plane z = 0,
  ``s = sample_size``, +z its macro normal, +x the texture's u axis, +y its v axis;
* **UV frame** — ``p / s + (1/2, 1/2, 0)``: the sample is the texture tile [0, 1]², heights
  are ``height_scale·h`` UV units; the maps repeat outside the tile. Texel (row r, column c)
  of an R×R map is centred at uv = ((c + .5)/R, (r + .5)/R): rows run along v;
* **camera** — OpenCV axes, as MVInverse predicts normals (:mod:`.intrinsics`): +x image
  right, +y image down, +z forward into the scene; a visible surface has n_z < 0. From a
  pose's basis (right, up, forward): ``n_cam = (n·right, −n·up, n·forward)``.

A scene is what a hand-held capture of a flat sample sees: one light (a small disk, as the
video trajectories', irradiance π at the sample centre facing it) and ``V`` cameras around the
sample at random elevations, distances, azimuths and aims, each seeing most of the tile.

Ground truth comes from the project's own reference geometry, not from the image renderer:
every pixel is ``supersample²`` stratified rays (the sub-pixel centres) intersected exactly with
the displaced bilinear height field (:meth:`neumat.material.heightfield.HeightField.first_hit`),
the maps read bilinearly at the hits, then box-averaged over the pixel — as the renderer's box
pixel filter averages radiance. Normals are the height field's shading normals (the bilinear
interpolation of its texel normals: what :func:`neumat.fidelity.reference.suite_bsdf` shades
with) turned into the camera frame, averaged and renormalized.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..data.pbr import PbrMaterial
from ..material.heightfield import HeightField
from ..material.interp import bilinear
from ..video.trajectory import DEFAULT_IRRADIANCE, LIGHT_RADIUS_PER_SAMPLE, FramePose, disk_radiance

CAPTURE_PHASE = "camera_orbit"
""":attr:`FramePose.phase` of capture views (the light stays, the camera moves)."""


@dataclass(frozen=True)
class CaptureGeometry:
    """How the cameras and the light of a scene are drawn (angles in degrees, lengths in sample
    widths ``s``)."""

    elevation: tuple[float, float] = (50.0, 85.0)
    """Camera elevation above the plane seen from its target, degrees (90: straight down)."""
    distance: tuple[float, float] = (1.5, 2.2)
    """Camera distance from its target, sample widths."""
    target_jitter: float = 0.15
    """Cameras aim at a point drawn uniformly within ±this of the sample centre (x and y)."""
    fill: tuple[float, float] = (0.9, 1.3)
    """Vertical field of view / the angle the sample's width subtends from the camera's
    distance (< 1: the view is inside the sample, > 1: it sees around it)."""
    light_elevation: tuple[float, float] = (35.0, 85.0)
    """Light elevation seen from the sample centre, degrees."""
    light_distance: float = 1.8
    """Light distance from the sample centre, sample widths (the video trajectories' ≈ 1.80)."""
    irradiance: float = DEFAULT_IRRADIANCE
    """Irradiance at the sample centre on a patch facing the light (π: a white Lambertian patch
    facing it shows radiance 1)."""


def capture_poses(rng: np.random.Generator, views: int, geometry: CaptureGeometry = CaptureGeometry(),
                  sample_size: float = 1.0) -> list[FramePose]:
    """One scene's ``views`` poses (module docstring): one light, cameras drawn independently.

    Returns:
        poses with indices 0 … views−1, phase :data:`CAPTURE_PHASE`, up = +z.
    """
    if views < 1:
        raise ValueError(f"views must be >= 1, got {views}")
    g, s = geometry, sample_size
    el, az = math.radians(rng.uniform(*g.light_elevation)), rng.uniform(0.0, 2.0 * math.pi)
    light = g.light_distance * s * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    radius = LIGHT_RADIUS_PER_SAMPLE * s
    intensity = disk_radiance(g.irradiance, radius, float(np.linalg.norm(light)))
    poses = []
    for i in range(views):
        el, az = math.radians(rng.uniform(*g.elevation)), rng.uniform(0.0, 2.0 * math.pi)
        dist = rng.uniform(*g.distance) * s
        target = np.array([*rng.uniform(-g.target_jitter, g.target_jitter, size=2) * s, 0.0])
        eye = target + dist * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        fov = math.degrees(2.0 * math.atan(0.5 * s / dist)) * rng.uniform(*g.fill)
        poses.append(FramePose(i, CAPTURE_PHASE, _tuple(eye), _tuple(target), (0.0, 0.0, 1.0), float(fov),
                               _tuple(light), float(radius), float(intensity)))
    return poses


def camera_from_world(pose: FramePose) -> np.ndarray:
    """[3, 3] float64 rotation taking world (= UV frame) vectors to the pose's OpenCV camera
    frame (module docstring): rows right, −up, forward."""
    right, up, forward = pose.camera_basis()
    return np.stack([right, -up, forward])


def surface_hits(material: PbrMaterial, pose: FramePose, width: int, height: int, sample_size: float = 1.0,
           supersample: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Where the sub-pixel rays of a view meet the displaced surface.

    Returns:
        (points [height·k, width·k, 3] float64 hits in the UV frame (u, v, z), unwrapped;
        rays [height·k, width·k, 3] float64 unit directions), ``k = supersample``, sub-pixel
        (i, j) of pixel (r, c) at row r·k + i, column c·k + j.

    Raises:
        ValueError: a ray that does not point down or misses the surface (a camera that sees the
            horizon).
    """
    k = supersample
    origin, rays = pose.rays(width * k, height * k)
    field = HeightField(material.height, material.height_scale)
    o = origin / sample_size + np.array([0.5, 0.5, 0.0])
    d = rays.reshape(-1, 3)
    if np.any(d[:, 2] >= 0):
        raise ValueError(f"frame {pose.index}: the camera sees the horizon; lower its field of view or raise it")
    # start every ray on the shell's top (the march steps through texel cells from its origin)
    t0 = np.maximum((o[2] - field.z_max - 1e-6) / -d[:, 2], 0.0)
    t = t0 + field.first_hit(o + t0[:, None] * d, d)
    if not np.all(np.isfinite(t)):
        raise ValueError(f"frame {pose.index}: {int((~np.isfinite(t)).sum())} rays miss the plane (the camera "
                         "sees the horizon); lower its field of view or raise its elevation")
    return (o + t[:, None] * d).reshape(rays.shape), rays


def gt_buffers(material: PbrMaterial, pose: FramePose, width: int, height: int, sample_size: float = 1.0,
               supersample: int = 2) -> dict[str, np.ndarray]:
    """Exact per-pixel ground truth of one view (module docstring), box-averaged over
    ``supersample²`` stratified sub-pixel rays.

    Returns:
        float32 ``[height, width, C]`` arrays, row 0 at the image top:

        * ``albedo`` (3) linear Rec.709 base colour, ``metallic`` (1), ``roughness`` (1);
        * ``normal`` (3) unit shading normal, camera frame (OpenCV axes);
        * ``points`` (3) mean hit (u, v, z) in the UV frame (unwrapped: outside [0, 1]² where the
          view sees the repeated maps) — reprojection between views;
        * ``depth`` (1) mean distance along the optical axis to the hits, scene units.
    """
    k = supersample
    points, rays = surface_hits(material, pose, width, height, sample_size, k)
    uv = points[..., :2].reshape(-1, 2) % 1.0
    field = HeightField(material.height, material.height_scale)
    normal = field.normal_at(uv) @ camera_from_world(pose).T
    eye = np.asarray(pose.camera_position) / sample_size + np.array([0.5, 0.5, 0.0])
    depth = ((points - eye) @ pose.camera_basis()[2]) * sample_size
    per_ray = {
        "albedo": bilinear(material.albedo, uv, wrap=True),
        "metallic": bilinear(material.metallic, uv, wrap=True)[:, None],
        "roughness": bilinear(material.roughness, uv, wrap=True)[:, None],
        "normal": normal,
        "points": points.reshape(-1, 3),
        "depth": depth.reshape(-1, 1),
    }
    out = {}
    for key, value in per_ray.items():
        v = np.asarray(value, np.float64).reshape(height, k, width, k, -1).mean(axis=(1, 3))
        if key == "normal":
            v /= np.linalg.norm(v, axis=-1, keepdims=True)
        out[key] = v.astype(np.float32)
    return out


def _tuple(v: np.ndarray) -> tuple[float, float, float]:
    return tuple(float(x) for x in v)
