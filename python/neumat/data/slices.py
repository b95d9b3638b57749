"""Sources whose BTF is a stack of slices (one image per (ωi, ωo) configuration).

:class:`SliceBtfSource` implements the seed's data pipeline (§4.1.1, Algorithm 1) once for
every such source: pick angular configurations from the training split, fetch their images
through a small LRU cache, draw uniform uv, and look the value up bilinearly. Subclasses
(:class:`~neumat.data.synthetic.SyntheticBtf`, :class:`~neumat.data.ubo2014.Ubo2014Btf`) only
say how to produce a *block* of slices (a whole view for the renderer, one frame for a file).
"""

from __future__ import annotations

from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

from .directions import DirectionSet
from .errors import DataError
from ..material.interp import bilinear
from .source import BtfBatch, BtfSource, held_out_split

SPLITS = ("train", "heldout")
MAX_REDRAW_ROUNDS = 50
"""Rounds of redrawing NaN (masked) samples before :meth:`SliceBtfSource.sample` gives up."""


class LruCache:
    """A bounded mapping key -> value that evicts the least recently used entry.

    Args:
        capacity: the most entries kept (>= 1).
        load: called with a missing key to produce its value.
    """

    def __init__(self, capacity: int, load: Callable[[Hashable], object]) -> None:
        if capacity < 1:
            raise DataError(f"cache capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._load = load
        self._items: OrderedDict = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable):
        """The value of ``key``, loading (and possibly evicting) on a miss."""
        if key in self._items:
            self.hits += 1
            self._items.move_to_end(key)
            return self._items[key]
        self.misses += 1
        value = self._load(key)
        self._items[key] = value
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return value

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


class SliceBtfSource(BtfSource):
    """A BTF stored as one float32 [H, W, 3] image per configuration of a :class:`DirectionSet`.

    Args:
        directions: the configurations; configuration k = view·L + light.
        wrap: bilinear lookups repeat the image (tileable material) or clamp at its border.
        heldout_fraction, heldout_seed: the fixed evaluation split (:func:`held_out_split`).
        frames_per_batch: ``None`` — every sample draws its own configuration (best mixing; the
            cache must hold all blocks to be fast); k — each batch draws k configurations and
            spreads the samples over them (the seed's per-step frame choice; a small cache
            suffices).
        cache_blocks: capacity of the in-memory LRU cache, in blocks.
        max_heldout_images: how many held-out configurations :meth:`heldout_images` returns (an
            evenly spaced, fixed subset when the split is larger; ``None`` = all).
    """

    def __init__(self, directions: DirectionSet, *, wrap: bool, heldout_fraction: float = 0.1,
                 heldout_seed: int = 1234, frames_per_batch: int | None = None,
                 cache_blocks: int = 64, max_heldout_images: int | None = None) -> None:
        if frames_per_batch is not None and frames_per_batch < 1:
            raise DataError(f"frames_per_batch must be >= 1 or None, got {frames_per_batch}")
        self.directions = directions
        self.wrap = wrap
        self.heldout_mask = held_out_split(directions.n_configs, heldout_fraction, heldout_seed)
        """[V·L] bool, True for the configurations never used for training."""
        self.frames_per_batch = frames_per_batch
        self.max_heldout_images = max_heldout_images
        self.cache = LruCache(cache_blocks, self._load_block)

    @abstractmethod
    def block_of(self, config: int) -> tuple[Hashable, int]:
        """(block key, index of the configuration's slice inside that block)."""

    @abstractmethod
    def _load_block(self, key: Hashable) -> np.ndarray:
        """Produce block ``key``: float32 [n, H, W, 3] slices."""

    def slice(self, config: int) -> np.ndarray:
        """The float32 [H, W, 3] image of configuration ``config`` (a view into the cache)."""
        key, index = self.block_of(int(config))
        return self.cache.get(key)[index]

    def configs(self, split: str = "train") -> np.ndarray:
        """Indices of the configurations in ``split`` (``"train"`` or ``"heldout"``)."""
        if split not in SPLITS:
            raise DataError(f"split must be one of {SPLITS}, got {split!r}")
        mask = self.heldout_mask if split == "heldout" else ~self.heldout_mask
        return np.flatnonzero(mask)

    def sample(self, n: int, rng: np.random.Generator, split: str = "train") -> BtfBatch:
        """``n`` samples (uv, wi, wo, rgb) from ``split``; uv uniform in [0, 1)².

        Lookups interpolate over the visible (finite) texels only; samples whose four texels
        are all masked (NaN, ``"surface"``-space sources) are redrawn at new uv in the same
        configurations, so every returned value is finite.
        """
        if n < 0:
            raise DataError(f"n must be >= 0, got {n}")
        pool = self.configs(split)
        if self.frames_per_batch is None:
            chosen = rng.choice(pool, size=n)
        else:
            frames = rng.choice(pool, size=min(self.frames_per_batch, pool.size), replace=False)
            chosen = frames[rng.integers(0, frames.size, size=n)]
        uv = rng.random((n, 2), dtype=np.float32)  # float32 in [0, 1): the values returned
        rgb = self._lookup(chosen, uv)
        for _ in range(MAX_REDRAW_ROUNDS):
            bad = np.flatnonzero(~np.all(np.isfinite(rgb), axis=1))
            if bad.size == 0:
                break
            uv[bad] = rng.random((bad.size, 2), dtype=np.float32)
            rgb[bad] = self._lookup(chosen[bad], uv[bad])
        else:
            raise DataError(f"{self.name}: could not draw finite samples; the chosen slices are "
                            "almost entirely masked (NaN)")
        wi, wo = self.directions.pair(chosen)
        return BtfBatch(uv=uv, wi=wi.astype(np.float32), wo=wo.astype(np.float32), rgb=rgb)

    def heldout_images(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(wi [3], wo [3], image float32 [H, W, 3])`` for the held-out configurations (at
        most ``max_heldout_images``, an evenly spaced fixed subset). NaN pixels are masked
        points of a ``"surface"``-space source: leave them out of metrics."""
        configs = self.configs("heldout")
        if self.max_heldout_images is not None and configs.size > self.max_heldout_images:
            pick = np.linspace(0, configs.size - 1, self.max_heldout_images).round()
            configs = configs[pick.astype(np.int64)]
        out = []
        for k in configs:
            wi, wo = self.directions.pair(k)
            out.append((wi.astype(np.float32), wo.astype(np.float32), self.slice(k).copy()))
        return out

    def _lookup(self, configs: np.ndarray, uv: np.ndarray) -> np.ndarray:
        """[n, 3] float32 bilinear values of each sample's configuration at its uv, fetching
        each needed block once (grouped by block to respect the cache)."""
        out = np.empty((configs.size, 3), dtype=np.float32)
        if configs.size == 0:
            return out
        order = np.argsort(configs, kind="stable")
        uniq, starts = np.unique(configs[order], return_index=True)
        groups = np.split(order, starts[1:])
        blocks: dict[Hashable, list[tuple[int, np.ndarray]]] = {}
        for k, rows in zip(uniq, groups, strict=True):
            key, index = self.block_of(int(k))
            blocks.setdefault(key, []).append((index, rows))
        for key, members in blocks.items():
            block = self.cache.get(key)
            for index, rows in members:
                values = bilinear(block[index], uv[rows], wrap=self.wrap)
                masked = np.isnan(values).any(axis=1)  # a masked texel among the four
                if masked.any():
                    values[masked] = bilinear(block[index], uv[rows][masked], wrap=self.wrap, skip_nan=True)
                out[rows] = values
        return out
