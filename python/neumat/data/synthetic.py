"""Synthetic BTFs: slices of a PBR material rendered with true displacement, cached on disk.

:class:`SyntheticBtf` renders (lazily, one *view* — all lights of one ωo — at a time, see
:mod:`neumat.data.slice_renderer`) a UBO2014-like set of configurations, keeps views in an in-memory
LRU cache and on disk (:mod:`neumat.data.disk_cache`), and serves them through the common
sampling of :class:`~neumat.data.slices.SliceBtfSource`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from .directions import DirectionSet, ubo_like_directions
from .disk_cache import SliceDiskCache, default_cache_root, hash_key
from .errors import DataError
from .pbr import PbrMaterial
from .points import PointBtf, PointBtfConfig
from .slice_renderer import NORMAL_SOURCES, UV_SPACES, SliceRenderer
from .slices import SliceBtfSource
from .source import BtfSource

log = logging.getLogger(__name__)

RENDERER_VERSION = 1
"""Bump when the renderer's output changes for the same inputs: invalidates disk caches."""


@dataclass
class SyntheticBtfConfig:
    """How a synthetic BTF is rendered and served. Every field that changes pixels is part of
    the disk-cache key."""

    resolution: int = 64
    """Slice side in pixels (64–128 keeps a full set of views to seconds on one core)."""
    uv_space: str = "reference"
    """``"reference"`` (parallax in the data, NeuMIP) or ``"surface"`` (triple-plane material
    under a height-field tracing renderer; masked points are NaN and never sampled)."""
    n_views: int = 12
    """Number of view directions ωo (UBO2014: 151)."""
    n_lights: int = 12
    """Number of light directions ωi per view (UBO2014: 151)."""
    theta_max_deg: float = 75.0
    """Largest polar angle of either direction, degrees (UBO2014: 75)."""
    direction_seed: int = 0
    """Seed of the stratified direction sets."""
    supersample: int = 1
    """Sub-pixel grid n×n per pixel (1 = point value at the pixel centre)."""
    shadows: bool = True
    """Trace self-shadowing toward the light."""
    normal_source: str = "height"
    """Shading normals from ``"height"`` (gradient) or ``"map"`` (the material's normal map)."""
    heldout_fraction: float = 0.1
    """Fraction of configurations held out for evaluation (never trained on)."""
    heldout_seed: int = 1234
    """Seed of the held-out split (:func:`~neumat.data.source.held_out_split`)."""
    frames_per_batch: int | None = None
    """``None``: every sample draws its own configuration; k: k configurations per batch."""
    cache_views: int = 64
    """In-memory LRU capacity, in views (one view = n_lights slices)."""
    cache_dir: str | None = None
    """Disk cache root; ``None`` = ``$NEUMAT_CACHE/btf`` or ``~/.cache/neumat/btf``."""
    disk_cache: bool = True
    """Read and write rendered views on disk."""
    show_progress: bool = True
    """Show a progress bar when rendering several views at once."""

    def __post_init__(self) -> None:
        if self.uv_space not in UV_SPACES:
            raise DataError(f"uv_space must be one of {UV_SPACES}, got {self.uv_space!r}")
        if self.normal_source not in NORMAL_SOURCES:
            raise DataError(f"normal_source must be one of {NORMAL_SOURCES}, got "
                            f"{self.normal_source!r}")
        if self.resolution < 1 or self.supersample < 1 or self.cache_views < 1:
            raise DataError("resolution, supersample and cache_views must be >= 1")


