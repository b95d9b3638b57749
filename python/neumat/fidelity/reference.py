"""Ground truth of the suite: Mitsuba 3 renders of the displaced maps, seen by the same camera
as neumat's :class:`~neumat.render.renderer.Renderer`.

Scene (world = the material's frame: +x = u, +y = v, +z = macro normal, 1 scene unit = 1 UV
tile; the texture repeats, so world (x, y) shows texture uv = (x, y) mod 1):

* **surface**: the height field ``z = height_scale·h(u, v)`` of the loaded maps as a triangle
  mesh whose vertices lie on the bilinear surface at every texel centre and ``k - 1`` points
  between: for :func:`reference_at_rays` one tile of it, repeated by the ray caster
  (:mod:`.periodic_surface`, k = :func:`~.periodic_surface.reference_subdivision`: 4 for
  1024² maps), for :func:`render_reference` a mesh over exactly the part of the plane the
  camera rays and the shadow rays can reach (:meth:`FidelityView.surface_bounds`, k =
  :func:`mesh_subdivision`: 1 for 1024² maps; coarser, so less exact at grazing light); BSDF =
  :func:`suite_bsdf`, the project's BRDF (``(1-metallic)·albedo/π`` + GGX with ``F0 =
  mix(0.04, albedo, metallic)``) on bilinear, repeating maps with the height field's texel
  normals as a bilinear normal map (on vertex normals +z) — what the training data is
  rendered with. Vertex normals interpolated over each triangle moved glossy metal's glints
  against the bilinear normal field the data uses;
* **camera**: a pinhole at ``target + distance·ωo`` looking at ``target`` = (0.5, 0.5, 0), up
  +z (+y when looking straight down), vertical field of view such that a head-on view spans
  ``extent`` tiles; Mitsuba's ``perspective`` sensor with the same eye, target, up and
  ``fov_axis="y"`` shoots the same ray through every pixel centre as
  :meth:`neumat.render.camera.Camera.rays` (checked in the tests); each Mitsuba pixel is a
  box-filtered average over its footprint (stratified ``spp`` samples), so neumat's image is
  rendered at ``supersample``× the resolution and box-averaged to match;
* **light**: Mitsuba ``directional`` from ωi with irradiance 1 (per unit area perpendicular to
  the beam), neumat's ``DirectionalLight(ωi, (1, 1, 1))``: pixel values are then BTF values —
  radiance under unit irradiance at normal incidence, cosθi included — times self-shadowing;
* **integrator**: ``direct``, one emitter sample (a delta light needs no BSDF sampling).

Because the camera is distant (:data:`CAMERA_DISTANCE` tiles), ωo varies by ±0.3° over a
head-on image of one tile, and both renderers use each pixel's own ray direction.

Two ways to evaluate it: :func:`reference_at_rays` (the suite's default where Mitsuba's
vectorized ``llvm_ad_rgb`` runs) evaluates Mitsuba at exactly neumat's sub-pixel rays, so the
comparison carries no Monte Carlo noise; :func:`render_reference` is Mitsuba's own image
render at ``spp`` stratified samples (the fallback; independent samples, so glints add noise
to the figures).
"""

from __future__ import annotations

import math
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..data.errors import DataError
from ..material.heightfield import HeightField
from ..data.mitsuba_ref import material_bsdf, require_mitsuba
from ..data.pbr import PbrMaterial
from ..render.camera import Camera
from .pairs import Pair
from .periodic_surface import PeriodicSurface, reference_subdivision, surface_mesh

CAMERA_DISTANCE = 100.0
"""Distance from the camera to its target, scene units (= UV tiles)."""
TARGET = (0.5, 0.5, 0.0)
"""Point at the image centre: the middle of a texture tile on the base plane."""
SAME_RAY_VARIANT = "llvm_ad_rgb"
"""Mitsuba variant of :func:`reference_at_rays` (vectorized: ~1 s for 128² × 8² rays)."""
SAME_RAY_START_ABOVE = 2.0
""":func:`reference_at_rays` starts the camera rays at this multiple of the relief height above
the base plane (the same rays, from a point near the surface)."""
MESH_VERTICES_PER_TILE = 512
"""Aim for at least this many mesh vertices per tile side (k per texel, up to 4)."""


