"""Curved sample shapes for MVInverse training data: the material wrapped on a sphere, rendered by
Mitsuba 3 and with exact ground truth computed here (the plane is :mod:`.views`' height field).

**Sphere** (:class:`Sphere`): Mitsuba's analytic ``sphere`` shape, in the UV frame of
:mod:`.views` (scene units / ``sample_size``), centre ``(1/2, 1/2, r)`` — resting on the sample's
plane z = 0, which is not rendered — radius ``r`` (UV units). Its surface parametrization is
Mitsuba's (``src/shapes/sphere.cpp``): for the hit's offset ``q = (p − c)/r`` (unit),

* ``uv = (φ / 2π, θ / π)``, ``φ = atan2(q_y, q_x)`` in [0, 2π), ``θ = acos(q_z)`` — one tile of
  the maps around the equator, rows of the maps along θ (north pole at v = 0);
* normal ``n = q``; ``∂p/∂u = 2π·r·(−q_y, q_x, 0)``; Mitsuba's shading frame
  (``SurfaceInteraction::initialize_sh_frame``) ``s = ∂p/∂u`` projected off ``n`` and
  normalized, ``t = n × s`` (north on the sphere: the maps' v axis points south, so the relief
  is mirrored in v relative to the plane — as Mitsuba renders it).

The BSDF is :func:`neumat.fidelity.reference.suite_bsdf` (the plane's): the project's BRDF with
the height field's texel normals as a bilinear normal map, applied by Mitsuba's ``normalmap`` in
that frame, so the **ground-truth normal** is ``normalize(s·n_x + t·n_y + n·n_z)`` for the
height field's shading normal ``(n_x, n_y, n_z)`` at the hit's uv
(:meth:`~neumat.material.heightfield.HeightField.normal_at`); the relief displaces nothing.

Buffers are those of :func:`.views.gt_buffers` (same rays, ``supersample²`` per pixel,
box-averaged), averaged over the sub-rays that hit the sphere, plus ``mask`` — 1 where every
sub-ray of the pixel hits it; the other pixels (background and silhouette) hold zeros (normal
``(0, 0, −1)``) and count in no loss (:func:`.dataset.dataset_batches`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..data.pbr import PbrMaterial
from ..material.heightfield import HeightField
from ..material.interp import bilinear
from ..video.trajectory import FramePose
from .views import camera_from_world

SHAPES = ("plane", "sphere")
"""Sample shapes of the data renderer: the displaced plane (:mod:`.views`) and :class:`Sphere`."""


@dataclass(frozen=True)
class Sphere:
    """The sample on a sphere (module docstring)."""

    radius: float = 0.5
    """Radius, UV units (sample widths); 0.5: as wide as the sample."""

    @property
    def center(self) -> np.ndarray:
        """Centre in the UV frame, resting on z = 0 below the sample's centre."""
        return np.array([0.5, 0.5, self.radius])

    def mitsuba(self, bsdf) -> dict:
        """Mitsuba's description of the sphere carrying ``bsdf`` (a loaded BSDF or a dict)."""
        return {"type": "sphere", "center": self.center.tolist(), "radius": self.radius, "bsdf": bsdf}

    def hits(self, origin: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """Distances ``[N]`` float64 along unit ``dirs`` ``[N, 3]`` from ``origin`` ``[3]`` (UV
        frame, outside the sphere) to the first hit; NaN where a ray misses."""
        oc = np.asarray(origin, np.float64) - self.center
        b = dirs @ oc
        disc = b * b - (oc @ oc - self.radius ** 2)
        with np.errstate(invalid="ignore"):
            t = -b - np.sqrt(disc)
        return np.where((disc >= 0) & (t > 0), t, np.nan)

    def frame(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mitsuba's parametrization at surface ``points`` ``[N, 3]``: (uv ``[N, 2]``, normal n,
        tangent s, bitangent t = n × s, each ``[N, 3]`` unit), float64 (module docstring)."""
        q = (points - self.center) / self.radius
        q /= np.linalg.norm(q, axis=-1, keepdims=True)
        phi = np.arctan2(q[:, 1], q[:, 0]) % (2.0 * math.pi)
        theta = np.arccos(np.clip(q[:, 2], -1.0, 1.0))
        uv = np.stack([phi / (2.0 * math.pi), theta / math.pi], axis=-1)
        dpdu = np.stack([-q[:, 1], q[:, 0], np.zeros(len(q))], axis=-1)
        s = dpdu - q * (q * dpdu).sum(-1, keepdims=True)
        s /= np.maximum(np.linalg.norm(s, axis=-1, keepdims=True), 1e-12)
        return uv, q, s, np.cross(q, s)


def sphere_gt_buffers(material: PbrMaterial, pose: FramePose, width: int, height: int, sphere: Sphere,
                      sample_size: float = 1.0, supersample: int = 2) -> dict[str, np.ndarray]:
    """Exact per-pixel ground truth of one view of the sample on ``sphere`` (module docstring).

    Returns:
        float32 ``[height, width, C]`` arrays, row 0 at the image top: ``albedo`` (3),
        ``metallic`` (1), ``roughness`` (1), ``normal`` (3, unit, camera frame, OpenCV axes),
        ``points`` (3, mean hit in the UV frame), ``depth`` (1, along the optical axis, scene
        units) — means over the pixel's sub-rays that hit — and ``mask`` (1): 1 where all hit.
    Raises:
        ValueError: a view that does not see the sphere at all.
    """
    k = supersample
    origin, rays = pose.rays(width * k, height * k)
    o = origin / sample_size + np.array([0.5, 0.5, 0.0])
    d = rays.reshape(-1, 3)
    t = sphere.hits(o, d)
    hit = np.isfinite(t)
    if not hit.any():
        raise ValueError(f"frame {pose.index}: the camera does not see the sphere; aim it at the sample")
    points = o + np.where(hit, t, 0.0)[:, None] * d
    uv, n, s, b = sphere.frame(points)
    nt = HeightField(material.height, material.height_scale).normal_at(uv)
    normal = nt[:, :1] * s + nt[:, 1:2] * b + nt[:, 2:] * n
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    eye = np.asarray(pose.camera_position) / sample_size + np.array([0.5, 0.5, 0.0])
    per_ray = {
        "albedo": bilinear(material.albedo, uv, wrap=True),
        "metallic": bilinear(material.metallic, uv, wrap=True)[:, None],
        "roughness": bilinear(material.roughness, uv, wrap=True)[:, None],
        "normal": normal @ camera_from_world(pose).T,
        "points": points,
        "depth": (((points - eye) @ pose.camera_basis()[2]) * sample_size)[:, None],
    }
    weight = hit.astype(np.float64).reshape(height, k, width, k, 1)
    count = weight.sum(axis=(1, 3))
    out = {}
    for key, value in per_ray.items():
        v = (np.asarray(value, np.float64).reshape(height, k, width, k, -1) * weight).sum(axis=(1, 3))
        v = v / np.maximum(count, 1)
        if key == "normal":
            v[count[..., 0] == 0] = (0.0, 0.0, -1.0)
            v /= np.linalg.norm(v, axis=-1, keepdims=True)
        out[key] = v.astype(np.float32)
    out["mask"] = (count == k * k).astype(np.float32)
    return out


def sphere_scene(material: PbrMaterial, sphere: Sphere, settings):
    """A :class:`neumat.video.scene.TrajectoryScene` (camera, disk light, ``direct``
    integrator, box filter: the plane's) whose surface is ``sphere`` carrying
    :func:`~neumat.fidelity.reference.suite_bsdf` instead of the displaced plane. Needs Mitsuba
    with its variant set; ``settings``: :class:`~neumat.video.scene.RenderSettings`."""
    import mitsuba as mi

    from ..fidelity.reference import suite_bsdf
    from ..video.scene import TrajectoryScene

    scene = TrajectoryScene.__new__(TrajectoryScene)  # its plane mesh is not built
    scene.mi, scene.settings = mi, settings
    scene.mesh = mi.load_dict(sphere.mitsuba(suite_bsdf(material)))
    scene._scene, scene._params, scene._light = None, None, None
    return scene
