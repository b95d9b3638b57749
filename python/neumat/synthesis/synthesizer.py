"""ACF-guided dual-tiling synthesis of a bundle's U plane and height map (numpy reference of
``shaders/acf_synthesis.slang``; the render pass is :mod:`neumat.render.passes.synthesis`).

Per point ``uv`` (see :mod:`.tiling` for the grids and :mod:`.offsets` for the offsets):

1. both grids give a tile, a texel shift drawn from the curved-ACF pdf of the U plane, and a
   window weight ``w_A``, ``w_B``;
2. the Gaussianized plane ``T`` (:mod:`.histogram`) is read (bilinear, wrap) at the two shifted
   points and blended with variance-normalized weights (Heitz & Neyret 2018, eq. 3, with the
   Gaussian mean 0 as third, "singularity" term of weight ``eps`` =
   :data:`~.tiling.SINGULARITY_WEIGHT`)::

       G = (w_A T_A + w_B T_B + eps * 0) / sqrt(w_A² + w_B² + eps²)

   so ``G ~ N(0, 1)`` wherever ``T_A``, ``T_B`` are uncorrelated. ACF-guided offsets
   correlate them on purpose (aligned structure), which raises the variance a little:
   measured +0-5 % per channel on stone_tiles / brick, up to +14 % on fabric's height
   (a near-periodic weave), versus -20 to -26 % for linear blending;
3. ``G`` goes back through the inverse-histogram LUT: the output has the exemplar's per-channel
   histogram (hence its mean and variance).

The height map uses the same shifts and weights and is histogram-blended too (its own
Gaussianization and LUT), so heights and U features stay registered. H and D planes are not
synthesized. ``blend="linear"`` is the naive alternative kept for comparison:
``(w_A V_A + w_B V_B + eps mean) / (w_A + w_B + eps)`` on raw values (it loses contrast where
tiles mix).
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .acf import DEFAULT_CENTRAL_THRESHOLD, DEFAULT_GAMMA, OffsetPdf, autocovariance, offset_pdf
from .histogram import GaussianizedPlane, gaussianize, inverse_histogram
from .offsets import OffsetTables
from .prefilter import PrefilteredPlane, blend_lod
from .relief import relief_slope, slope_covariances
from .tiling import SINGULARITY_WEIGHT, DualTileSample, bilinear_wrap, dual_tile_sample

BLENDS = ("histogram", "linear")
"""Blend operators: variance/histogram-preserving (default) or naive linear (comparison only)."""


@dataclass(frozen=True)
class SynthesisConfig:
    """Parameters of ACF-guided synthesis."""

    tile_size: float = 0.5
    """Tile side in UV units (the exemplar is 1 x 1); 0.25-1 is sensible: smaller tiles vary
    more but blend more of the area."""
    gamma: float = DEFAULT_GAMMA
    """Curved-ACF exponent: pdf ∝ max(0, ACF)^gamma."""
    central_threshold: float = DEFAULT_CENTRAL_THRESHOLD
    """ACF level bounding the excluded zero-shift lobe (see :mod:`.acf`)."""
    peak_window: int = 0
    """0: offsets anywhere the curved ACF is positive (default: least repetition). Odd k >= 3:
    only at k x k local maxima of the ACF (structure exactly aligned; see :mod:`.acf`)."""
    seed: int = 0
    """uint32 seed of the per-tile offset hash (same seed, same synthesis)."""

    def __post_init__(self) -> None:
        if not self.tile_size > 0:
            raise ValueError(f"tile_size must be > 0 UV units, got {self.tile_size}")
        if self.peak_window != 0 and (self.peak_window < 3 or self.peak_window % 2 == 0):
            raise ValueError(f"peak_window must be 0 or an odd number >= 3, got {self.peak_window}")
        if not 0 <= int(self.seed) < 2**32:
            raise ValueError(f"seed must be a uint32, got {self.seed}")


@dataclass(frozen=True)
class SynthesisResult:
    """Synthesized values at a set of points ``[...]``."""

    features: np.ndarray
    """float32 ``[..., C]`` U-plane features."""
    height: np.ndarray | None
    """float32 ``[...]`` height in [0, 1] (None without a height map)."""
    sample: DualTileSample
    """Tiles, texel shifts and weights used (for tests and debug views)."""


@dataclass(frozen=True)
class Synthesizer:
    """Everything derived at bundle load: ACF pdf, offset CDF tables, Gaussianized planes.

    Build with :meth:`from_planes` or :meth:`from_bundle`.
    """

    config: SynthesisConfig
    pdf: OffsetPdf
    tables: OffsetTables
    u_plane: GaussianizedPlane
    """Gaussianized U plane ``[rows, cols, C]`` + LUT."""
    u_raw: np.ndarray = field(repr=False)
    """float32 U plane as loaded (for linear blending and plain tiling)."""
    height: GaussianizedPlane | None = None
    height_raw: np.ndarray | None = field(default=None, repr=False)
    u_levels: tuple[np.ndarray, ...] = field(default=(), repr=False)
    """The bundle's stored (learned) coarse U levels 1.. (:attr:`neumat.bundle.Bundle.u_levels`),
    whose values the prefiltered levels' LUTs match (:mod:`.prefilter`); () for box-chain
    bundles."""

    @classmethod
    def from_planes(cls, u: np.ndarray, height: np.ndarray | None = None,
                    config: SynthesisConfig | None = None) -> Synthesizer:
        """Derive the synthesis data from a U plane ``[rows, cols, C]`` (float16/32) and an
        optional height map ``[rows_h, cols_h]`` in [0, 1]."""
        config = config or SynthesisConfig()
        u = np.ascontiguousarray(u, dtype=np.float32)
        if u.ndim != 3:
            raise ValueError(f"U plane must be [rows, cols, C], got {u.shape}")
        pdf = offset_pdf(autocovariance(u), config.gamma, config.central_threshold, config.peak_window)
        h_raw = None if height is None else np.ascontiguousarray(height, dtype=np.float32)[..., None]
        return cls(config, pdf, OffsetTables.from_pdf(pdf), gaussianize(u), u,
                   None if h_raw is None else gaussianize(h_raw), h_raw)

    @classmethod
    def from_bundle(cls, bundle, config: SynthesisConfig | None = None) -> Synthesizer:
        """From a :class:`neumat.bundle.Bundle`: its ``"U"`` plane (``"rgb"`` for NeuMIP) and
        height map."""
        name = "U" if "U" in bundle.planes else "rgb"
        synth = cls.from_planes(bundle.planes[name], bundle.height, config)
        levels = tuple(np.asarray(level, np.float32) for level in getattr(bundle, "u_levels", ()))
        return dataclasses.replace(synth, u_levels=levels) if levels else synth

    @cached_property
    def u_prefiltered(self) -> PrefilteredPlane:
        """The Gaussianized U plane's mip chain and level LUTs (feature LoD, :mod:`.prefilter`)."""
        return PrefilteredPlane.build(self.u_plane, self.u_levels)

    @cached_property
    def height_prefiltered(self) -> PrefilteredPlane | None:
        """The Gaussianized height's mip chain and level LUTs (the prefiltered relief slope)."""
        return None if self.height is None else PrefilteredPlane.build(self.height)

    def synthesize(self, uv: np.ndarray, blend: str = "histogram",
                   footprint: np.ndarray | None = None) -> SynthesisResult:
        """Synthesized U features (and height) at ``uv`` float ``[..., 2]``. With pixel
        footprints ``[...]`` (log2 UV units; histogram blend only) the features are prefiltered
        (:mod:`.prefilter`: exactly the level-0 ones where a footprint is at most a U texel); the
        height stays level 0 (the relief hf_trace marches)."""
        if blend not in BLENDS:
            raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
        if footprint is not None and blend != "histogram":
            raise ValueError("prefiltered synthesis (a footprint) needs blend='histogram'")
        sample = dual_tile_sample(uv, self.config.tile_size, self.tables, self.config.seed)
        guide = self.tables.shape
        if blend == "histogram" and footprint is not None:
            shape = np.shape(uv)[:-1]
            flat = DualTileSample(*(a.reshape(a.shape[0], -1, *a.shape[1 + len(shape):])
                                    for a in (sample.tile, sample.shift, sample.weight)))
            features = blend_lod(self.u_prefiltered, np.reshape(uv, (-1, 2)), flat, guide,
                                 np.reshape(footprint, -1)).reshape(*shape, -1)
            height = None if self.height is None else _histogram_blend(self.height, uv, sample, guide)[..., 0]
        elif blend == "histogram":
            features = _histogram_blend(self.u_plane, uv, sample, guide)
            height = None if self.height is None else _histogram_blend(self.height, uv, sample, guide)[..., 0]
        else:
            features = _linear_blend(self.u_raw, uv, sample, guide)
            height = None if self.height_raw is None else _linear_blend(self.height_raw, uv, sample, guide)[..., 0]
        return SynthesisResult(features, height, sample)

    def relief_slope(self, uv: np.ndarray, extent: float, footprint: np.ndarray | None = None,
                     normals: bool = False) -> np.ndarray:
        """float32 ``[B, 2]`` slope (dz/du, dz/dv) of the synthesized relief at ``uv`` ``[B, 2]``
        (height range ``extent`` UV units), prefiltered by footprints ``[B]`` when given;
        ``normals``: v4's point slope (of the interpolated unit normals) at level 0
        (:mod:`.relief`). ValueError without a height map."""
        if self.height is None:
            raise ValueError("the synthesizer has no height map: no relief to take the slope of")
        return relief_slope(self, uv, extent, footprint, normals)

    def relief_covariances(self, extent: float, normals: bool = False) -> np.ndarray:
        """float32 ``[levels, 3]`` slope covariance a texel of each level of the synthesized
        relief hides (:func:`.relief.slope_covariances`; the visible relief frame's), computed
        once per ``(extent, normals)``. ValueError without a height map."""
        if self.height is None:
            raise ValueError("the synthesizer has no height map: no relief to take the slope of")
        key = (float(np.float32(extent)), bool(normals))
        cache = self.__dict__.setdefault("_relief_covariances", {})
        if key not in cache:
            cache[key] = slope_covariances(self, extent, normals)
        return cache[key]

    def plain_tiling(self, uv: np.ndarray) -> np.ndarray:
        """The U plane simply repeated (bilinear, wrap) at ``uv``: the baseline synthesis
        replaces. float32 ``[..., C]``."""
        zero = np.zeros(np.shape(uv), dtype=np.int64)
        return bilinear_wrap(self.u_raw, uv, zero, self.tables.shape)


def _histogram_blend(plane: GaussianizedPlane, uv, sample: DualTileSample, guide) -> np.ndarray:
    t_a = bilinear_wrap(plane.gaussian, uv, sample.shift[0], guide)
    t_b = bilinear_wrap(plane.gaussian, uv, sample.shift[1], guide)
    w_a, w_b = sample.weight[0][..., None], sample.weight[1][..., None]
    eps = np.float32(SINGULARITY_WEIGHT)
    norm = np.sqrt(w_a * w_a + w_b * w_b + eps * eps)
    return inverse_histogram(plane.lut, (w_a * t_a + w_b * t_b) / norm)


def _linear_blend(plane: np.ndarray, uv, sample: DualTileSample, guide) -> np.ndarray:
    v_a = bilinear_wrap(plane, uv, sample.shift[0], guide)
    v_b = bilinear_wrap(plane, uv, sample.shift[1], guide)
    w_a, w_b = sample.weight[0][..., None], sample.weight[1][..., None]
    eps = np.float32(SINGULARITY_WEIGHT)
    mean = plane.mean(axis=(0, 1), dtype=np.float64).astype(np.float32)
    return ((w_a * v_a + w_b * v_b + eps * mean) / (w_a + w_b + eps)).astype(np.float32)
