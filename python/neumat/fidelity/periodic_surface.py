"""The displaced surface of a texture set as Mitsuba meshes (:func:`surface_mesh` over a region),
and ray casting against the infinite, periodic surface through a mesh of one tile of it.

The suite's surface repeats every UV tile, so one tile (plus a margin of
:data:`TILE_MARGIN_TEXELS`) carries all of its geometry: a ray is cast through the tile cell it
is in, up to the cell's wall (``maxt``); a ray that leaves the cell without a hit continues from
the opposite wall of the same tile, and the whole tiles it crossed are counted, so the hit's
unwrapped position is known. Against a mesh over every tile the rays reach this needs 1/10 to
1/30 of the memory, which buys the finer tessellation the ground truth needs at grazing angles
(:func:`reference_subdivision`), and positions stay in [0, 1] where float32 is precise.

Coordinates: world = the material's frame (+x = u, +y = v, +z = macro normal), 1 unit = 1 UV
tile, as :mod:`neumat.fidelity.reference`.
"""

from __future__ import annotations

import math

import numpy as np

from ..data.mitsuba_ref import grid_mesh
from ..material.heightfield import HeightField

TILE_MARGIN_TEXELS = 2
"""Mesh beyond each wall of the tile, texels: each cast goes one texel past its wall, so the
triangles there must be whole."""
REFERENCE_VERTICES_PER_TILE = 4096
"""Mesh vertices per tile side of :func:`reference_subdivision` (4096²: ~6.7 GB of Mitsuba's
memory for the one-tile scene)."""
MAX_SUBDIVISION = 16


