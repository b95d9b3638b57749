"""The one interface every BTF data source implements, and the batch it yields.

Conventions (all sources):

* Directions are unit vectors in the local shading frame, +z = macro-surface normal, +x =
  the u (texture column) direction, +y = the v (texture row) direction; ωi (towards the light)
  and ωo (towards the viewer) both point *away* from the surface (z > 0).
* ``uv`` in [0, 1)^2 tiles the material once; u grows with the column, v with the row (row 0
  is v = 0), matching bundle planes ``[row = v, col = u, channel]``.
* Values are linear Rec.709 RGB **BTF values**: the radiance leaving towards ωo under a
  directional light of unit irradiance *at normal incidence* arriving from ωi — so they
  include the cosine foreshortening of the incident light, self-shadowing and masking (as
  measured BTFs such as UBO2014 do). A renderer multiplies by the light's radiance scale.
* ``uv_space`` tells what ``uv`` means: ``"reference"`` — where the camera ray crosses the
  top of the material's shell (as in a captured/rectified BTF; parallax is in the data, as
  NeuMIP expects), or ``"surface"`` — the true surface point that is shaded (parallax removed,
  as the triple-plane material expects when the renderer traces the height field itself).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


POINT_FOOTPRINT = -np.inf
""":attr:`BtfBatch.footprint` of a value at the point itself (no prefiltering)."""


@dataclass
class BtfBatch:
    """A batch of BTF samples; every array has leading dimension B, dtype float32."""

    uv: np.ndarray
    """[B, 2] texture coordinates in [0, 1)."""
    wi: np.ndarray
    """[B, 3] unit light directions (local frame, z > 0)."""
    wo: np.ndarray
    """[B, 3] unit view directions (local frame, z > 0)."""
    rgb: np.ndarray
    """[B, 3] linear Rec.709 BTF values (>= 0; may exceed 1 for specular highlights)."""
    footprint: np.ndarray | None = None
    """[B] float32 log2 of the side, in UV units, of the square uv box centred on ``uv`` whose
    mean BTF value ``rgb`` is (a prefiltered sample, what a pixel covering that box sees;
    :data:`POINT_FOOTPRINT` for a value at the point itself), or None: every value is a point
    value."""

    def __len__(self) -> int:
        return int(self.uv.shape[0])


class BtfSource(ABC):
    """A material's BTF, sampled at random (training) or on fixed held-out sets (evaluation)."""

    name: str
    """Identifier used in caches, bundles' provenance and reports."""
    uv_space: str
    """``"reference"`` or ``"surface"`` (see the module docstring)."""

    @abstractmethod
    def sample(self, n: int, rng: np.random.Generator, split: str = "train") -> BtfBatch:
        """``n`` random samples from the ``"train"`` or ``"heldout"`` direction set."""

    @abstractmethod
    def heldout_images(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The fixed evaluation set: ``(wi [3], wo [3], image float32 [H, W, 3])`` per held-out
        direction pair; image pixel (row r, col c) is the value at uv = ((c+.5)/W, (r+.5)/H).
        Never used for training."""


def concat_batches(batches: list[BtfBatch]) -> BtfBatch:
    """One :class:`BtfBatch` holding ``batches`` in order (footprints None only if all are)."""
    fields = [np.concatenate([getattr(b, k) for b in batches]) for k in ("uv", "wi", "wo", "rgb")]
    if all(b.footprint is None for b in batches):
        return BtfBatch(*fields)
    return BtfBatch(*fields, footprint=np.concatenate([footprints(b) for b in batches]))


def footprints(batch: BtfBatch) -> np.ndarray:
    """[B] float32 footprints of ``batch`` (:attr:`BtfBatch.footprint`; point values
    :data:`POINT_FOOTPRINT`)."""
    if batch.footprint is None:
        return np.full(len(batch), POINT_FOOTPRINT, np.float32)
    return batch.footprint.astype(np.float32, copy=False)


def held_out_split(n_configs: int, fraction: float = 0.1, seed: int = 1234) -> np.ndarray:
    """Boolean mask [n_configs]: True for the direction configurations held out for evaluation.

    Fixed per (n_configs, fraction, seed) so every run of a material holds out the same ones;
    at least one configuration is held out and at least one kept.
    """
    if n_configs < 2:
        raise ValueError("need at least two direction configurations to hold one out")
    k = min(max(1, int(round(n_configs * fraction))), n_configs - 1)
    mask = np.zeros(n_configs, dtype=bool)
    mask[np.random.default_rng(seed).choice(n_configs, size=k, replace=False)] = True
    return mask
