"""Frames of the textures an LRM predicts, through the frame renderer of direct fitting
(:func:`neumat.video.frame_render.render_frame`: pinhole camera, plane z = 0, disk light), so the
LRM's rendering loss, direct fitting and the viewer share one definition of a frame.

The predicted T_off / T_rgb are activations, not parameters: :class:`PredictedMaterial` stands in
for a one-material :class:`~neumat.models.neumip.NeuMipField` whose textures are replaced by
them for each call (``torch.func.functional_call``), so gradients reach the textures (hence the
network) and the field's universal decoders.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from ..models.neumip import NeuMipDecoders, NeuMipField
from ..video.frame_render import render_frame
from ..video.trajectory import FramePose


def decoder_field(decoders: NeuMipDecoders, max_offset: float) -> NeuMipField:
    """A one-material field around ``decoders`` whose own 1x1 textures are never read (the
    predicted ones replace them, :class:`PredictedMaterial`)."""
    return NeuMipField(1, 1, max_offset, decoders)


class PredictedMaterial:
    """``field`` evaluated with textures ``offset``, ``rgb`` (float32 ``[R, R, C]``): callable and
    indexable as :func:`~neumat.video.frame_render.render_frame` uses a field."""

    def __init__(self, field: NeuMipField, offset: torch.Tensor, rgb: torch.Tensor) -> None:
        self.field = field
        self.textures = [SimpleNamespace(offset=offset, rgb=rgb)]
        self.params = {"textures.0.offset": offset, "textures.0.rgb": rgb}

    def __call__(self, *args, **kwargs) -> torch.Tensor:
        return torch.func.functional_call(self.field, self.params, args, kwargs)


def render_predicted(field: NeuMipField, offset: torch.Tensor, rgb: torch.Tensor, poses: list[FramePose],
                     size: int, sample_size: float, value_scale: float) -> torch.Tensor:
    """float32 ``[K, size, size, 3]`` linear radiance of the material (``offset``, ``rgb``) at
    ``poses`` under the dataset's disk light (differentiable)."""
    material = PredictedMaterial(field, offset, rgb)
    return torch.stack([render_frame(material, p, size, size, sample_size, value_scale).radiance for p in poses])
