"""DPT-style dense prediction heads (Ranftl et al. 2021, as VGGT / Pi3 use them) with the seed's
detail fusion (seed 002 §3.2 "Intrinsic Heads", §6 Fig. 9).

A head reads the features of four alternating blocks (tokens of one view, ``[N, P, 2 * dim]``
after dropping the register tokens), reassembles them into maps at strides 14/4, 14/2, 14 and
28 pixels (1x1 projection, then transposed convolution x4 / x2, identity, or a stride-2
convolution), brings each to ``head_features`` channels and fuses them coarse to fine with
RefineNet blocks; a last upsampling to the input resolution and two convolutions give the map
(with :attr:`~.config.ModelConfig.image_skip`, the normalized input image is concatenated to the
upsampled feature first: detail below the finest level's 3.5-pixel stride).

Detail fusion (the DPT-hybrid-like part): the auxiliary ResNeXt encoder sees the image resized
by 8/7, so its four stages land on exactly the DPT levels' grids (2H/7, H/7, H/14, H/28 up to
rounding). At each level its feature is projected to ``head_features`` channels (3x3 conv)
and fused with the DPT feature by the "lightweight convolutional refinement block":
concatenation, a 1x1 convolution and a residual convolution unit (:class:`DetailFusion`).
The seed's figure is not in its text; this is the block as its caption describes it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import PATCH, ModelConfig
from .intrinsics import IntrinsicSpec


class ResidualConvUnit(nn.Module):
    """``x + conv2(relu(conv1(relu(x))))`` with 3x3 convolutions (DPT's residual unit)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class RefineBlock(nn.Module):
    """DPT's feature fusion block: add the skip (through a residual unit), refine, upsample
    bilinearly to ``size`` (align_corners=True, as DPT), 1x1 convolution."""

    def __init__(self, ch: int, with_skip: bool) -> None:
        super().__init__()
        self.skip = ResidualConvUnit(ch) if with_skip else None
        self.refine = ResidualConvUnit(ch)
        self.out_conv = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor:
        if skip is not None:
            x = x + self.skip(skip)
        x = F.interpolate(self.refine(x), size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class DetailFusion(nn.Module):
    """The seed's lightweight refinement block: a ResNeXt feature ``[N, C_res, h', w']`` is
    projected to the DPT level's ``[N, F, h, w]`` (3x3 conv, resampled bilinearly if the grids
    differ by rounding), concatenated with it, mixed by a 1x1 convolution and refined by a
    residual convolution unit; ``-> [N, F, h, w]``."""

    def __init__(self, res_ch: int, ch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(res_ch, ch, 3, padding=1, bias=False)
        self.mix = nn.Conv2d(2 * ch, ch, 1)
        self.refine = ResidualConvUnit(ch)

    def forward(self, x: torch.Tensor, detail: torch.Tensor) -> torch.Tensor:
        d = self.proj(detail)
        if d.shape[-2:] != x.shape[-2:]:
            d = F.interpolate(d, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.refine(self.mix(torch.cat([x, d], dim=1)))


def activate(raw: torch.Tensor, activation: str) -> torch.Tensor:
    """A head's output activation over channels (dim 1): ``"sigmoid"`` -> [0, 1]; ``"unit"``
    -> tanh, then L2-normalized (unit vectors; eps 1e-6 keeps an all-zero output finite)."""
    if activation == "sigmoid":
        return torch.sigmoid(raw)
    if activation == "unit":
        return F.normalize(torch.tanh(raw), dim=1, eps=1e-6)
    raise ValueError(f"unknown head activation {activation!r}; expected 'sigmoid' or 'unit'")


class DPTHead(nn.Module):
    """One intrinsic map's head.

    Args:
        cfg: the network's config (widths, levels).
        spec: the map it predicts (channels, activation).
        detail_channels: channels of the four ResNeXt stages to fuse, or None (no fusion).
    """

    def __init__(self, cfg: ModelConfig, spec: IntrinsicSpec, detail_channels: tuple[int, ...] | None) -> None:
        super().__init__()
        self.image_skip = cfg.image_skip
        in_dim, ch, feat = 2 * cfg.dim, cfg.head_channels, cfg.head_features
        self.spec = spec
        self.norm = nn.LayerNorm(in_dim)
        self.projects = nn.ModuleList(nn.Conv2d(in_dim, c, 1) for c in ch)
        self.resize = nn.ModuleList([
            nn.ConvTranspose2d(ch[0], ch[0], 4, stride=4),
            nn.ConvTranspose2d(ch[1], ch[1], 2, stride=2),
            nn.Identity(),
            nn.Conv2d(ch[3], ch[3], 3, stride=2, padding=1),
        ])
        self.layer_rn = nn.ModuleList(nn.Conv2d(c, feat, 3, padding=1, bias=False) for c in ch)
        self.detail = (nn.ModuleList(DetailFusion(c, feat) for c in detail_channels)
                       if detail_channels is not None else None)
        self.refine = nn.ModuleList(RefineBlock(feat, with_skip=k < 3) for k in range(4))
        self.out_conv1 = nn.Conv2d(feat, feat // 2, 3, padding=1)
        skip = 3 if self.image_skip else 0
        self.out_conv2 = nn.Sequential(nn.Conv2d(feat // 2 + skip, cfg.head_hidden, 3, padding=1), nn.ReLU(),
                                       nn.Conv2d(cfg.head_hidden, spec.channels, 1))

    def forward(self, features: list[torch.Tensor], rows: int, cols: int,
                detail: list[torch.Tensor] | None = None, image: torch.Tensor | None = None) -> torch.Tensor:
        """The map of ``N`` views.

        Args:
            features: four ``[N, rows * cols, 2 * dim]`` patch features (register tokens removed).
            rows, cols: the patch grid; the output is ``14 rows x 14 cols`` pixels.
            detail: four ResNeXt maps ``[N, C_k, h_k, w_k]`` when this head fuses them.
            image: ``[N, 3, 14 rows, 14 cols]``, the normalized input views, when the head has
                :attr:`~.config.ModelConfig.image_skip`.
        Returns:
            ``[N, channels, 14 rows, 14 cols]`` after the activation (:func:`activate`).
        """
        levels = []
        for k, tok in enumerate(features):
            x = self.norm(tok).transpose(1, 2).reshape(tok.shape[0], -1, rows, cols)
            x = self.layer_rn[k](self.resize[k](self.projects[k](x)))
            if self.detail is not None:
                x = self.detail[k](x, detail[k])
            levels.append(x)
        out = self.refine[3](levels[3], None, levels[2].shape[-2:])
        out = self.refine[2](out, levels[2], levels[1].shape[-2:])
        out = self.refine[1](out, levels[1], levels[0].shape[-2:])
        out = self.refine[0](out, levels[0], (2 * levels[0].shape[-2], 2 * levels[0].shape[-1]))
        out = self.out_conv1(out)
        out = F.interpolate(out, size=(rows * PATCH, cols * PATCH), mode="bilinear", align_corners=True)
        if self.image_skip:
            out = torch.cat([out, image], dim=1)
        return activate(self.out_conv2(out), self.spec.activation)
