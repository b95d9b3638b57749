"""The relief frame of a triple-plane material: the slope of its height map at any uv (numpy).

Bundles in the ``"relief-minrot-concentric-v3"`` parameterization (:mod:`neumat.angles.planes`)
measure the H/D plane coordinates in the frame of the relief's own normal instead of the macro
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
2. the slope at ``uv``: the bilinear fetch of ``G`` with wrap
   (:func:`neumat.material.common.bilinear_lookup_np`).

A bundle without height map is flat: slope 0, and the v3 coordinates equal v2's.
``shaders/relief_frame.slang`` performs the same arithmetic (tested in
``tests/test_relief_frame.py``). With ACF synthesis on, ``H`` is the synthesized height
evaluated at the texel centres around ``uv`` (the relief the renderer traces).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..angles import plane_coords, uses_relief_frame
from .common import bilinear_lookup_np
from .mips import lookup_at_lod_np, mip_chain, slope_level_of_detail


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

    @classmethod
    def from_height(cls, height: np.ndarray, height_range: tuple[float, float], u_cols: int = 0) -> ReliefSlope:
        """The relief of a height map in [0, 1] of ``height_range`` (UV units), read beside a U
        plane ``u_cols`` wide (0: the map's own width)."""
        return cls(slope_texels(height, height_range), int(u_cols))

    @classmethod
    def of_bundle(cls, bundle) -> ReliefSlope | None:
        """The relief whose frame ``bundle`` measures its H/D coordinates in; ``None`` when it
        has none (:func:`has_relief_frame`: another parameterization, or a flat relief)."""
        if not has_relief_frame(bundle):
            return None
        return cls.from_height(bundle.height, bundle.height_range, bundle.planes["U"].shape[1])

    @cached_property
    def chain(self) -> list[np.ndarray]:
        """The slope texels' mip chain (:func:`.mips.mip_chain`), level 0 = :attr:`texels`."""
        return mip_chain(self.texels)

    def at(self, uv: np.ndarray, footprint: np.ndarray | None = None) -> np.ndarray:
        """Float32 ``[B, 2]`` slope at float32 ``[B, 2]`` uv (bilinear with wrap); with pixel
        footprints ``[B]`` (log2 UV units) the mean slope under them, trilinear through
        :attr:`chain` at :func:`.mips.slope_level_of_detail` (exactly the bilinear slope where a
        footprint is at most one U texel)."""
        uv = np.asarray(uv, dtype=np.float32)
        if footprint is None:
            return bilinear_lookup_np(self.texels, uv, wrap=True)
        cols = self.texels.shape[1]
        return lookup_at_lod_np(self.chain, uv, slope_level_of_detail(footprint, self.u_cols or cols, cols,
                                                                        len(self.chain)))


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
        ``[B]`` (log2 UV units): the relief frame of the mean slope under each pixel
        (:meth:`ReliefSlope.at`, feature LoD)."""
        wi, wo = np.asarray(wi, np.float32), np.asarray(wo, np.float32)
        use = self.relief is not None and uses_relief_frame(self.angle_param)
        slope = self.relief.at(uv, footprint) if use else None
        h, d = plane_coords(wi, wo, self.angle_param, slope)
        return h.astype(np.float32), d.astype(np.float32)
