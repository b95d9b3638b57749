"""Training batches: seeded global batches split across processes, in plane coordinates.

Each optimizer step ``s`` trains on one *global batch* of ``batch_size`` samples made of
``chunks`` equal pieces; piece ``c`` is drawn from ``numpy.random.default_rng(SeedSequence(
[seed, TRAIN_STREAM, s, c]))``. Process ``r`` of ``W`` takes the pieces ``c = r, r + W, ...``
and splits them over its ``accum_steps`` micro-batches. The global batch is therefore the
same for any process count, and a step's data depends only on ``(seed, s)`` — there is no
sampler state to checkpoint, and a resumed run draws exactly the batches the killed run would
have drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..data import BtfBatch, BtfSource
from ..data.source import concat_batches, footprints
from ..material import DirectionCoding
from ..output_encoding import LOG, REINHARD, OutputEncoding

TRAIN_STREAM = 0
"""SeedSequence word of the training batches."""
VALIDATION_STREAM = 1
"""SeedSequence word of the fixed validation set."""
CALIBRATION_STREAM = 2
"""SeedSequence word of the value-scale calibration samples."""
PYRAMID_STREAM = 3
"""SeedSequence word of the learned LoD pyramid's prefiltered batches (split ``"prefiltered"``)."""


class SamplingError(ValueError):
    """The batch layout does not divide evenly over processes and accumulation steps."""


@dataclass
class PlaneBatch:
    """Model inputs and targets, numpy float32, leading dimension B."""

    uv: np.ndarray
    """[B, 2] texture coordinates."""
    h: np.ndarray
    """[B, 2] H-plane coordinates (:meth:`neumat.material.DirectionCoding.coords`)."""
    d: np.ndarray
    """[B, 2] D-plane coordinates."""
    footprint: np.ndarray
    """[B] log2 UV-unit side of the box each target averages (:attr:`neumat.data.BtfBatch.footprint`;
    -inf for point values): the U plane is read through its mip chain there."""
    target: np.ndarray
    """[B, 3] BTF values encoded by the run's :class:`~neumat.output_encoding.OutputEncoding`
    (``"linear"``: divided by ``value_scale``, may exceed 1 for the rare brightest)."""

    def __len__(self) -> int:
        return int(self.uv.shape[0])


def to_plane_batch(batch: BtfBatch, output: OutputEncoding, coding: DirectionCoding) -> PlaneBatch:
    """Convert directions to H/D plane coordinates by ``coding`` (the run's parameterization and
    relief) and encode the targets with ``output``."""
    uv, footprint = batch.uv.astype(np.float32), footprints(batch)
    h, d = coding.coords(uv, batch.wi, batch.wo, footprint)
    return PlaneBatch(uv, h, d, footprint, output.encode(batch.rgb.astype(np.float32)))


def stream_rng(seed: int, *words: int) -> np.random.Generator:
    """The numpy generator of one seeded stream ``[seed, *words]``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, words)]))


class GlobalBatchSampler:
    """This process's micro-batches of each step's global batch (see the module docstring).

    Args:
        source: the material's BTF.
        seed: run seed.
        batch_size: global samples per optimizer step.
        chunks: pieces per global batch (multiple of ``world_size * accum_steps``).
        accum_steps: micro-batches per step and process.
        rank, world_size: this process and the process count.
        output: the run's output encoding (targets are encoded with it).
        coding: the run's H/D plane parameterization and relief.
    """

    def __init__(
        self,
        source: BtfSource,
        seed: int,
        batch_size: int,
        chunks: int,
        accum_steps: int,
        rank: int,
        world_size: int,
        output: OutputEncoding,
        coding: DirectionCoding,
    ) -> None:
        if batch_size % chunks or chunks % (world_size * accum_steps):
            raise SamplingError(
                f"batch_size {batch_size} must split into chunks {chunks}, and chunks into "
                f"world_size {world_size} x accum_steps {accum_steps}; adjust data.chunks"
            )
        self.source, self.seed, self.output, self.coding = source, int(seed), output, coding
        self.chunk_size = batch_size // chunks
        mine = list(range(rank, chunks, world_size))
        per_micro = len(mine) // accum_steps
        self.micro_chunks = [mine[m * per_micro:(m + 1) * per_micro] for m in range(accum_steps)]

    @property
    def local_samples(self) -> int:
        """Samples this process trains on per optimizer step (all its micro-batches)."""
        return self.chunk_size * sum(len(c) for c in self.micro_chunks)

    def chunk(self, step: int, c: int, split: str = "train") -> BtfBatch:
        """Piece ``c`` of step ``step``'s global batch (``split`` ``"prefiltered"``: of the
        learned LoD pyramid's batch, from its own stream)."""
        stream = PYRAMID_STREAM if split == "prefiltered" else TRAIN_STREAM
        return self.source.sample(self.chunk_size, stream_rng(self.seed, stream, step, c), split)

    def micro_batches(self, step: int, split: str = "train") -> list[PlaneBatch]:
        """This process's ``accum_steps`` micro-batches of optimizer step ``step`` (of ``split``,
        see :meth:`chunk`)."""
        return [
            to_plane_batch(concat_batches([self.chunk(step, c, split) for c in chunks]), self.output, self.coding)
            for chunks in self.micro_chunks
        ]


