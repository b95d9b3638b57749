"""Mitsuba 3 reference renders of a BTF slice — the independent check of :mod:`neumat.data.slice_renderer`.

The scene reproduces the synthetic BTF's definition with Mitsuba's own camera, integrator,
emitter, intersection and BSDF code (variant ``scalar_rgb``; ``pip install mitsuba``):

* geometry: the height field as a triangle mesh, each bilinear cell split into k×k quads whose
  vertices lie *on* the bilinear surface (so the mesh converges to it as k grows), covering
  the tile plus the margin that oblique camera and shadow rays can reach; vertex normals are
  our shading normals at the vertices (Mitsuba interpolates and renormalizes them);
* BSDF: ``blendbsdf(0.5, diffuse(2·kd), roughconductor(ggx, material="none",
  specular_reflectance=2·F0, alpha))`` with bilinear, repeating, raw (linear) bitmaps of the
  per-texel maps of :meth:`PbrMaterial.shading_maps` — exactly :mod:`neumat.data.brdf`;
* emitter: ``directional`` from ωi with irradiance 1 (radiance = BTF value);
* camera: an *oblique* orthographic camera along -ωo whose image plane is the shell top
  z = height_scale, sheared so that pixel (r, c) is the ray entering the shell at
  uv = ((c + .5) / S, (r + .5) / S) — the ``"reference"`` uv space — with a box pixel filter;
* integrator: ``direct`` (one emitter sample; the delta light needs no BSDF sampling).
"""

from __future__ import annotations

import numpy as np

from .errors import DataError
from ..material.heightfield import HeightField
from .pbr import PbrMaterial
from .slice_renderer import SliceRenderer

CAMERA_DISTANCE = 2.0
"""How far (UV units) above the shell top along ωo the orthographic camera's plane sits."""


def require_mitsuba():
    """Import Mitsuba 3 with the ``scalar_rgb`` variant (or the variant already set)."""
    try:
        import mitsuba as mi
    except ImportError as e:
        raise DataError("Mitsuba 3 is needed for reference renders: pip install mitsuba") from e
    if mi.variant() is None:
        mi.set_variant("scalar_rgb")
    return mi


def height_field_mesh(field: HeightField, subdivision: int, margin: float, bsdf=None):
    """A ``mi.Mesh`` of the displaced surface over [-margin, 1 + margin]² (UV units).

    Args:
        field: the height field and its shading normals.
        subdivision: k, quads per texel cell along each axis (even, so texel centres are
            vertices).
        margin: extra UV range around the tile that secondary rays may cross.
        bsdf: optional loaded Mitsuba BSDF to attach.
    """
    step = 1.0 / (subdivision * field.res)
    ticks = np.arange(np.floor(-margin / step), np.ceil((1.0 + margin) / step) + 1) * step
    return grid_mesh(field, ticks, ticks, bsdf)


def grid_mesh(field: HeightField, xs: np.ndarray, ys: np.ndarray, bsdf=None, name: str = "height_field",
              flat_normals: bool = False):
    """A ``mi.Mesh`` of the displaced surface on the vertex grid ``xs`` × ``ys`` (UV units,
    increasing): positions (u, v, height), texture coordinates (u, v) (the maps repeat), vertex
    normals = the field's shading normals (``flat_normals``: +z everywhere, so the shading frame
    is the world frame and a :func:`material_bsdf` with ``normals`` sets the normals), two
    counter-clockwise (from +z) triangles per cell."""
    mi = require_mitsuba()
    x, y = np.meshgrid(xs, ys)
    uv = np.stack([x.ravel(), y.ravel()], axis=1)
    positions = np.concatenate([uv, field.height_at(uv % 1.0)[:, None]], axis=1)
    normals = np.broadcast_to([0.0, 0.0, 1.0], uv.shape[:1] + (3,)) if flat_normals else field.normal_at(uv % 1.0)
    nx = xs.size
    row, col = np.meshgrid(np.arange(ys.size - 1), np.arange(nx - 1), indexing="ij")
    a = (row * nx + col).ravel()
    faces = np.concatenate([np.stack([a, a + 1, a + nx + 1], 1), np.stack([a, a + nx + 1, a + nx], 1)])
    props = mi.Properties()
    if bsdf is not None:
        props["bsdf"] = bsdf
    mesh = mi.Mesh(name, positions.shape[0], faces.shape[0], props=props,
                   has_vertex_normals=True, has_vertex_texcoords=True)
    params = mi.traverse(mesh)
    for key, value in (("vertex_positions", positions), ("vertex_normals", normals),
                       ("vertex_texcoords", uv), ("faces", faces)):
        dtype = np.uint32 if key == "faces" else np.float32
        params[key] = type(params[key])(np.ascontiguousarray(value, dtype=dtype).ravel())
    params.update()
    return mesh


