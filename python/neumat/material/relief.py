"""The relief frame of a triple-plane material: the slope of its height map at any uv (numpy).

Bundles in the ``"relief-minrot-concentric-v3"`` and ``-v4`` parameterizations
(:mod:`neumat.angles.planes`) measure the H/D plane coordinates in the frame of the relief's own normal instead of the macro
surface's: the directions are turned by the minimal rotation taking the relief normal
``n = normalize(-s_u, -s_v, 1)`` to +z. A hammered metal's highlight then sits at the centre of
the H plane at every texel, instead of wandering with the dents, so the U features need not
encode each texel's tilt (hammered copper, same model and steps: held-out relative L1 68 % ->
25 %). ``(s_u, s_v) = (dz/du, dz/dv)`` is the slope of the displaced surface, ``z`` in UV units
(the tile is 1 x 1), and is a deterministic function of the bundle's own height map, so every
evaluator computes the same frame:

1. slope texels ``G [rows, cols, 2]`` float32, central differences with wrap (texel (r, c) at
   uv = ((c + .5) / cols, (r + .5) / rows), row = v, column = u), in this order of operations::

       G[r, c, 0] = (H[r, c + 1] - H[r, c - 1]) * (cols / 2) * (h_max - h_min)
       G[r, c, 1] = (H[r + 1, c] - H[r - 1, c]) * (rows / 2) * (h_max - h_min)

   (``H`` the float32 height map in [0, 1] of ``height_range = (h_min, h_max)``, UV units;
   ``cols / 2`` and ``h_max - h_min`` rounded to float32 first);
2. the slope at ``uv``:

   * v3: the bilinear fetch of ``G`` with wrap (:func:`neumat.material.common.bilinear_lookup_np`);
   * v4 (:func:`neumat.angles.interpolates_normals`): the slope of the renderer's shading
     normal, ``-m.xy / m.z`` of the bilinear fetch ``m`` (same function) of the unit texel
     normals ``N = (-G_u, -G_v, 1) / sqrt((G_u * G_u + G_v * G_v) + 1)`` (float32, that order:
     three divisions by one square root) — the normal of
     :meth:`neumat.material.heightfield.HeightField.normal_at`, which the BTF's data and the
     fidelity suite's Mitsuba reference shade with. On steep texels the two differ by degrees
     (hammered copper of the fidelity suite, at the rays of its back-scatter glints: median
     1.2°, p90 3.1°, max 6.6°; random rays: 0.000°), and a v3 network learns glints displaced
     by that much (same data and steps, network vs Mitsuba's exact hits on the back-scatter
     pair: 28.1 % relative L1 for v3, 13.5 % for v4's frame; the fidelity suite's rendered
     copper: mean 8.6 % -> 5.6 %, back-scatter 26.9 % -> 14.0 %).

   With feature LoD (:meth:`ReliefSlope.at` with footprints) the point slope is level 0 of the
   trilinear blend; levels >= 1 are the slope texels' mip chain in both. Bundles whose coarse
   levels were fitted in the visible frame (:attr:`ReliefSlope.visible_gain`,
   :mod:`.visible_slope`) blend the slopes' moments the same way and read, where the lod is
   above 0, the slope the viewer sees under the pixel instead of the mean.

A bundle without height map is flat: slope 0, and the v3 / v4 coordinates equal v2's.
``shaders/relief_frame.slang`` performs the same arithmetic (``reliefSlope`` /
``reliefSlopeOfNormals``, tested bit for bit in ``tests/test_relief_frame.py``). With ACF synthesis on, ``H`` is the synthesized height
evaluated at the texel centres around ``uv`` (the relief the renderer traces).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..angles import interpolates_normals, plane_coords, uses_relief_frame
from .common import bilinear_lookup_np
from .mips import blend_levels, mip_chain, slope_level_of_detail, visible_gain
from .visible_slope import moment_texels, synthesized_moments, visible_slope


class ReliefFrameError(ValueError):
    """A height map the relief frame cannot be computed from."""


def slope_texels(height: np.ndarray, height_range: tuple[float, float]) -> np.ndarray:
    """Float32 ``[rows, cols, 2]`` slope texels ``G`` of a height map (step 1 of the module)."""
    h = np.asarray(height, dtype=np.float32)
    if h.ndim != 2 or min(h.shape) < 1:
        raise ReliefFrameError(f"height map must be [rows, cols], got shape {h.shape}")
    rows, cols = h.shape
    extent = np.float32(float(height_range[1]) - float(height_range[0]))
    du = (np.roll(h, -1, axis=1) - np.roll(h, 1, axis=1)) * np.float32(cols / 2) * extent
    dv = (np.roll(h, -1, axis=0) - np.roll(h, 1, axis=0)) * np.float32(rows / 2) * extent
    return np.stack([du, dv], axis=-1).astype(np.float32)


def normal_texels(slopes: np.ndarray) -> np.ndarray:
    """Float32 ``[rows, cols, 3]`` unit texel normals ``N`` of slope texels ``G`` ``[rows, cols, 2]``
    (step 2, v4, of the module docstring: ``(-G_u, -G_v, 1) / sqrt((G_u G_u + G_v G_v) + 1)``)."""
    g = np.asarray(slopes, dtype=np.float32)
    length = np.sqrt((g[..., 0] * g[..., 0] + g[..., 1] * g[..., 1]) + np.float32(1))
    return np.stack([-g[..., 0] / length, -g[..., 1] / length, np.float32(1) / length], axis=-1).astype(np.float32)


def normal_slope(normals: np.ndarray) -> np.ndarray:
    """Float32 ``[B, 2]`` slope ``-m.xy / m.z`` of interpolated normals ``m`` ``[B, 3]`` (v4)."""
    m = np.asarray(normals, dtype=np.float32)
    return np.stack([-m[:, 0] / m[:, 2], -m[:, 1] / m[:, 2]], axis=-1).astype(np.float32)


def has_relief_frame(bundle) -> bool:
    """True when ``bundle`` measures its H/D coordinates in the frame of a relief: a relief-frame
    parameterization (:func:`neumat.angles.uses_relief_frame`) and a height map. Cheap (the
    slope is not computed): what passes and validation ask.

    Raises:
        ReliefFrameError: the height range is in scene units (the frame needs UV units).
    """
    if not uses_relief_frame(bundle.angle_param) or bundle.height is None:
        return False
    if bundle.height_units != "uv":
        raise ReliefFrameError(f"the relief frame needs a height range in UV units, the bundle's "
                               f"is in {bundle.height_units!r}")
    return True


@dataclass(frozen=True)
class ReliefSlope:
    """The slope ``(dz/du, dz/dv)`` of a material's relief at any uv (UV units per UV unit)."""

    texels: np.ndarray
    """Float32 ``[rows, cols, 2]`` slope texels ``G`` (module docstring)."""
    u_cols: int = 0
    """Columns of the U plane read beside it, whose texels the LoD rule counts in
    (:func:`.mips.slope_level_of_detail`); 0: the slope texels' own columns."""
    normals: bool = False
    """True: the point slope is that of the interpolated unit texel normals (v4,
    :attr:`normal_texels`); False: the interpolated slope texels (v3). Module docstring, step 2."""
    visible_gain: float = 0.0
    """With feature LoD: the gain of the visible frame (:mod:`.visible_slope`) for bundles whose
    coarse U levels were fitted in it (:func:`.mips.visible_gain`); 0: the mean slope."""

    @classmethod
    def from_height(cls, height: np.ndarray, height_range: tuple[float, float], u_cols: int = 0,
                    normals: bool = False, visible_gain: float = 0.0) -> ReliefSlope:
        """The relief of a height map in [0, 1] of ``height_range`` (UV units), read beside a U
        plane ``u_cols`` wide (0: the map's own width); ``normals``, ``visible_gain``: the fields."""
        return cls(slope_texels(height, height_range), int(u_cols), bool(normals), float(visible_gain))

    @classmethod
    def for_parameterization(cls, angle_param: str, height: np.ndarray, height_range: tuple[float, float],
                             u_cols: int = 0, visible_gain: float = 0.0) -> ReliefSlope:
        """:meth:`from_height` with the point slope of parameterization ``angle_param``
        (:func:`neumat.angles.interpolates_normals`)."""
        return cls.from_height(height, height_range, u_cols, interpolates_normals(angle_param), visible_gain)

    @classmethod
    def of_bundle(cls, bundle) -> ReliefSlope | None:
        """The relief whose frame ``bundle`` measures its H/D coordinates in; ``None`` when it
        has none (:func:`has_relief_frame`: another parameterization, or a flat relief)."""
        if not has_relief_frame(bundle):
            return None
        return cls.for_parameterization(bundle.angle_param, bundle.height, bundle.height_range,
                                        bundle.planes["U"].shape[1], visible_gain(bundle.provenance))

    @cached_property
    def chain(self) -> list[np.ndarray]:
        """The slope texels' mip chain (:func:`.mips.mip_chain`), level 0 = :attr:`texels`
        (levels >= 1: the first two channels of :attr:`moment_chain`)."""
        return [self.texels, *(level[..., :2] for level in self.moment_chain[1:])]

    @cached_property
    def moment_chain(self) -> list[np.ndarray]:
        """The mip chain (:func:`.mips.mip_chain`) of the slope texels' moments ``[rows_L,
        cols_L, 5]`` (:func:`.visible_slope.moment_texels`), which the visible frame reads."""
        return mip_chain(moment_texels(self.texels))

    def lod(self, footprint: np.ndarray) -> np.ndarray:
        """Float32 ``[B]`` level of detail of :attr:`chain` for footprints ``[B]`` (log2 UV units,
        :func:`.mips.slope_level_of_detail`)."""
        cols = self.texels.shape[1]
        return slope_level_of_detail(footprint, self.u_cols or cols, cols, len(self.moment_chain))

    def visible_of(self, slope: np.ndarray, footprint: np.ndarray, wo: np.ndarray,
                   covariances: np.ndarray) -> np.ndarray:
        """Float32 ``[B, 2]``: a prefiltered slope ``[B, 2]`` of a relief without moment chain
        (the synthesized one) in the visible frame of :attr:`visible_gain` where the lod of its
        footprint is above 0, its moments the slope's plus that relief's per-level
        ``covariances`` ``[levels, 3]`` (:func:`.visible_slope.synthesized_moments`); as given
        elsewhere and without a gain."""
        out = np.array(slope, dtype=np.float32)
        if not self.visible_gain:
            return out
        lod = self.lod(footprint)
        minified = np.flatnonzero(lod > 0)
        moments = synthesized_moments(out[minified], lod[minified], covariances)
        out[minified] = visible_slope(moments, np.asarray(wo, np.float32)[minified], self.visible_gain)
        return out

    @cached_property
    def normal_texels(self) -> np.ndarray:
        """Float32 ``[rows, cols, 3]`` unit texel normals of :attr:`texels` (:func:`normal_texels`)."""
        return normal_texels(self.texels)

    def point(self, uv: np.ndarray) -> np.ndarray:
        """Float32 ``[B, 2]`` slope at the points float32 ``uv`` ``[B, 2]`` (module docstring,
        step 2: bilinear with wrap of the slope texels, or of the unit normals for :attr:`normals`)."""
        uv = np.asarray(uv, dtype=np.float32)
        if self.normals:
            return normal_slope(bilinear_lookup_np(self.normal_texels, uv, wrap=True))
        return bilinear_lookup_np(self.texels, uv, wrap=True)

    def at(self, uv: np.ndarray, footprint: np.ndarray | None = None, wo: np.ndarray | None = None) -> np.ndarray:
        """Float32 ``[B, 2]`` slope at float32 ``[B, 2]`` uv (:meth:`point`); with pixel
        footprints ``[B]`` (log2 UV units) the mean slope under them, trilinear through
        :attr:`chain` at :func:`.mips.slope_level_of_detail` with :meth:`point` as level 0
        (exactly the point slope where a footprint is at most one U texel). With a
        :attr:`visible_gain` and view directions ``wo`` ``[B, 3]`` (local frame), where the lod
        is above 0: the visible frame (:func:`.visible_slope.visible_slope`) of the moments
        blended the same way through :attr:`moment_chain`."""
        uv = np.asarray(uv, dtype=np.float32)
        point = self.point(uv)
        if footprint is None:
            return point
        lod = self.lod(footprint)
        if not self.visible_gain or wo is None:
            chain = self.chain
            return blend_levels(lod, point, len(chain), lambda level, sel: bilinear_lookup_np(chain[level], uv[sel], True))
        moments = self.moment_chain
        blended = blend_levels(lod, moment_texels(point), len(moments),
                               lambda level, sel: bilinear_lookup_np(moments[level], uv[sel], True))
        minified = np.flatnonzero(lod > 0)
        point[minified] = visible_slope(blended[minified], np.asarray(wo, np.float32)[minified], self.visible_gain)
        return point


@dataclass(frozen=True)
class DirectionCoding:
    """How a triple-plane material turns samples ``(uv, wi, wo)`` into H/D plane coordinates:
    its parameterization (:data:`neumat.angles.PLANE_PARAMETERIZATIONS`) and, for the
    relief-frame ones, its relief (``None``: flat)."""

    angle_param: str
    relief: ReliefSlope | None = None

    def coords(self, uv: np.ndarray, wi: np.ndarray, wo: np.ndarray,
               footprint: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Float32 ``([B, 2], [B, 2])`` H and D coordinates of float32 ``uv`` ``[B, 2]`` and unit
        directions ``wi``, ``wo`` ``[B, 3]`` (local frame, +z = macro normal); ``footprint``
        ``[B]`` (log2 UV units): the relief frame of the mean (or visible) slope under each pixel
        (:meth:`ReliefSlope.at`, feature LoD)."""
        wi, wo = np.asarray(wi, np.float32), np.asarray(wo, np.float32)
        use = self.relief is not None and uses_relief_frame(self.angle_param)
        slope = self.relief.at(uv, footprint, wo) if use else None
        h, d = plane_coords(wi, wo, self.angle_param, slope)
        return h.astype(np.float32), d.astype(np.float32)
