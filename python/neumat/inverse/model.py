"""MVInverse (seed 002): feed-forward multi-view inverse rendering.

``images [B, V, 3, H, W]`` (``B`` scenes of ``V >= 2`` views, RGB in [0, 1], ``H``, ``W``
multiples of 14; :mod:`.batch`) -> per view, at the input resolution, ``[B, V, C, H, W]``:

=============  ===  =======================================================================
``albedo``     3    [0, 1] (sigmoid), linear RGB
``metallic``   1    [0, 1] (sigmoid)
``roughness``  1    [0, 1] (sigmoid)
``normal``     3    unit length (tanh, then L2-normalized), camera frame, OpenCV axes
``shading``    3    [0, 1] (sigmoid), diffuse shading (diffuse image = albedo · shading)
=============  ===  =======================================================================

(conventions: :mod:`.intrinsics`). The pipeline (seed Fig. 3):

1. ImageNet normalization; the DINOv2 ViT encodes every view into 14-pixel patch tokens
   (:mod:`.encoders`);
2. Pi3's alternating-attention decoder mixes them within each view and across the views
   (:mod:`.attention`; permutation-equivariant: permuting the views permutes the outputs);
3. one DPT head per map reads four of its alternating blocks (:mod:`.dpt`); the heads listed in
   :attr:`~.config.ModelConfig.fused_heads` also fuse the ResNeXt detail encoder's features of
   the image resized by 8/7 (:mod:`.encoders`).

Heads with :attr:`~.config.ModelConfig.image_skip` also see the normalized input image at full
resolution before their last convolutions; :func:`start_at_constants` makes an untrained
network predict given constants (the training set's means) everywhere.

Parameter groups (what the training phases freeze, :mod:`.train`): ``encoders`` (the DINOv2
ViT and the ResNeXt), ``decoder`` (attention blocks and register tokens), ``heads``
(everything in the DPT heads, the detail fusion's projections included).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .attention import AlternatingAttention
from .batch import check_images
from .config import PATCH, ModelConfig
from .dpt import DPTHead
from .encoders import build_encoder, build_resnext, encode_tokens, resnext_channels, resnext_features
from .intrinsics import SPECS, Intrinsic

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Per-channel mean the encoders were trained with (RGB in [0, 1])."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel standard deviation the encoders were trained with."""
GROUPS = ("encoders", "decoder", "heads")
"""Parameter groups of :meth:`MVInverse.group_modules`."""


