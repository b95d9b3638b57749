"""Mitsuba 3 reference of the shadow pass on any mesh: the truly displaced surface, hit by
neumat's own camera rays, one shadow ray per pixel toward a directional light.

The displaced surface is the shell's (:mod:`neumat.render.scene`): each base face is split into
k × k sub-triangles on a barycentric grid (k such that a sub-edge spans at most
1/``vertices_per_texel`` texel in u and in v), and each grid point moved to
``Σ b_i P_i + (d_lo + H(uv)(d_hi - d_lo)) Σ b_i s_i N_i`` — the point of the prism over it at the
height of the bilinear, tiled height map H (``neumat.material.interp.bilinear``, texel centres at
(i + .5)/R), b the barycentrics, s_i the :class:`~neumat.render.scene.HeightSpec` vertex factor
(unnormalized vertex normals, as the prisms' caps) — that is ``Σ b_i Q_i + H(uv) Σ b_i T_i`` with the
prisms' corners Q and extrusions T (:func:`neumat.render.prism.prism_corners`). Mitsuba (the
vectorized ``llvm_ad_rgb``, all rays of a frame in one call) casts the
:meth:`~neumat.render.camera.Camera.rays` of every pixel centre against it and, from each hit,
a shadow ray toward the light; a pixel is shadowed if the hit facet faces away from the light or
that ray is blocked. The shadow ray starts :data:`SHADOW_LIFT_TEXELS` local texels above the hit
along the facet normal (the fidelity suite's convention, :mod:`neumat.fidelity.periodic_surface`),
not from Mitsuba's ``spawn_ray``, whose offset grows with the hit's distance from the origin:
on the plane at light elevation 70° (gravel, 256², 4 vertices per texel) ``spawn_ray`` lit
pits whose occluder lies within that offset, and the IoU against neumat read 0.867; with the
fixed lift it reads 0.928 (0.968 → 0.984 at 30°, 0.941 → 0.969 at 50°). The hits' uv (the
mesh's texture coordinates) is the exact prism map (:mod:`neumat.render.prism`).

Comparison (:func:`shadow_agreement`): on the rays both renderers see, both shadowed fractions
and, with one ray per pixel, the IoU of the shadowed sets, with k × k rays per pixel the soft IoU
of the per-pixel shadowed coverage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...material.interp import bilinear
from ...fidelity.reference import SAME_RAY_VARIANT, mitsuba_variant
from ..camera import Camera
from ..prism import prism_corners
from ..scene import HeightSpec
from ..shapes import Mesh

SHADOW_LIFT_TEXELS = 0.01
"""Start of each shadow ray above its hit, along the facet normal, in local texels (the smaller
world length of one texel along u and v at the hit: ``|∂p/∂u| / res``, ``|∂p/∂v| / res``)."""
VERTICES_PER_TEXEL = 4.0
"""Default density of the displaced mesh. The reference has converged there: on the UV sphere
(gravel, 128², lights at 30/50/70°) its shadow masks agree with a 16-vertices-per-texel mesh at
IoU >= 0.945 on every region (polar cap at 70° the lowest; 2 vertices per texel: 0.86), and
with an 8-vertices-per-texel one at >= 0.97. Within 5° of the pole (128² × 4² rays, lights at
50 / 70°) the shadowed fractions move by less than a point from 2 to 8 vertices per texel
(85-88° latitude: 43.4 / 42.8 / 42.6 % at 50°, 31.5 % at all three at 70°)."""


def subdivision_level(mesh: Mesh, res: int, vertices_per_texel: float) -> int:
    """k of the module docstring: sub-triangle edges span <= 1 / vertices_per_texel texel along
    u and along v on every face (``res`` texels per UV unit)."""
    uv = mesh.uvs[mesh.faces].astype(np.float64)
    span = np.abs(uv - np.roll(uv, 1, axis=1)).max()
    return max(1, int(np.ceil(span * res * vertices_per_texel)))


def displaced_surface(mesh: Mesh, spec: HeightSpec, vertices_per_texel: float = VERTICES_PER_TEXEL):
    """(positions [N, 3] float32, faces [M, 3] uint32, uvs [N, 2] float32) of the displaced
    surface (module docstring)."""
    k = subdivision_level(mesh, spec.height.shape[0], vertices_per_texel)
    i, j = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
    keep = (i + j) <= k
    i, j = i[keep], j[keep]  # grid point (i, j): barycentrics (1 - (i+j)/k, i/k, j/k)
    bary = np.stack([k - i - j, i, j], 1).astype(np.float64) / k  # [G, 3]
    index = -np.ones((k + 1, k + 1), np.int64)
    index[i, j] = np.arange(i.size)
    a, b = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    up = (a + b) <= k - 1
    down = (a + b) <= k - 2
    tris = np.concatenate([
        np.stack([index[a[up], b[up]], index[a[up] + 1, b[up]], index[a[up], b[up] + 1]], 1),
        np.stack([index[a[down] + 1, b[down]], index[a[down] + 1, b[down] + 1], index[a[down], b[down] + 1]], 1),
    ])  # counter-clockwise as the base face (corner 0 -> 1 -> 2)
    f = mesh.faces
    bottom, extrusion = prism_corners(mesh, spec)  # the shell prisms the renderer traces
    uv = np.einsum("gc,fcx->fgx", bary, mesh.uvs.astype(np.float64)[f])
    h = bilinear(spec.height.astype(np.float64), (uv.reshape(-1, 2)) % 1.0, wrap=True).reshape(uv.shape[:2])
    pos = (np.einsum("gc,fcx->fgx", bary, bottom) + h[..., None] * np.einsum("gc,fcx->fgx", bary, extrusion)).reshape(-1, 3)
    faces = (tris[None] + (np.arange(f.shape[0]) * bary.shape[0])[:, None, None]).reshape(-1, 3)
    return pos.astype(np.float32), faces.astype(np.uint32), uv.reshape(-1, 2).astype(np.float32)


@dataclass
class ReferenceShadows:
    """Mitsuba's view of one frame (module docstring)."""

    hit: np.ndarray
    """[H, W] bool: the camera ray meets the displaced surface."""
    shadowed: np.ndarray
    """[H, W] bool: the hit facet faces away from the light or its shadow ray is blocked (False
    where not hit)."""
    position: np.ndarray
    """[H, W, 3] float32 hit points (0 where not hit)."""
    uv: np.ndarray
    """[H, W, 2] float32 uv of the hit points, the exact prism map of the displaced surface
    (NaN where not hit)."""
    normal: np.ndarray
    """[H, W, 3] float32 unit normals of the displaced mesh's facets at the hits, facing the
    camera (0 where not hit)."""


