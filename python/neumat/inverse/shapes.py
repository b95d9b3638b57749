"""Curved sample shapes for MVInverse training data: the material wrapped on a sphere or a
cylinder, rendered by Mitsuba 3 and with exact ground truth computed here (the plane is
:mod:`.views`' height field).

Both live in the UV frame of :mod:`.views` (scene units / ``sample_size``) and rest on the
sample's plane z = 0, which is not rendered. Their surface parametrizations and shading frames
are Mitsuba's own, so the maps land where Mitsuba puts them:

**Sphere** (:class:`Sphere`, ``src/shapes/sphere.cpp``): centre ``c = (1/2, 1/2, r)``, radius
``r``; for the hit's offset ``q = (p − c)/r`` (unit),

* ``uv = (φ / 2π, θ / π)``, ``φ = atan2(q_y, q_x)`` in [0, 2π), ``θ = acos(q_z)`` — one tile of
  the maps around the equator, rows of the maps along θ (north pole at v = 0);
* normal ``n = q``; ``∂p/∂u = 2π·r·(−q_y, q_x, 0)``.

**Cylinder** (:class:`Cylinder`, ``src/shapes/cylinder.cpp``, open ends): axis along world +x
through ``(·, 1/2, r)``, from x = 1/2 − L/2 to 1/2 + L/2, radius ``r``; Mitsuba's local frame is
given by ``to_world`` (local x → world +z, local y → world −y, local z → world +x, scaled by
(r, r, L)), so for local coordinates ``(l_x, l_y, l_z)`` of the hit,

* ``uv = (φ / 2π, l_z)``, ``φ = atan2(l_y, l_x)`` in [0, 2π) — u around the axis (u = 0 on top,
  increasing towards −y), v along it; the default ``L = 2πr`` keeps texels square;
* normal ``n = (0, −l_y, l_x)`` in world; ``∂p/∂u = 2π·r·(0, −l_x, −l_y)``. A ray entering an
  open end may first meet the inside: such hits count as hits but not as the sample
  (``front`` false, excluded from the mask).

Shading frame of both (Mitsuba's ``SurfaceInteraction::initialize_sh_frame``): ``s = ∂p/∂u``
projected off ``n`` and normalized, ``t = n × s`` (the sphere's points north: its maps' v axis
points south, so the relief is mirrored in v relative to the plane; the cylinder's is +x).

The BSDF is :func:`neumat.fidelity.reference.suite_bsdf` (the plane's): the project's BRDF with
the height field's texel normals as a bilinear normal map, applied by Mitsuba's ``normalmap`` in
that frame, so the **ground-truth normal** is ``normalize(s·n_x + t·n_y + n·n_z)`` for the
height field's shading normal ``(n_x, n_y, n_z)`` at the hit's uv
(:meth:`~neumat.material.heightfield.HeightField.normal_at`); the relief displaces nothing.

Buffers are those of :func:`.views.gt_buffers` (same rays, ``supersample²`` per pixel,
box-averaged), averaged over the sub-rays that hit the shape's outside, plus ``mask`` — 1 where
every sub-ray of the pixel does; the other pixels (background, silhouette, the cylinder's
inside) hold zeros (normal ``(0, 0, −1)``) and count in no loss (:func:`.dataset.dataset_batches`)
and no figure (:mod:`.evaluate`).
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

SHAPES = ("plane", "sphere", "cylinder")
"""Sample shapes of the data renderer: the displaced plane (:mod:`.views`), :class:`Sphere` and
:class:`Cylinder`."""


def _shading_frame(n: np.ndarray, dpdu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mitsuba's shading frame (module docstring): ``(s, t)`` ``[N, 3]`` for unit normals ``n``
    and tangents ``dpdu`` ``[N, 3]``."""
    s = dpdu - n * (n * dpdu).sum(-1, keepdims=True)
    s /= np.maximum(np.linalg.norm(s, axis=-1, keepdims=True), 1e-12)
    return s, np.cross(n, s)


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

    def hits(self, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(t, front)``: distances ``[N]`` float64 along unit ``dirs`` ``[N, 3]`` from ``origin``
        ``[3]`` (UV frame, outside the sphere) to the first hit, NaN where a ray misses; ``front``
        ``[N]`` bool, true where the hit is on the outside (every hit, from outside)."""
        oc = np.asarray(origin, np.float64) - self.center
        b = dirs @ oc
        disc = b * b - (oc @ oc - self.radius ** 2)
        with np.errstate(invalid="ignore"):
            t = -b - np.sqrt(disc)
        t = np.where((disc >= 0) & (t > 0), t, np.nan)
        return t, np.isfinite(t)

    def frame(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mitsuba's parametrization at surface ``points`` ``[N, 3]``: (uv ``[N, 2]``, normal n,
        tangent s, bitangent t = n × s, each ``[N, 3]`` unit), float64 (module docstring)."""
        q = (points - self.center) / self.radius
        q /= np.linalg.norm(q, axis=-1, keepdims=True)
        phi = np.arctan2(q[:, 1], q[:, 0]) % (2.0 * math.pi)
        theta = np.arccos(np.clip(q[:, 2], -1.0, 1.0))
        uv = np.stack([phi / (2.0 * math.pi), theta / math.pi], axis=-1)
        s, t = _shading_frame(q, np.stack([-q[:, 1], q[:, 0], np.zeros(len(q))], axis=-1))
        return uv, q, s, t


@dataclass(frozen=True)
class Cylinder:
    """The sample on an open cylinder lying along world x (module docstring)."""

    radius: float = 0.3
    """Radius, UV units (sample widths)."""
    length: float = 2.0 * math.pi * 0.3
    """Length along the axis, UV units; the default 2π·radius makes the maps' texels square."""

    @property
    def start(self) -> np.ndarray:
        """Start of the axis (Mitsuba's local origin) in the UV frame."""
        return np.array([0.5 - 0.5 * self.length, 0.5, self.radius])

    def to_world(self) -> np.ndarray:
        """[4, 4] float64 local -> UV frame (module docstring): columns r·(+z), r·(−y), L·(+x)
        and :attr:`start`."""
        m = np.eye(4)
        m[:3, :3] = np.array([[0.0, 0.0, self.length], [0.0, -self.radius, 0.0], [self.radius, 0.0, 0.0]])
        m[:3, 3] = self.start
        return m

    def mitsuba(self, bsdf) -> dict:
        """Mitsuba's description of the cylinder carrying ``bsdf``. Needs Mitsuba with its
        variant set (the transform is Mitsuba's type)."""
        import mitsuba as mi

        return {"type": "cylinder", "to_world": mi.ScalarTransform4f(self.to_world().tolist()), "bsdf": bsdf}

    def hits(self, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(t, front)`` as :meth:`Sphere.hits` for rays from ``origin`` outside the cylinder:
        the nearer root within the length, else the farther (the inside, seen through an open
        end: ``front`` false)."""
        o = np.asarray(origin, np.float64)
        oc = o[1:] - self.start[1:]
        d = dirs[:, 1:]
        a = np.maximum((d * d).sum(-1), 1e-300)
        b = d @ oc
        disc = b * b - a * (oc @ oc - self.radius ** 2)
        with np.errstate(invalid="ignore"):
            roots = [(-b - np.sqrt(disc)) / a, (-b + np.sqrt(disc)) / a]
        x0 = self.start[0]
        valid = [(disc >= 0) & (t > 0) & (o[0] + t * dirs[:, 0] >= x0) & (o[0] + t * dirs[:, 0] <= x0 + self.length)
                 for t in roots]
        t = np.where(valid[0], roots[0], np.where(valid[1], roots[1], np.nan))
        return t, valid[0]

    def frame(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """As :meth:`Sphere.frame`, on the cylinder (module docstring)."""
        q = points - self.start
        lx, ly = q[:, 2] / self.radius, -q[:, 1] / self.radius
        phi = np.arctan2(ly, lx) % (2.0 * math.pi)
        uv = np.stack([phi / (2.0 * math.pi), q[:, 0] / self.length], axis=-1)
        n = np.stack([np.zeros(len(q)), -ly, lx], axis=-1)
        n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
        s, t = _shading_frame(n, np.stack([np.zeros(len(q)), -n[:, 2], n[:, 1]], axis=-1))
        return uv, n, s, t


CURVED = {"sphere": Sphere, "cylinder": Cylinder}
"""The curved shapes by name, default-constructed by the data renderer."""


def shape_gt_buffers(material: PbrMaterial, pose: FramePose, width: int, height: int, shape: Sphere | Cylinder,
                     sample_size: float = 1.0, supersample: int = 2) -> dict[str, np.ndarray]:
    """Exact per-pixel ground truth of one view of the sample on a curved ``shape`` (module
    docstring).

    Returns:
        float32 ``[height, width, C]`` arrays, row 0 at the image top: ``albedo`` (3),
        ``metallic`` (1), ``roughness`` (1), ``normal`` (3, unit, camera frame, OpenCV axes),
        ``points`` (3, mean hit in the UV frame), ``depth`` (1, along the optical axis, scene
        units) — means over the pixel's sub-rays that hit the outside — and ``mask`` (1): 1 where
        all do.
    Raises:
        ValueError: a view that does not see the shape at all.
    """
    k = supersample
    origin, rays = pose.rays(width * k, height * k)
    o = origin / sample_size + np.array([0.5, 0.5, 0.0])
    d = rays.reshape(-1, 3)
    t, hit = shape.hits(o, d)
    if not hit.any():
        raise ValueError(f"frame {pose.index}: the camera does not see the {type(shape).__name__.lower()}; "
                         "aim it at the sample")
    points = o + np.where(hit, t, 0.0)[:, None] * d
    uv, n, s, b = shape.frame(points)
    nt = HeightField(material.height, material.height_scale).normal_at(uv % 1.0)
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


def shape_scene(material: PbrMaterial, shape: Sphere | Cylinder, settings):
    """A :class:`neumat.video.scene.TrajectoryScene` (camera, disk light, ``direct``
    integrator, box filter: the plane's) whose surface is ``shape`` carrying
    :func:`~neumat.fidelity.reference.suite_bsdf` instead of the displaced plane. Needs Mitsuba
    with its variant set; ``settings``: :class:`~neumat.video.scene.RenderSettings`."""
    import mitsuba as mi

    from ..fidelity.reference import suite_bsdf
    from ..video.scene import TrajectoryScene

    scene = TrajectoryScene.__new__(TrajectoryScene)  # its plane mesh is not built
    scene.mi, scene.settings = mi, settings
    scene.mesh = mi.load_dict(shape.mitsuba(suite_bsdf(material)))
    scene._scene, scene._params, scene._light = None, None, None
    return scene