def material_bsdf(material: PbrMaterial, diffuse_only: bool = False, normals: np.ndarray | None = None):
    """The Mitsuba BSDF equal to :func:`neumat.data.brdf.eval_brdf_cos` for ``material``.

    ``normals``: optional [R, R, 3] unit texel normals in the mesh's shading frame, applied by
    Mitsuba's ``normalmap`` as a bilinear, repeating texture of (n + 1) / 2 renormalized — the
    bilinear interpolation of the texel normals that :meth:`HeightField.normal_at` defines
    (on a :func:`grid_mesh` with ``flat_normals``, whose shading frame is the world frame).
    Without it the mesh's vertex normals are interpolated linearly over each triangle, which
    differs from the bilinear field inside a texel: glints of glossy metal move (measured on
    the fidelity suite's hammered copper, the numpy truth at neumat's traced hits vs Mitsuba
    at 41 % relative L1 in the oblique_b pair). Mitsuba's own additions to normal mapping are
    switched off: its default shadow-terminator factor (Estevez et al. 2019) darkened the basket
    weave's grazing-light pair by 29 % (median per ray) where the tilted normal meets a 12°
    light, on top of the traced shadows.
    """
    mi = require_mitsuba()
    maps = material.shading_maps()
    if diffuse_only:
        bsdf = {"type": "diffuse", "reflectance": _bitmap(mi, maps["kd"])}
    else:
        bsdf = {
            "type": "blendbsdf", "weight": 0.5,
            "diffuse": {"type": "diffuse", "reflectance": _bitmap(mi, 2.0 * maps["kd"])},
            "specular": {"type": "roughconductor", "distribution": "ggx", "material": "none",
                         "alpha": _bitmap(mi, maps["alpha"]),
                         "specular_reflectance": _bitmap(mi, 2.0 * maps["f0"])},
        }
    if normals is not None:
        bsdf = {"type": "normalmap", "normalmap": _bitmap(mi, 0.5 * (np.asarray(normals) + 1.0)), "bsdf": bsdf,
                # Mitsuba >= 3.6 defaults: an Estevez shadow-terminator factor on every value and
                # shading normals flipped toward the viewer; neither is the project's BRDF (shadows
                # are traced on the geometry), so both are off.
                "use_shadowing_function": False, "flip_invalid_normals": False}
    return mi.load_dict(bsdf)


def reference_scene(material: PbrMaterial, wi: np.ndarray, wo: np.ndarray, resolution: int,
                    spp: int = 64, subdivision: int = 4, diffuse_only: bool = False,
                    normal_source: str = "height"):
    """The Mitsuba scene of one ``"reference"``-space slice (module docstring).

    Args:
        wi, wo: [3] unit light / view directions (local frame = world frame, z > 0).
        resolution: S, image side in pixels.
        spp: samples per pixel of a stratified sampler (a perfect square).
        subdivision: mesh quads per texel cell along each axis (even).
        diffuse_only: use only the diffuse lobe (closed-form checks).
        normal_source: shading normals, as in :class:`~neumat.data.slice_renderer.SliceRenderer`.
    """
    mi = require_mitsuba()
    wi, wo = np.asarray(wi, np.float64), np.asarray(wo, np.float64)
    if wi[2] <= 0 or wo[2] <= 0:
        raise DataError("wi and wo must point above the surface (z > 0)")
    tan_max = max(np.hypot(wi[0], wi[1]) / wi[2], np.hypot(wo[0], wo[1]) / wo[2])
    margin = material.height_scale * tan_max + 2.0 / material.resolution
    field = SliceRenderer(material, normal_source).field
    mesh = height_field_mesh(field, subdivision, margin, material_bsdf(material, diffuse_only))
    to_world = np.eye(4)
    to_world[:3, 0] = [-0.5, 0.0, 0.0]  # film x in [-1, 1] -> u in [0, 1] (left to right)
    to_world[:3, 1] = [0.0, -0.5, 0.0]  # film y -> v, row 0 at v = 0
    to_world[:3, 2] = -wo
    to_world[:3, 3] = np.array([0.5, 0.5, material.height_scale]) + CAMERA_DISTANCE * wo
    return mi.load_dict({
        "type": "scene",
        "surface": mesh,
        "sensor": {
            "type": "orthographic", "near_clip": 1e-3,
            "to_world": mi.ScalarTransform4f(to_world.tolist()),
            "film": {"type": "hdrfilm", "width": resolution, "height": resolution,
                     "rfilter": {"type": "box"}, "pixel_format": "rgb"},
            "sampler": {"type": "stratified", "sample_count": spp},
        },
        "light": {"type": "directional", "direction": (-wi).tolist(),
                  "irradiance": {"type": "rgb", "value": [1.0, 1.0, 1.0]}},
        "integrator": {"type": "direct", "emitter_samples": 1, "bsdf_samples": 0},
    })


def render_reference(material: PbrMaterial, wi: np.ndarray, wo: np.ndarray, resolution: int,
                     spp: int = 64, subdivision: int = 4, diffuse_only: bool = False,
                     normal_source: str = "height", seed: int = 0) -> np.ndarray:
    """Mitsuba's image of :func:`reference_scene`: float32 [S, S, 3] linear RGB BTF values,
    each pixel box-filtered over its footprint (compare with ``supersample`` > 1)."""
    mi = require_mitsuba()
    scene = reference_scene(material, wi, wo, resolution, spp, subdivision, diffuse_only,
                            normal_source)
    return np.array(mi.render(scene, seed=seed), dtype=np.float32)[..., :3]


def _bitmap(mi, values: np.ndarray) -> dict:
    arr = np.ascontiguousarray(values, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    return {"type": "bitmap", "bitmap": mi.Bitmap(arr), "raw": True,
            "filter_type": "bilinear", "wrap_mode": "repeat"}
