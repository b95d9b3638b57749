"""A posed material video as BTF samples: what direct fitting (:mod:`.fit`) trains on.

Every pixel of a posed frame is one observation of the material: through the frame renderer's
geometry (:func:`.frame_render.pixel_geometry`, the dataset's disk light) its 8-bit sRGB value,
decoded to linear Rec.709 radiance, divided by the irradiance ``E`` the light casts there, is the
BTF value at (uv, ωi, ωo) in the reference uv space — the inverse of the frame renderer's last
step (radiance = BTF · E). Training on these samples with the NeuMIP plug-in's L1 loss in BTF
units is therefore fitting rendered frames to the video with a per-pixel weight ``1 / E``,
which the trajectory's intensity correction keeps within a factor ~1.5 of uniform (E at the
sample centre is the same every frame; it falls with distance and the disk's cosine towards
the sample's edges).

Left out of the samples: pixels that do not see the plane, pixels with a saturated channel
(sRGB 255: their radiance is only a lower bound) and pixels lit by less than
:data:`MIN_RELATIVE_IRRADIANCE` of the frame's irradiance at the sample centre (dividing by a
small E would magnify 8-bit quantization).

Frames ``i`` with ``holdout_every > 0`` and ``i % holdout_every == holdout_every // 2`` are the
``"heldout"`` split, never trained on; without held-out frames ``"heldout"`` draws from the
training frames (the figures then say how well the video is reproduced, not how well the
material generalizes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import BtfBatch, BtfSource
from ..data.pbr import srgb_to_linear
from .folder import VideoFolderError, read_video
from .frame_render import PoseArrays, frame_geometry, light_at, pixel_geometry
from .trajectory import FramePose

MIN_FRAMES = 5
"""Fewest training frames a fit accepts (the seed's LRM finds 5 frames already undersample the
light-motion phase; direct fitting has no prior to fill in the rest)."""
MIN_SIDE = 8
"""Smallest frame width and height, pixels (as ``neumat video render-dataset --size``)."""
MIN_RELATIVE_IRRADIANCE = 0.1
"""Pixels lit by less than this fraction of the frame's irradiance at the sample centre are left out."""
SATURATED = 255
"""An 8-bit channel at this value is clipped (the pixel is left out)."""
DRAW_ROUNDS = 64
"""Rounds of rejection sampling before a split is declared unusable (module docstring)."""
LIGHT_MODEL = "disk"
"""The dataset's light (:data:`.frame_render.LIGHT_MODELS`)."""


@dataclass
class PosedFrames:
    """A checked posed video folder held in memory."""

    path: Path
    """The folder (frames/, poses.json)."""
    frames: np.ndarray
    """uint8 [T, H, W, 3] sRGB frames, frame i = pose i."""
    poses: list[FramePose]
    """The T poses."""
    sample_size: float
    """Side of the sample square, scene units (poses.json's ``sample_size``)."""

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) pixels."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])