def reference_subdivision(resolution: int) -> int:
    """k, mesh vertices per texel along each axis for ``resolution``² maps: as many as
    :data:`REFERENCE_VERTICES_PER_TILE` allows, 1 to :data:`MAX_SUBDIVISION` (4 for 1024² maps).
    The vertices lie on the bilinear surface (texel centres and k − 1 points between), and the
    tessellation is the ground truth's approximation of the bilinear height field that the
    renderer and the training data trace; at grazing light and view on deep relief it decides
    visibility (basket weave, 1024² maps, grazing_mirror pair: light 18° above the plane, 96 % of
    the rays shadowed; 128² × 8² rays, relative L1 between images at k = 1 and 2: 32 %, 2 and 4:
    15 %: first order in 1/k, so k = 4 is still ~15 % from the limit there). Glossy metal's
    retro-reflected glints follow the sub-texel hits too (hammered copper, back_scatter: k = 1
    and 4 differ by 10 %, no shadows involved; the suite table before and after is in the README)."""
    return int(min(MAX_SUBDIVISION, max(1, REFERENCE_VERTICES_PER_TILE // resolution)))


SHADOW_LIFT_TEXELS = 0.01
"""Shadow rays start this far above the hit along the facet's normal, texels (≥ 100 float32
steps at 1.0 for maps up to 4096²). A fixed lift, not Mitsuba's ``spawn_ray`` offset, which
grows with the distance from the origin: at the basket weave's grazing_mirror pair (light 18°
above the plane, 96 % of the rays shadowed) that offset alone changed the image by 16 %."""
EDGE_NUDGES = ((1e-3, 0.5e-3), (-0.5e-3, 1e-3), (0.7e-3, -0.9e-3))
"""Texels: origins of camera rays that went through the mesh are moved by these, one after the
other, and the rays cast again. Embree's ray–triangle test is not watertight, and a ray that
meets the mesh exactly on an edge or vertex may miss both sides: head-on views put every
sub-pixel ray on a texel centre (a mesh vertex), and on flat ground (hammered copper's
clipped dents) 0.2 % of them went through."""
MAX_LOST_FRACTION = 1e-5
"""Camera rays still through the mesh after :data:`EDGE_NUDGES` count as misses up to this
fraction (an error beyond). A shadow ray that goes through counts as blocked."""
MAX_CELL_CROSSINGS = 512
"""Bound on the tile walls one ray may cross (a ray that stays inside the shell longer is
reported, not followed: near-horizontal rays)."""


def surface_mesh(field: HeightField, bounds, subdivision: int, bsdf=None):
    """A ``mi.Mesh`` of the displaced surface over ``bounds`` = (x0, x1, y0, y1) scene units:
    vertices on the height field every 1/(subdivision·R) units, texel centres among them,
    texture coordinates = positions (the maps repeat), vertex normals +z (the shading normals
    come from :func:`.reference.suite_bsdf`'s normal map)."""
    step = 1.0 / (subdivision * field.res)
    offset = 0.5 / field.res

    def ticks(a: float, b: float) -> np.ndarray:
        return offset + np.arange(math.floor((a - offset) / step), math.ceil((b - offset) / step) + 1) * step

    return grid_mesh(field, ticks(bounds[0], bounds[1]), ticks(bounds[2], bounds[3]), bsdf, "fidelity_surface",
                     flat_normals=True)


def tile_mesh(field: HeightField, subdivision: int, bsdf=None):
    """:func:`surface_mesh` over one tile plus :data:`TILE_MARGIN_TEXELS` around it."""
    margin = TILE_MARGIN_TEXELS / field.res
    return surface_mesh(field, (-margin, 1.0 + margin, -margin, 1.0 + margin), subdivision, bsdf)


class PeriodicSurface:
    """The periodic surface of ``field`` in Mitsuba (the active variant: vectorized ones cast
    all rays of a step at once).

    Args:
        field: the height field (heights in tile units).
        subdivision: mesh vertices per texel and axis (:func:`reference_subdivision`).
        bsdf: the mesh's BSDF (``si.bsdf()`` of the hits), or None.
        top: z of the shell top, tile units (above every height; default: just above the highest):
            rays rising above it are gone.
    """

    def __init__(self, field: HeightField, subdivision: int, bsdf=None, top: float | None = None) -> None:
        import mitsuba as mi

        self.mi = mi
        self.texel = 1.0 / field.res
        self.bottom = field.z_min - 1e-3 * (field.z_max - field.z_min) - 1e-6
        self.top = float(top if top is not None else field.z_max + 1e-3 * (field.z_max - field.z_min) + 1e-6)
        self.scene = mi.load_dict({"type": "scene", "surface": tile_mesh(field, subdivision, bsdf)})

    def _rays(self, o: np.ndarray, d: np.ndarray, maxt: np.ndarray):
        mi = self.mi
        o32, d32 = np.asarray(o, np.float32), np.asarray(d, np.float32)
        return mi.Ray3f(mi.Point3f(o32[:, 0], o32[:, 1], o32[:, 2]), mi.Vector3f(d32[:, 0], d32[:, 1], d32[:, 2]),
                        mi.Float(np.asarray(maxt, np.float32)), mi.Float(0.0), mi.Color0f())

    def _walk(self, o: np.ndarray, d: np.ndarray, hits_in_segment
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Follow rays ``o + t·d`` ([N, 3] float64, ``d`` unit) cell by cell; ``hits_in_segment(o,
        d, maxt)`` says which segments hit the mesh. Returns (hit [N] bool, segment origin [N, 3]
        in the tile and segment length [N] of the hits, tiles crossed [N, 2] float64: the
        unwrapped position = tile position + crossed, lost [N] bool: went through the mesh)."""
        n = o.shape[0]
        crossed = np.floor(o[:, :2])
        o = o.copy()
        o[:, :2] -= crossed
        hit = np.zeros(n, bool)
        seg_o, seg_t = np.zeros((n, 3)), np.zeros(n)
        active = np.arange(n)
        lost = np.zeros(n, bool)
        for _ in range(MAX_CELL_CROSSINGS):
            if active.size == 0:
                break
            oa, da = o[active], d[active]
            with np.errstate(divide="ignore", invalid="ignore"):
                wall = np.where(da[:, :2] > 0, (1.0 - oa[:, :2]) / da[:, :2],
                                np.where(da[:, :2] < 0, -oa[:, :2] / da[:, :2], np.inf))
                rise = np.where(da[:, 2] > 0, (self.top - oa[:, 2]) / da[:, 2], np.inf)
            wall = np.maximum(wall, 0.0)
            t_wall = wall.min(axis=1)
            # Each cast reaches a texel past the wall into the margin (the same surface there), so
            # a hit on the wall itself is not lost between two casts to float32 rounding.
            past = self.texel / np.maximum(np.hypot(da[:, 0], da[:, 1]), 1e-12)
            maxt = np.minimum(t_wall + past, rise)
            h = hits_in_segment(oa, da, maxt)
            hit[active[h]] = True
            seg_o[active[h]], seg_t[active[h]] = oa[h], maxt[h]
            go = ~h & (rise > t_wall)
            idx = active[go]
            p = oa[go] + t_wall[go, None] * da[go]
            for axis in (0, 1):  # through each wall reached: onto the opposite wall of the tile
                exits = wall[go, axis] <= t_wall[go]
                ahead = da[go, axis] > 0
                p[:, axis] = np.where(exits, np.where(ahead, 0.0, 1.0), p[:, axis])
                crossed[idx, axis] += np.where(exits, np.where(ahead, 1.0, -1.0), 0.0)
            through = p[:, 2] < self.bottom  # slipped through a mesh edge (float32): a miss
            lost[idx[through]] = True
            o[idx] = p
            active = idx[~through]
        if active.size:
            raise RuntimeError(f"{active.size} rays crossed more than {MAX_CELL_CROSSINGS} tile walls inside the shell")
        return hit, seg_o, seg_t, crossed, lost

    def intersect(self, o: np.ndarray, d: np.ndarray):
        """First hits of the rays ``o + t·d`` ([N, 3], ``o`` above the shell top or inside it,
        not below the surface). Returns (``mi.SurfaceInteraction3f`` of the hits in the tile —
        invalid where the ray missed —, hit position unwrapped [N, 3] float64 — NaN where
        missed —, the segments as ``mi.Ray3f``: ``si.bsdf(ray)`` needs them)."""
        scene = self.scene

        def hits(oa, da, maxt):
            return np.array(scene.ray_intersect_preliminary(self._rays(oa, da, maxt)).is_valid(), bool)

        o, d = np.asarray(o, np.float64), np.asarray(d, np.float64)
        hit, seg_o, seg_t, crossed, lost = self._walk(o, d, hits)
        for nudge in EDGE_NUDGES:  # rays through an edge or vertex: again from a nudged origin
            redo = np.nonzero(lost)[0]
            if redo.size == 0:
                break
            again = self._walk(o[redo] + np.array([*nudge, 0.0]) * self.texel, d[redo], hits)
            hit[redo], seg_o[redo], seg_t[redo], crossed[redo], lost[redo] = again
        if lost.sum() > MAX_LOST_FRACTION * lost.size:
            raise RuntimeError(f"{int(lost.sum())} of {lost.size} rays went through the tile mesh")
        # One last cast per ray along the segment that hit (misses: a zero-length segment).
        ray = self._rays(seg_o, d, np.where(hit, seg_t, 0.0))
        si = scene.ray_intersect(ray)
        p = np.array(si.p, np.float64).reshape(3, -1).T
        p[:, :2] += crossed
        p[~hit] = np.nan
        return si, p, ray

    def occluded(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        """[N] bool: whether the rays ``o + t·d`` (``o`` on or above the surface, e.g. the
        origins of ``si.spawn_ray``) meet the surface before they leave the shell top."""
        scene = self.scene

        def hits(oa, da, maxt):
            return np.array(scene.ray_test(self._rays(oa, da, maxt)), bool)

        hit, *_, lost = self._walk(np.asarray(o, np.float64), np.asarray(d, np.float64), hits)
        return hit | lost

    def lit(self, si, hit: np.ndarray, light: np.ndarray) -> np.ndarray:
        """[N] bool: whether the hits ``si`` (valid where ``hit``) see the directional light
        toward ``light`` (unit, world): the light is above the hit facet's plane and the shadow
        ray from :data:`SHADOW_LIFT_TEXELS` above the hit along the facet normal leaves the
        shell unblocked. As the tessellation gets finer the facet's plane tends to the bilinear
        surface's tangent plane, the renderer's start condition."""
        p = np.array(si.p, np.float64).reshape(3, -1).T
        n = np.array(si.n, np.float64).reshape(3, -1).T
        facing = hit & (n @ np.asarray(light, np.float64) > 0.0)
        start = p[facing] + SHADOW_LIFT_TEXELS * self.texel * n[facing]
        lit = facing.copy()
        lit[facing] = ~self.occluded(start, np.broadcast_to(light, start.shape))
        return lit