@dataclass
class BoxBatch:
    """A learned-pyramid batch whose targets are the frozen network's own box means: box centres
    with their footprints, and ``taps``² stratified level-0 tap coordinates per box."""

    uv: np.ndarray
    """[B, 2] float32 box centres."""
    h: np.ndarray
    """[B, 2] float32 H coordinates at the centre, in the frame of the box's mean slope."""
    d: np.ndarray
    """[B, 2] float32 D coordinates, likewise."""
    footprint: np.ndarray
    """[B] float32 log2 UV-unit box sides, log-uniform from one U texel to the tile."""
    tap_uv: np.ndarray
    """[B * taps², 2] float32 tap uv (box-major)."""
    tap_h: np.ndarray
    """[B * taps², 2] float32 point H coordinates at the taps."""
    tap_d: np.ndarray
    """[B * taps², 2] float32 point D coordinates at the taps."""


def box_batch(sampler: GlobalBatchSampler, step: int, u_res: int, taps: int) -> BoxBatch:
    """This process's boxes of pyramid step ``step``: the directions and centres of its pieces of
    a training draw from :data:`PYRAMID_STREAM`, footprints and stratified taps from the same
    stream (see :class:`BoxBatch`)."""
    chunks = [c for m in sampler.micro_chunks for c in m]
    batch = concat_batches([sampler.source.sample(sampler.chunk_size, stream_rng(sampler.seed, PYRAMID_STREAM, step, c),
                                                  "train") for c in chunks])
    rng = stream_rng(sampler.seed, PYRAMID_STREAM, step, 1 << 20, chunks[0])
    n, k = len(batch.uv), taps
    uv = batch.uv.astype(np.float32)
    footprint = ((rng.random(n) - 1.0) * np.log2(u_res)).astype(np.float32)
    cells = np.stack(np.meshgrid(np.arange(k), np.arange(k)), -1).reshape(1, k * k, 2) + rng.random((n, k * k, 2))
    tap_uv = ((uv[:, None, :] + (cells / k - 0.5) * np.exp2(footprint.astype(np.float64))[:, None, None]) % 1.0)
    tap_uv = tap_uv.astype(np.float32).reshape(-1, 2)
    h, d = sampler.coding.coords(uv, batch.wi, batch.wo, footprint)
    tap_h, tap_d = sampler.coding.coords(tap_uv, np.repeat(batch.wi, k * k, 0), np.repeat(batch.wo, k * k, 0))
    return BoxBatch(uv, h, d, footprint, tap_uv, tap_h, tap_d)


def validation_batch(source: BtfSource, seed: int, n: int) -> BtfBatch:
    """The fixed held-out validation samples of a run (``n`` samples, seeded by ``seed``)."""
    return source.sample(n, stream_rng(seed, VALIDATION_STREAM), "heldout")


def calibration_values(source: BtfSource, seed: int, n: int) -> np.ndarray:
    """``n`` training RGB values ``[n, 3]`` float64 drawn with the run's fixed calibration seed."""
    return source.sample(n, stream_rng(seed, CALIBRATION_STREAM), "train").rgb.astype(np.float64)


def calibrate_value_scale(rgb: np.ndarray, quantile: float) -> float:
    """Automatic ``value_scale``: the ``quantile`` of the calibration values (all channels).

    Values above it saturate at the decoder's output clamp; 0.999 keeps highlights while one
    stray texel cannot stretch the range. Never below 1e-6 (an all-black material).
    """
    return max(float(np.quantile(rgb, quantile)), 1e-6)


REINHARD_SCALE_FRACTION = 0.25
"""Automatic ``"reinhard-v1"`` scale as a fraction of the ``value_quantile`` quantile: the
quantile decodes from y = 0.8 and values up to ~256x it survive. Measured (300 steps, batch
8192, held-out INT8 relative L1, one seed; "linear" for comparison): leather 35.1 % (linear
36.5 %; the per-channel mean, 0.02-0.03, gave 43.4 %, scale 0.1 gave 38.8 %), glossy copper
(roughness 0.38) 35.6 % (linear 46.7 %; the mean gave 53.7 %, scale 2.0 gave 36.0 %)."""
LOG_SCALE_QUANTILE = 0.5
"""Automatic ``"log-v1"`` scale (the bend between linear and logarithmic): this quantile of the
calibration values (all channels), at least :data:`LOG_SCALE_FLOOR` of the ``value_quantile``
quantile."""
LOG_SCALE_FLOOR = 1e-3
"""Smallest automatic ``"log-v1"`` scale relative to the ``value_quantile`` quantile (a mostly
black material would otherwise spend the range on values nobody sees)."""
LOG_HEADROOM = 4.0
"""Automatic ``"log-v1"`` range: the largest decoded value is this times the largest
calibration value (glints brighter than any calibration sample survive)."""


def calibrate_output(source: BtfSource, seed: int, encoding: str, n: int, quantile: float,
                     value_scale: float = 0.0) -> OutputEncoding:
    """The run's output encoding ``encoding`` with automatic scales from ``n`` training values.

    ``"linear"``: :func:`calibrate_value_scale`. ``"reinhard-v1"``: that value times
    :data:`REINHARD_SCALE_FRACTION`, for every channel. ``"log-v1"``: scale
    :data:`LOG_SCALE_QUANTILE` of the values, range up to :data:`LOG_HEADROOM` x their maximum.
    A ``value_scale`` > 0 is used for every channel instead (all encodings).
    """
    rgb = calibration_values(source, seed, n)
    top = calibrate_value_scale(rgb, quantile)
    if encoding == LOG:
        scale = value_scale if value_scale > 0 else max(float(np.quantile(rgb, LOG_SCALE_QUANTILE)), LOG_SCALE_FLOOR * top)
        bits = math.log2(1.0 + LOG_HEADROOM * max(float(rgb.max()), top) / scale)
        return OutputEncoding(LOG, (scale,) * 3, bits)
    if value_scale <= 0:
        value_scale = top * (REINHARD_SCALE_FRACTION if encoding == REINHARD else 1.0)
    return OutputEncoding(encoding, (value_scale,) * 3)