class SyntheticBtf(SliceBtfSource):
    """The BTF of a :class:`PbrMaterial`, rendered on demand (local frame, linear Rec.709).

    Args:
        material: the material (maps + height scale).
        config: rendering and sampling settings.
        directions: explicit configurations; default :func:`ubo_like_directions` from the
            config's ``n_views``, ``n_lights``, ``theta_max_deg`` and ``direction_seed``.

    Attributes:
        render_count: views rendered by this object (not loaded from disk or memory).
    """

    def __init__(self, material: PbrMaterial, config: SyntheticBtfConfig | None = None,
                 directions: DirectionSet | None = None) -> None:
        config = config or SyntheticBtfConfig()
        directions = directions or ubo_like_directions(
            config.n_views, config.n_lights, config.theta_max_deg, config.direction_seed)
        super().__init__(directions, wrap=True, heldout_fraction=config.heldout_fraction,
                         heldout_seed=config.heldout_seed,
                         frames_per_batch=config.frames_per_batch,
                         cache_blocks=config.cache_views)
        self.name = material.name
        self.uv_space = config.uv_space
        self.material = material
        self.config = config
        self.render_count = 0
        self._renderer: SliceRenderer | None = None
        pixels = {k: getattr(config, k) for k in
                  ("resolution", "uv_space", "supersample", "shadows", "normal_source")}
        self.cache_key = hash_key(RENDERER_VERSION, material.content_hash(), sorted(
            pixels.items()), directions.views, directions.lights)
        self.disk = None
        if config.disk_cache:
            root = config.cache_dir or default_cache_root()
            self.disk = SliceDiskCache(root, material.name, self.cache_key, {
                "material": material.name, "material_hash": material.content_hash(),
                "renderer_version": RENDERER_VERSION, **pixels,
                "views": directions.views.tolist(), "lights": directions.lights.tolist()})

    def block_of(self, config: int) -> tuple[int, int]:
        """(view index, light index): a view is one block."""
        view, light = self.directions.split_index(config)
        return int(view), int(light)

    def prerender(self) -> None:
        """Render (or load) every view now, with a progress bar — instead of lazily."""
        missing = [v for v in range(self.directions.views.shape[0]) if v not in self.cache]
        if not missing:
            return
        if self.config.show_progress and len(missing) > 1:
            from rich.progress import Progress
            with Progress(transient=True) as progress:
                task = progress.add_task(f"BTF slices of {self.name}", total=len(missing))
                for v in missing:
                    self.cache.get(v)
                    progress.advance(task)
        else:
            for v in missing:
                self.cache.get(v)

    def sample(self, n: int, rng: np.random.Generator, split: str = "train"):
        """As :meth:`SliceBtfSource.sample`; with ``frames_per_batch=None`` every view is
        rendered (or loaded) first, with a progress bar, since every view will be needed."""
        if self.frames_per_batch is None:
            self.prerender()
        return super().sample(n, rng, split)

    def _load_block(self, view: int) -> np.ndarray:
        cfg = self.config
        shape = (self.directions.lights.shape[0], cfg.resolution, cfg.resolution, 3)
        if self.disk is not None:
            cached = self.disk.load(view, shape)
            if cached is not None:
                return cached
        if self._renderer is None:
            self._renderer = SliceRenderer(self.material, cfg.normal_source)
        log.debug("rendering view %d of %s", view, self.name)
        slices = self._renderer.render_view(self.directions.views[view], self.directions.lights,
                                            cfg.resolution, cfg.uv_space, cfg.supersample,
                                            cfg.shadows)
        self.render_count += 1
        if self.disk is not None:
            self.disk.save(view, slices)
        return slices

    def describe(self) -> dict:
        """The settings as a JSON-serializable dict (for provenance in bundles / reports)."""
        return {"material": self.material.name, "cache_key": self.cache_key,
                "renderer_version": RENDERER_VERSION, **asdict(self.config)}


def _source_of(material: PbrMaterial, config: SyntheticBtfConfig | PointBtfConfig | None) -> BtfSource:
    """A point-sampled source for a :class:`PointBtfConfig`, else a slice source."""
    if isinstance(config, PointBtfConfig):
        return PointBtf(material, config)
    return SyntheticBtf(material, config)


def material_source(name: str, resolution: int = 256, seed: int = 0,
                    config: SyntheticBtfConfig | PointBtfConfig | None = None) -> BtfSource:
    """The synthetic BTF of registry material ``name`` (:func:`~.materials.make_material`)
    with maps of ``resolution``² texels generated from ``seed``: slices
    (:class:`SyntheticBtf`, the default) or point samples (a :class:`PointBtfConfig`)."""
    from .materials import make_material
    return _source_of(make_material(name, resolution, seed), config)


def maps_source(path: str, resolution: int | None = None, seed: int = 0,
                config: SyntheticBtfConfig | PointBtfConfig | None = None, **load_options) -> BtfSource:
    """The synthetic BTF of a downloaded PBR texture set (:func:`~.pbr_io.load_pbr_maps`).

    Args:
        path: the folder of maps.
        resolution: resample the maps to this many texels per side (``None``: as loaded).
        seed: seed of the direction set of a slice source (overrides ``config.direction_seed``;
            point sources draw directions from the training seed instead).
        config: a :class:`SyntheticBtfConfig` (slices, the default) or a :class:`PointBtfConfig`.
        load_options: passed to :func:`~.pbr_io.load_pbr_maps` (``height_scale``, ...).
    """
    from dataclasses import replace

    from .pbr_io import load_pbr_maps
    material = load_pbr_maps(path, **load_options)
    if resolution is not None:
        material = material.resized(resolution)
    if not isinstance(config, PointBtfConfig):
        config = replace(config or SyntheticBtfConfig(), direction_seed=seed)
    return _source_of(material, config)
