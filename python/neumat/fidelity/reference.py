"""Ground truth of the suite: Mitsuba 3 renders of the displaced maps, seen by the same camera
as neumat's :class:`~neumat.render.renderer.Renderer`.

Scene (world = the material's frame: +x = u, +y = v, +z = macro normal, 1 scene unit = 1 UV
tile; the texture repeats, so world (x, y) shows texture uv = (x, y) mod 1):

* **surface**: the height field ``z = height_scale·h(u, v)`` of the loaded maps as a triangle
  mesh whose vertices lie on the bilinear surface at every texel centre and ``k - 1`` points
  between (:func:`mesh_subdivision`), over exactly the part of the plane the camera rays and
  the shadow rays can reach (:meth:`FidelityView.surface_bounds`); vertex normals are the
  height field's shading normals; BSDF = :func:`neumat.data.mitsuba_ref.material_bsdf`, the
  project's BRDF (``(1-metallic)·albedo/π`` + GGX with ``F0 = mix(0.04, albedo, metallic)``)
  on bilinear, repeating maps — what the training data is rendered with;
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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..data.errors import DataError
from ..material.heightfield import HeightField
from ..data.mitsuba_ref import grid_mesh, material_bsdf, require_mitsuba
from ..data.pbr import PbrMaterial
from ..render.camera import Camera
from .pairs import Pair

CAMERA_DISTANCE = 100.0
"""Distance from the camera to its target, scene units (= UV tiles)."""
TARGET = (0.5, 0.5, 0.0)
"""Point at the image centre: the middle of a texture tile on the base plane."""
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


def surface_mesh(field: HeightField, bounds, subdivision: int, bsdf=None):
    """A ``mi.Mesh`` of the displaced surface over ``bounds`` = (x0, x1, y0, y1) scene units:
    vertices on the height field every 1/(subdivision·R) units, texel centres among them,
    texture coordinates = positions (the maps repeat), vertex normals = shading normals."""
    step = 1.0 / (subdivision * field.res)
    offset = 0.5 / field.res

    def ticks(a: float, b: float) -> np.ndarray:
        return offset + np.arange(math.floor((a - offset) / step), math.ceil((b - offset) / step) + 1) * step

    return grid_mesh(field, ticks(bounds[0], bounds[1]), ticks(bounds[2], bounds[3]), bsdf, "fidelity_surface")


def reference_scene(material: PbrMaterial, view: FidelityView, spp: int = 64, bsdf=None):
    """The Mitsuba scene of one view (module docstring). ``bsdf``: a loaded
    :func:`material_bsdf` to reuse across views of the same material."""
    mi = require_mitsuba()
    if material.height_scale <= 0.0:
        raise DataError(f"{material.name}: height_scale must be > 0 for a displaced reference")
    field = HeightField(material.height, material.height_scale)
    bounds = view.surface_bounds(material.height_scale, 1.0 / material.resolution)
    mesh = surface_mesh(field, bounds, mesh_subdivision(material.resolution),
                        bsdf if bsdf is not None else material_bsdf(material))
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
