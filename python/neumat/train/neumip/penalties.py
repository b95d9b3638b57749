"""NeuMIP's offset penalties (seed 000, §4.1; :class:`~.config.NeuMipConfig` ``offset_penalty``,
``offset_anchor``): what the learned offsets Δu (UV units) cannot be, added to the L1 loss.
"""

from __future__ import annotations

import torch

from ...models.neumip import NeuMipField


def cross_view_offset_penalty(du: torch.Tensor, wo: torch.Tensor, max_offset: float) -> torch.Tensor:
    """mean(|Δu⊥ / max_offset|²) / 2: the part of the offsets ``du`` ``[B, 2]`` (UV units)
    perpendicular to the view's azimuth ``wo.xy`` (``wo`` ``[B, 3]`` unit local directions).

    True parallax in the reference uv space is ``-(ωo.xy / ωo.z) · depth`` with depth >= 0: a
    shift along the view azimuth only. The component along it is left free (its size is the
    material's depth, what the offset network is there to learn); the component across it is
    never parallax. Halved so it equals mean((Δu / max_offset)²) when all of Δu is across.
    Head-on (``wo.xy = 0``) all of Δu counts. Measured on stone_tiles with the head-on anchor
    (:func:`normal_view_offset_penalty`): penalizing all of Δu gave offset / true-parallax
    correlation 0.12 and held-out INT8 39.4 dB, a quarter weight on the along part 0.22 and
    40.3 dB, a tenth 0.26 and 40.7 dB, none (this) 0.39 and 40.8 dB."""
    axis = torch.nn.functional.normalize(wo[:, :2], dim=1, eps=1e-6)
    across = du - (du * axis).sum(1, keepdim=True) * axis
    return (across / max_offset).square().sum(1).mean() / 2


def normal_view_offset_penalty(model: NeuMipField, uv: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """mean((Δu(uv, ωo = +z) / max_offset)²): the offsets of the step's texture coordinates
    ``uv`` ``[B, 2]`` seen head-on, where the true parallax in the reference uv space is 0 (the
    view ray enters the shell top right above the point it hits).

    Why it is needed: the training views have θo between about 16° and 71°, so the other
    penalty never sees head-on views, and there the bias-free offset network's output is a
    positively homogeneous function of ``T_off`` alone (ωo.xy = 0); ``T_off`` starts near 0,
    i.e. at Δu = -max_offset. Without this term the shipped stone_tiles material had a head-on
    shift of -0.58 max_offset (while its mean offset on the training views was < 0.01
    max_offset): a view-dependent texture shift that swims on curved surfaces. It acts from
    step 0, also while Δu is held at 0 for the rgb lookups, on the textures and (when they
    train) the decoders."""
    normal = torch.zeros(len(uv), 3, dtype=uv.dtype, device=uv.device)
    normal[:, 2] = 1.0
    return (model.offsets(uv, normal, sizes) / model.max_offset).square().mean()