def mitsuba_scene(mi, positions: np.ndarray, faces: np.ndarray, uvs: np.ndarray):
    """A Mitsuba scene holding one triangle mesh with texture coordinates, in the variant of the
    module ``mi`` (the one set)."""
    mesh = mi.Mesh("displaced", positions.shape[0], faces.shape[0], has_vertex_texcoords=True)
    params = mi.traverse(mesh)
    for key, value, dtype in (("vertex_positions", positions, np.float32), ("faces", faces, np.uint32),
                              ("vertex_texcoords", uvs, np.float32)):
        params[key] = type(params[key])(np.ascontiguousarray(value, dtype).ravel())
    params.update()
    return mi.load_dict({"type": "scene", "displaced": mesh})


def _rays(mi, o: np.ndarray, d: np.ndarray):
    """``mi.Ray3f`` of origins and directions [N, 3] (float32; unbounded)."""
    o, d = np.asarray(o, np.float32), np.asarray(d, np.float32)
    return mi.Ray3f(mi.Point3f(o[:, 0], o[:, 1], o[:, 2]), mi.Vector3f(d[:, 0], d[:, 1], d[:, 2]))


def reference_shadows(surface: tuple[np.ndarray, np.ndarray, np.ndarray], camera: Camera, light_directions,
                      texels_per_unit: int) -> list[ReferenceShadows]:
    """Per light (unit world directions toward it): Mitsuba's hits of ``camera``'s pixel-centre
    rays on the displaced ``surface`` (:func:`displaced_surface`'s triple) and their shadow rays
    (module docstring); ``texels_per_unit``: height-map texels per UV unit (sets the shadow
    rays' lift). All rays of a frame go to Mitsuba at once, variant :data:`SAME_RAY_VARIANT`
    (``neumat.fidelity.reference.same_ray_available`` says whether it runs here)."""
    o, d = camera.rays()
    h, w = o.shape[:2]
    o, d = o.reshape(-1, 3), d.reshape(-1, 3)
    with mitsuba_variant(SAME_RAY_VARIANT) as mi:
        scene = mitsuba_scene(mi, *surface)
        si = scene.ray_intersect(_rays(mi, o, d))
        hit = np.array(si.is_valid(), bool)
        p, n, uv = (np.array(v, np.float64).reshape(-1, hit.size).T for v in (si.p, si.n, si.uv))
        texel = np.minimum(*(np.linalg.norm(np.array(v, np.float64).reshape(3, -1), axis=0)
                             for v in (si.dp_du, si.dp_dv))) / texels_per_unit
        n = np.where(np.sum(n * d, axis=-1, keepdims=True) > 0, -n, n)  # the facet's side toward the camera
        p, n, uv = np.where(hit[:, None], p, 0.0), np.where(hit[:, None], n, 0.0), np.where(hit[:, None], uv, np.nan)
        start = p[hit] + (SHADOW_LIFT_TEXELS * texel[hit])[:, None] * n[hit]
        frame = (hit.reshape(h, w), p.reshape(h, w, 3).astype(np.float32), uv.reshape(h, w, 2).astype(np.float32),
                 n.reshape(h, w, 3).astype(np.float32))  # the camera rays' hits, shared by every light
        out = []
        for wi in light_directions:
            wi = np.asarray(wi, np.float64) / np.linalg.norm(wi)
            # dark where the facet faces away from the light, else where the lifted ray is blocked
            facing = n[hit] @ wi > 0.0
            blocked = np.ones(facing.shape, bool)
            lifted = start[facing]
            if lifted.size:  # (Dr.Jit aborts on empty arrays)
                blocked[facing] = np.array(scene.ray_test(_rays(mi, lifted, np.broadcast_to(wi, lifted.shape))), bool)
            shadowed = np.zeros(hit.shape, bool)
            shadowed[hit] = blocked
            out.append(ReferenceShadows(frame[0], shadowed.reshape(h, w), *frame[1:]))
    return out