class MVInverse(nn.Module):
    """The network (module docstring). Built with random weights; load pretrained ones with
    :mod:`.weights`. ``cfg``: :class:`~.config.ModelConfig` (``.full()`` or ``.tiny()``)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        bad = cfg.problems()
        if bad:
            raise ValueError("invalid MVInverse model config: " + "; ".join(bad))
        self.cfg = cfg
        self.encoder = build_encoder(cfg)
        fused = cfg.fused()
        self.detail = build_resnext(cfg) if fused else None
        self.decoder = AlternatingAttention(cfg)
        self.heads = nn.ModuleDict({
            m.value: DPTHead(cfg, spec, resnext_channels(cfg) if m in fused else None) for m, spec in SPECS.items()})
        self.register_buffer("image_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.frozen: tuple[str, ...] = ()

    # -- parameter groups and freezing ------------------------------------------------------------
    def group_modules(self, group: str) -> list[nn.Module]:
        """The modules of parameter group ``group`` (:data:`GROUPS`)."""
        if group == "encoders":
            return [m for m in (self.encoder, self.detail) if m is not None]
        if group == "decoder":
            return [self.decoder]
        if group == "heads":
            return [self.heads]
        raise ValueError(f"unknown parameter group {group!r}; expected one of {GROUPS}")

    def set_trainable(self, groups: Iterable[str]) -> list[nn.Parameter]:
        """Train exactly the parameter groups ``groups``; freeze the others (``requires_grad``
        off, and in eval mode whatever :meth:`train` says, so the frozen ResNeXt's batch-norm
        statistics stay as loaded). Returns the trainable parameters, in module order."""
        groups = tuple(groups)
        for g in groups:
            self.group_modules(g)  # validates the name
        self.frozen = tuple(g for g in GROUPS if g not in groups)
        params = []
        for g in GROUPS:
            for m in self.group_modules(g):
                m.requires_grad_(g in groups)
                params += list(m.parameters()) if g in groups else []
        self.train(self.training)
        return params

    def train(self, mode: bool = True) -> "MVInverse":
        """Set training mode; frozen groups (:meth:`set_trainable`) always stay in eval mode."""
        super().train(mode)
        for g in self.frozen:
            for m in self.group_modules(g):
                m.eval()
        return self

    # -- forward -------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, maps: Iterable[Intrinsic] | None = None) -> dict[Intrinsic, torch.Tensor]:
        """Predict the intrinsic maps of every view.

        Args:
            images: ``[B, V, 3, H, W]`` in [0, 1] (checked: :func:`~.batch.check_images`).
            maps: which maps to predict (default: all five).
        Returns:
            ``{map: [B, V, C, H, W]}`` (module docstring for channels and ranges).
        """
        check_images(images)
        b, v, _, h, w = images.shape
        rows, cols = h // PATCH, w // PATCH
        maps = tuple(SPECS) if maps is None else tuple(Intrinsic(m) for m in maps)
        x = (images.reshape(b * v, 3, h, w) - self.image_mean) / self.image_std
        tokens = encode_tokens(self.encoder, x).reshape(b, v, rows * cols, -1)
        keep = tuple(sorted(set(self.cfg.head_layers)))
        pairs = self.decoder(tokens, rows, cols, keep)
        r = self.cfg.registers
        features = [pairs[k].reshape(b * v, r + rows * cols, -1)[:, r:] for k in self.cfg.head_layers]
        detail = None
        if self.detail is not None and any(m in self.cfg.fused() for m in maps):
            resized = F.interpolate(x, size=(h * 8 // 7, w * 8 // 7), mode="bilinear", align_corners=False)
            detail = resnext_features(self.detail, resized)
        out = {}
        for m in maps:
            head = self.heads[m.value]
            y = head(features, rows, cols, detail if head.detail is not None else None, x)
            out[m] = y.reshape(b, v, *y.shape[1:])
        return out


def parameter_count(module: nn.Module) -> int:
    """Number of parameter elements of ``module`` (works on the ``meta`` device)."""
    return sum(p.numel() for p in module.parameters())


def start_at_constants(model: MVInverse, constants: Mapping[str, Any]) -> None:
    """Residual start around the training-set means: zero every head's output layer (the last
    1x1 convolution) and set its bias so that the untrained network predicts ``constants``
    everywhere — ``{"albedo": [r, g, b], "metallic", "roughness"}`` in [0, 1] (linear; clamped to
    [0.01, 0.99] before the sigmoid's inverse), e.g. :func:`~.evaluate.training_constants` —
    normals facing the camera (0, 0, -1) and shading 0.5. Training then starts exactly at the
    ``mean`` baseline of :mod:`.evaluate` and learns the maps as residuals (in logit space)
    around it; gradients reach the rest of the head from the first step on."""
    targets = {Intrinsic.ALBEDO: constants["albedo"], Intrinsic.METALLIC: [constants["metallic"]],
               Intrinsic.ROUGHNESS: [constants["roughness"]], Intrinsic.NORMAL: [0.0, 0.0, -1.0],
               Intrinsic.SHADING: [0.5, 0.5, 0.5]}
    with torch.no_grad():
        for m, value in targets.items():
            out = model.heads[m.value].out_conv2[-1]
            v = torch.tensor(value, dtype=out.bias.dtype)
            out.weight.zero_()
            out.bias.copy_(v if SPECS[m].activation == "unit" else torch.logit(v.clamp(0.01, 0.99)))