def heldout_frames(n_frames: int, holdout_every: int) -> list[int]:
    """Indices of the held-out frames (module docstring); [] for ``holdout_every`` 0."""
    if holdout_every < 0:
        raise ValueError(f"holdout_every must be >= 0, got {holdout_every}")
    return [i for i in range(n_frames) if holdout_every and i % holdout_every == holdout_every // 2]


def read_posed_frames(video: str | Path, holdout_every: int = 0) -> PosedFrames:
    """Read and check a posed video folder (:mod:`.folder` layout) for fitting.

    Raises:
        VideoFolderError: no ``poses.json`` or an unreadable one, a frame count that differs from
            the pose count, misnamed frames, frames of mixed sizes or of another size than the
            pose file says (:func:`.folder.read_video`); fewer than :data:`MIN_FRAMES` training
            frames; frames smaller than :data:`MIN_SIDE`; a camera or light not above the sample.
    """
    video = Path(video)
    if not video.is_dir():
        raise VideoFolderError(f"{video}: no such folder (expected a posed video: frames/, poses.json)")
    frames, poses, meta = read_video(video)
    train = len(poses) - len(heldout_frames(len(poses), holdout_every))
    if train < MIN_FRAMES:
        raise VideoFolderError(f"{video}: {len(poses)} frames, {train} of them for training (holdout_every "
                               f"{holdout_every}); a fit needs at least {MIN_FRAMES} (the seed's video has 81)")
    if min(frames.shape[1:3]) < MIN_SIDE:
        raise VideoFolderError(f"{video}: frames of {frames.shape[2]}x{frames.shape[1]} pixels; at least "
                               f"{MIN_SIDE}x{MIN_SIDE} needed")
    try:
        sample_size = float(meta["sample_size"])
        PoseArrays.from_poses(poses)
    except (TypeError, ValueError) as e:
        raise VideoFolderError(f"{video}/poses.json: {e}") from e
    if not np.isfinite(sample_size) or sample_size <= 0:
        raise VideoFolderError(f"{video}/poses.json: sample_size must be > 0 scene units, got {meta['sample_size']!r}")
    return PosedFrames(video, frames, poses, sample_size)


class FrameSource(BtfSource):
    """BTF samples from the pixels of posed frames (module docstring).

    Args:
        video: the checked frames (:func:`read_posed_frames`).
        holdout_every: held-out frame spacing (module docstring); 0: none.
        name: identifier (reports, provenance).
    """

    uv_space = "reference"

    def __init__(self, video: PosedFrames, holdout_every: int = 0, name: str = "video") -> None:
        self.name, self.video = name, video
        self.poses = PoseArrays.from_poses(video.poses)
        held = heldout_frames(len(video.poses), holdout_every)
        train = [i for i in range(len(video.poses)) if i not in held]
        self.split_frames = {"train": np.array(train), "heldout": np.array(held or train)}
        self.linear = srgb_to_linear(np.arange(256) / 255.0).astype(np.float32)
        """float32 [256]: linear value of each 8-bit sRGB code."""
        t = len(video.poses)
        centre = light_at(self.poses, np.arange(t), np.zeros((t, 3)), LIGHT_MODEL)[1]
        self.min_irradiance = MIN_RELATIVE_IRRADIANCE * centre
        """float64 [T]: smallest irradiance of a sampled pixel, per frame."""

    def sample(self, n: int, rng: np.random.Generator, split: str = "train") -> BtfBatch:
        """``n`` usable pixels drawn uniformly from the frames of ``split`` (``"train"`` or
        ``"heldout"``), as BTF samples; a function of ``rng`` only.

        Raises:
            ValueError: ``split`` unknown, or no usable pixels found in :data:`DRAW_ROUNDS`
                rounds (frames nearly all saturated or black-lit).
        """
        if split not in self.split_frames:
            raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
        width, height = self.video.size
        frames = self.split_frames[split]
        parts, need = [], n
        for _ in range(DRAW_ROUNDS):
            if need <= 0:
                break
            m = 2 * need + 16
            f, r, c = frames[rng.integers(0, len(frames), m)], rng.integers(0, height, m), rng.integers(0, width, m)
            pix = self.video.frames[f, r, c]
            geo = pixel_geometry(self.poses, f, r, c, width, height, self.video.sample_size, LIGHT_MODEL)
            keep = (pix < SATURATED).all(axis=1) & geo.hit & (geo.irradiance >= self.min_irradiance[f])
            i = np.flatnonzero(keep)[:need]
            parts.append((geo.uv[i], geo.wi[i], geo.wo[i], self.linear[pix[i]] / geo.irradiance[i, None]))
            need -= len(i)
        if need > 0:
            raise ValueError(f"{self.video.path}: the {split} frames have (almost) no usable pixels: saturated (sRGB "
                             f"{SATURATED}), off the sample plane or lit by less than {MIN_RELATIVE_IRRADIANCE:g} of "
                             "the irradiance at the sample centre")
        uv, wi, wo, btf = (np.concatenate(a) for a in zip(*parts))
        return BtfBatch(uv, wi, wo, btf.astype(np.float32))

    def heldout_images(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """None: posed frames hold no image at a fixed (ωi, ωo) over uv (the held-out frames
        are the evaluation set, :func:`.fit.frame_metrics`)."""
        return []

    def frame_radiance(self, index: int) -> np.ndarray:
        """float32 [H, W, 3] linear Rec.709 radiance of frame ``index`` (decoded sRGB)."""
        return self.linear[self.video.frames[index]]

    def usable(self, index: int) -> np.ndarray:
        """bool [H, W]: pixels of frame ``index`` that :meth:`sample` may draw."""
        width, height = self.video.size
        geo = frame_geometry(self.video.poses[index], width, height, self.video.sample_size, LIGHT_MODEL)
        ok = geo.hit & (geo.irradiance >= self.min_irradiance[index])
        return ok.reshape(height, width) & (self.video.frames[index] < SATURATED).all(axis=-1)