def shadow_agreement(ours_visible: np.ndarray, ours_lit: np.ndarray, ref: ReferenceShadows,
                     region: np.ndarray | None = None, supersample: int = 1) -> dict[str, float]:
    """Agreement of the shadows over the rays both renderers see (and ``region`` selects).

    With ``supersample`` k, the frame's k × k rays of a pixel are rows k·r .. k·r + k - 1,
    columns k·c .. k·c + k - 1 of the arrays (a camera at k times the resolution: sub-pixel
    centres on a regular grid); per pixel, of its n counted rays neumat shadows s_a and Mitsuba
    s_b, the coverages a = s_a / n and b = s_b / n. Returns ``ours`` and ``mitsuba``, the
    shadowed fractions Σ s / Σ n; ``iou``, the soft IoU Σ n·min(a, b) / Σ n·max(a, b) =
    Σ min(s_a, s_b) / Σ max(s_a, s_b) (each pixel weighted by the rays it counts, so one at a
    region's or silhouette's edge weighs what it covers; for k = 1 the IoU of the binary masks);
    ``pixels``: how many pixels count a ray.

    Args:
        ours_visible: [kH, kW] bool, neumat's mask.
        ours_lit: [kH, kW] bool, neumat's visibility toward the light.
        ref: Mitsuba's frame at the same rays.
        region: [kH, kW] bool, or None for every ray.
        supersample: k.
    """
    sel = ours_visible & ref.hit
    if region is not None:
        sel = sel & region
    k = supersample
    h, w = sel.shape[0] // k, sel.shape[1] // k

    def per_pixel(rays: np.ndarray) -> np.ndarray:
        return rays.reshape(h, k, w, k).sum(axis=(1, 3))

    n, a, b = per_pixel(sel), per_pixel(~ours_lit & sel), per_pixel(ref.shadowed & sel)
    total, union = n.sum(), np.maximum(a, b).sum()
    return {"ours": float(a.sum() / total) if total else float("nan"),
            "mitsuba": float(b.sum() / total) if total else float("nan"),
            "iou": float(np.minimum(a, b).sum() / union) if union else 1.0, "pixels": int(np.sum(n > 0))}