@dataclass(frozen=True)
class FidelityView:
    """The camera and light of one pair, shared by Mitsuba and neumat."""

    pair: Pair
    size: int = 128
    """Image side, pixels."""
    extent: float = 1.0
    """Tiles spanned by the image side at a head-on view (more at oblique ones)."""

    @property
    def fov_y(self) -> float:
        """Vertical field of view, degrees."""
        return math.degrees(2.0 * math.atan(0.5 * self.extent / CAMERA_DISTANCE))

    @property
    def up(self) -> tuple[float, float, float]:
        """The camera's up hint: +z, or +y when the view is (nearly) along the normal."""
        return (0.0, 1.0, 0.0) if math.sin(math.radians(self.pair.theta_o)) < 1e-3 else (0.0, 0.0, 1.0)

    @property
    def eye(self) -> tuple[float, float, float]:
        return tuple(float(x) for x in np.asarray(TARGET) + CAMERA_DISTANCE * self.pair.wo)

    def camera(self, supersample: int = 1) -> Camera:
        """neumat's camera of this view at ``supersample``× the image size."""
        side = self.size * supersample
        return Camera(eye=self.eye, target=TARGET, up=self.up, fov_y=self.fov_y, width=side,
                      height=side)

    def surface_bounds(self, height_scale: float, texel: float) -> tuple[float, float, float, float]:
        """(x0, x1, y0, y1): the plane region every camera ray (between z = 0 and z =
        ``height_scale``) and every shadow ray toward ωi can reach, plus two texels."""
        cam = self.camera()
        f, r, u = cam.basis()
        t = math.tan(math.radians(self.fov_y) / 2)
        eye = np.asarray(self.eye)
        points = []
        for sx in (-1.0, 1.0):
            for sy in (-1.0, 1.0):
                d = f + sx * t * r + sy * t * u
                for z in (0.0, height_scale):
                    points.append(eye + (z - eye[2]) / d[2] * d)
        xy = np.array(points)[:, :2]
        wi = self.pair.wi
        reach = height_scale * math.hypot(wi[0], wi[1]) / max(wi[2], 1e-6) + 2.0 * texel
        lo, hi = xy.min(axis=0) - reach, xy.max(axis=0) + reach
        return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def mesh_subdivision(resolution: int) -> int:
    """k, mesh vertices per texel along each axis: 4 for small maps, fewer for large ones
    (at least :data:`MESH_VERTICES_PER_TILE` per tile side where k <= 4 allows it)."""
    return int(min(4, max(1, math.ceil(MESH_VERTICES_PER_TILE / resolution))))


def suite_bsdf(material: PbrMaterial):
    """The project's BRDF on ``material``'s maps with its height field's shading normals as a
    bilinear normal map (:func:`neumat.data.mitsuba_ref.material_bsdf`): exactly the normals
    the training data is rendered with, also inside a texel."""
    field = HeightField(material.height, material.height_scale)
    return material_bsdf(material, normals=field.texel_normals)

def reference_scene(material: PbrMaterial, view: FidelityView, spp: int = 64, bsdf=None):
    """The Mitsuba scene of one view (module docstring). ``bsdf``: a loaded
    :func:`suite_bsdf` to reuse across views of the same material."""
    mi = require_mitsuba()
    if material.height_scale <= 0.0:
        raise DataError(f"{material.name}: height_scale must be > 0 for a displaced reference")
    field = HeightField(material.height, material.height_scale)
    bounds = view.surface_bounds(material.height_scale, 1.0 / material.resolution)
    mesh = surface_mesh(field, bounds, mesh_subdivision(material.resolution),
                        bsdf if bsdf is not None else suite_bsdf(material))
    return mi.load_dict({
        "type": "scene",
        "surface": mesh,
        "sensor": {
            "type": "perspective", "fov": view.fov_y, "fov_axis": "y",
            "near_clip": 1e-2, "far_clip": 10.0 * CAMERA_DISTANCE,
            "to_world": mi.ScalarTransform4f().look_at(origin=view.eye, target=TARGET, up=view.up),
            "film": {"type": "hdrfilm", "width": view.size, "height": view.size,
                     "rfilter": {"type": "box"}, "pixel_format": "rgb"},
            "sampler": {"type": "stratified", "sample_count": spp},
        },
        "light": {"type": "directional", "direction": (-view.pair.wi).tolist(),
                  "irradiance": {"type": "rgb", "value": [1.0, 1.0, 1.0]}},
        "integrator": {"type": "direct", "emitter_samples": 1, "bsdf_samples": 0},
    })


