"""Measured BTFs from UBO2014 files as a :class:`~neumat.data.source.BtfSource`.

The file (:mod:`neumat.data.ubo2014_format`) stores V views × L lights (UBO2014: 151 × 151, θ up
to 75°) as SVD factors; one frame (400×400 for UBO2014) is decoded on demand and kept in a small
LRU cache, as in the seed's data pipeline (§4.1.1): each training batch picks a few
configurations (``frames_per_batch``), fetches their frames and samples uv in them.

Frame and directions: rows are flipped as the reference loader flips them, after which row y
grows with v and x with u, and light/view angles (θ from the normal, φ from +x toward +y) are
in that (u, v, n) frame — the convention of :mod:`neumat.data.source`. Frames are not tileable:
lookups clamp at the border. ``uv_space`` is ``"reference"`` (rectified measurement).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .directions import DirectionSet, spherical_to_vector, vector_to_spherical
from .slices import SliceBtfSource
from .ubo2014_format import Ubo2014File, read_ubo2014


@dataclass
class Ubo2014Config:
    """Sampling settings of a UBO2014 source."""

    cache_frames: int = 32
    """In-memory LRU capacity in decoded frames (a 400×400 frame is 1.9 MB)."""
    frames_per_batch: int | None = 8
    """Configurations per training batch (``None``: one per sample — decodes far more)."""
    heldout_fraction: float = 0.1
    """Fraction of configurations held out for evaluation (never trained on)."""
    heldout_seed: int = 1234
    """Seed of the held-out split."""
    max_heldout_images: int | None = 32
    """Frames returned by ``heldout_images()`` (fixed, evenly spaced subset of the split)."""


class Ubo2014Btf(SliceBtfSource):
    """A UBO2014 BTF file, sampled as float32 linear RGB BTF values.

    Args:
        path: the ``.btf`` file.
        config: cache and split settings.
        name: identifier (default: the file's stem).

    Attributes:
        file: the parsed file (angles, sizes, factor matrices).
        angles: [V·L, 4] float64 (θi, φi, θo, φo) in degrees per configuration, φ in [0, 360).
    """

    uv_space = "reference"

    def __init__(self, path: str | Path, config: Ubo2014Config | None = None,
                 name: str | None = None) -> None:
        config = config or Ubo2014Config()
        self.file: Ubo2014File = read_ubo2014(path)
        f = self.file
        directions = DirectionSet(
            views=spherical_to_vector(f.view_angles[:, 0], f.view_angles[:, 1]),
            lights=spherical_to_vector(f.light_angles[:, 0], f.light_angles[:, 1]))
        super().__init__(directions, wrap=False, heldout_fraction=config.heldout_fraction,
                         heldout_seed=config.heldout_seed,
                         frames_per_batch=config.frames_per_batch,
                         cache_blocks=config.cache_frames,
                         max_heldout_images=config.max_heldout_images)
        self.name = name or Path(path).stem
        self.config = config
        k = np.arange(directions.n_configs)
        wi, wo = directions.pair(k)
        ti, pi = vector_to_spherical(wi)
        to, po = vector_to_spherical(wo)
        self.angles = np.stack([ti, pi, to, po], axis=1)

    @property
    def image_shape(self) -> tuple[int, int]:
        """(H, W) of every frame."""
        return self.file.height, self.file.width

    def block_of(self, config: int) -> tuple[int, int]:
        """Each frame is its own cache block."""
        return config, 0

    def _load_block(self, config: int) -> np.ndarray:
        view, light = self.directions.split_index(config)
        return self.file.decode_frame(int(view), int(light))[None]
