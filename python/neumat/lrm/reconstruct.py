"""Inference: a posed trajectory video → a ``neumip`` bundle, in one forward pass of a trained LRM
(seed §4.3: "roughly 4 seconds per material at resolution 1024").

The bundle is what direct fitting writes (:func:`neumat.train.neumip.export.to_bundle`): the
predicted T_off / T_rgb (float32), the LRM's universal decoders as INT8 networks with their
frozen activation ranges, ``value_scale`` and ``max_offset`` of the LRM; provenance ``source``
is the video (:func:`neumat.video.fit.video_spec`), ``lrm`` says which weights and input frames
made it. ``neumat view`` and ``neumat render`` open it with no further step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..bundle import Bundle
from ..video.frame_source import PosedFrames
from .inputs import check_for_lrm
from .model import LrmNetwork, frames_to_tensor, input_indices
from .weights import LrmWeights, load_lrm


@dataclass
class TrainedLrm:
    """A loaded trained LRM (:func:`.weights.load_lrm`)."""

    network: LrmNetwork
    """The network, eval mode."""
    decoders: object
    """Its universal :class:`~neumat.models.neumip.NeuMipDecoders` (frozen)."""
    info: LrmWeights
    """The folder's description (sizes, value_scale, max_offset, training record)."""

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> TrainedLrm:
        """Check and load the trained LRM folder ``folder`` (raises :class:`.weights.LrmWeightsError`)."""
        return cls(*load_lrm(folder, device))


def predict_textures(lrm: TrainedLrm, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T_off, T_rgb) float32 ``[R, R, C]`` of the uint8 ``[17, S, S, 3]`` input frames."""
    device = next(lrm.network.parameters()).device
    with torch.no_grad():
        off, rgb = lrm.network.textures(frames_to_tensor(frames)[None].to(device))
    return off[0].cpu().numpy(), rgb[0].cpu().numpy()


def textures_bundle(lrm: TrainedLrm, offset: np.ndarray, rgb: np.ndarray, provenance: dict) -> Bundle:
    """The INT8 ``neumip`` bundle of textures ``offset``, ``rgb`` with the LRM's decoders."""
    from ..models.neumip import NeuMipField
    from ..train.neumip.export import to_bundle

    field = NeuMipField(1, offset.shape[0], lrm.info.max_offset, lrm.decoders)
    with torch.no_grad():
        field.textures[0].offset.copy_(torch.from_numpy(offset))
        field.textures[0].rgb.copy_(torch.from_numpy(rgb))
    return to_bundle(field, 0, lrm.info.value_scale, provenance)


def reconstruct(lrm: TrainedLrm, video: PosedFrames) -> tuple[Bundle, float]:
    """The bundle of ``video`` (module docstring) and the seconds the forward pass took.

    Raises:
        neumat.lrm.inputs.InputError: the video is not what the LRM was trained on (frame count,
            resolution, trajectory).
    """
    from ..video.fit import video_spec

    check_for_lrm(video, lrm.info.model)
    indices = input_indices(lrm.info.model.video_frames, lrm.info.model.frames)
    start = time.perf_counter()
    offset, rgb = predict_textures(lrm, video.frames[indices])
    seconds = time.perf_counter() - start
    provenance = {"source": video_spec(video, 0), "material": video.path.stem,
                  "lrm": {"weights": str(lrm.info.folder.resolve()), "input_frames": indices,
                          "trained_steps": lrm.info.training.get("steps"), "forward_seconds": round(seconds, 3)}}
    return textures_bundle(lrm, offset, rgb, provenance), seconds