def render_reference(material: PbrMaterial, view: FidelityView, spp: int = 64, seed: int = 0,
                     bsdf=None, uv_spp: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """Mitsuba's images of :func:`reference_scene`, row 0 at the top.

    Returns:
        (float32 [size, size, 3] linear Rec.709 BTF values — radiance under unit irradiance —,
        float32 [size, size, 2] pixel-averaged texture coordinates of the first hits, in scene
        units (not wrapped), from an ``aov`` render at ``uv_spp`` samples; None when
        ``uv_spp`` is 0).
    """
    mi = require_mitsuba()
    scene = reference_scene(material, view, spp, bsdf)
    image = np.array(mi.render(scene, seed=seed), dtype=np.float32)[..., :3]
    if not uv_spp:
        return image, None
    aov = mi.load_dict({"type": "aov", "aovs": "uv:uv"})
    uv = np.array(mi.render(scene, integrator=aov, seed=seed, spp=uv_spp), dtype=np.float32)[..., :2]
    return image, uv


def same_ray_available() -> bool:
    """Whether Mitsuba's :data:`SAME_RAY_VARIANT` runs on this machine. It JIT-compiles through
    libLLVM, and with LLVM 15 (Debian 12's default) it aborts the process on its first kernel,
    so it is probed once in a subprocess (``make setup`` installs libLLVM 19:
    ``scripts/ensure_llvm.sh``)."""
    global _SAME_RAY_OK
    if _SAME_RAY_OK is None:
        probe = ("import mitsuba as mi; mi.set_variant('llvm_ad_rgb'); import drjit as dr; "
                 "s = mi.load_dict({'type': 'scene', 'r': {'type': 'rectangle'}}); "
                 "si = s.ray_intersect(mi.Ray3f(mi.Point3f(0, 0, 1), mi.Vector3f(0, 0, -1))); "
                 "assert dr.all(si.is_valid())")
        try:
            done = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=120)
            _SAME_RAY_OK = done.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _SAME_RAY_OK = False
    return _SAME_RAY_OK


_SAME_RAY_OK: bool | None = None


@contextmanager
def mitsuba_variant(name: str):
    """Mitsuba with variant ``name`` inside the block; the previous variant is restored after."""
    mi = require_mitsuba()
    previous = mi.variant()
    mi.set_variant(name)
    try:
        yield mi
    finally:
        mi.set_variant(previous)


def reference_at_rays(material: PbrMaterial, view: FidelityView, supersample: int) -> tuple[np.ndarray, np.ndarray]:
    """Mitsuba's ground truth at exactly neumat's sub-pixel rays (``view.camera(supersample)``):
    each ray is intersected with the periodic surface (:class:`.periodic_surface.PeriodicSurface`:
    one tile tessellated at :func:`.periodic_surface.reference_subdivision` vertices per texel),
    :func:`suite_bsdf` is evaluated at the hit toward the light (``bsdf.eval``: the BTF value,
    cosine included) and a shadow ray (:meth:`~.periodic_surface.PeriodicSurface.lit`) decides
    visibility, then ``supersample``² sub-pixels are box-averaged. Sharing neumat's sample
    positions removes the sampling noise of comparing two independent Monte Carlo images: glossy metal's glints (0.1 % of the samples holding half of
    a back-scatter image's energy) made two independent 64-sample estimates of the *same*
    exact image differ by 28 % relative L1 (hammered copper, oblique_b). Variant
    :data:`SAME_RAY_VARIANT` (vectorized; :func:`same_ray_available`).

    Returns:
        (float32 [S, S, 3] BTF values — radiance under unit irradiance —, float32 [S, S, 2]
        pixel-averaged texture coordinates of the hits, scene units, not wrapped); rays that
        miss the surface (none: it is unbounded) count as 0.
    """
    origin, direction = view.camera(supersample).rays()
    origin, direction = origin.reshape(-1, 3), direction.reshape(-1, 3)
    # Start each ray just above the shell top instead of at the eye 100 tiles away: float32
    # intersection tests of 1/1024-tile triangles lose rays through their shared edges there.
    top = SAME_RAY_START_ABOVE * max(material.height_scale, 1.0 / material.resolution)
    t = (top - origin[:, 2]) / direction[:, 2]
    o = np.ascontiguousarray(origin + t[:, None] * direction, np.float32)
    d = np.ascontiguousarray(direction, np.float32)
    with mitsuba_variant(SAME_RAY_VARIANT) as mi:
        field = HeightField(material.height, material.height_scale)
        surface = PeriodicSurface(field, reference_subdivision(material.resolution), suite_bsdf(material))
        si, hits, ray = surface.intersect(o, d)
        hit = np.isfinite(hits[:, 0])
        light = np.asarray(view.pair.wi, np.float64)
        value = si.bsdf(ray).eval(mi.BSDFContext(), si, si.to_local(mi.Vector3f(*map(float, light))), si.is_valid())
        rgb = np.array(value, dtype=np.float32).reshape(3, -1).T
        lit = surface.lit(si, hit, light)
        rgb = np.where(lit[:, None], rgb, 0.0)
        uv = np.where(hit[:, None], hits[:, :2], 0.0)
    s, k = view.size, supersample
    return (rgb.reshape(s, k, s, k, 3).mean(axis=(1, 3)).astype(np.float32),
            uv.reshape(s, k, s, k, 2).mean(axis=(1, 3)).astype(np.float32))
