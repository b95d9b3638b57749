"""The two pretrained image encoders of MVInverse, built by timm (the ``inverse`` extra):

* the DINOv2 ViT (seed §3.2; Pi3's encoder, ViT-L/14 with 4 registers): ``[N, 3, H, W]``
  ImageNet-normalized -> patch tokens ``[N, (H/14)(W/14), dim]`` after its final LayerNorm
  (DINOv2's ``x_norm_patchtokens``); its 37 x 37 position embedding is resampled to other grids
  (timm's ``dynamic_img_size``: bicubic with antialiasing, as DINOv2's registered models do,
  though not necessarily to the last bit at sizes other than 518 pixels);
* the ResNeXt detail encoder (seed §6: ResNeXt-101 32x8d WSL): its stem + four stages on the
  image resized by 8/7, feature maps at strides 4, 8, 16, 32 of the resized image
  (``[N, 4w_k, ...]``, ``w_k`` = :attr:`~.config.ModelConfig.resnext_widths`).

Neither downloads anything: weights come from local files (:mod:`.weights`).

timm is imported lazily, on the first build (:mod:`.timm_import`): ``import neumat`` and every
other command stay free of it.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .timm_import import import_timm


def build_encoder(cfg: ModelConfig) -> nn.Module:
    """timm's DINOv2 ViT of ``cfg`` (random init, no classifier, dynamic image size)."""
    timm = import_timm()
    return timm.create_model(cfg.encoder, pretrained=False, num_classes=0, img_size=cfg.encoder_img_size,
                             embed_dim=cfg.encoder_dim, depth=cfg.encoder_depth, num_heads=cfg.encoder_heads,
                             dynamic_img_size=True)


def encode_tokens(vit: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Patch tokens ``[N, (H/14)(W/14), dim]`` of ImageNet-normalized images ``x`` ``[N, 3, H, W]``
    (after the final norm; class and register tokens dropped)."""
    return vit.forward_features(x)[:, vit.num_prefix_tokens:]


def build_resnext(cfg: ModelConfig) -> nn.Module:
    """timm's ResNeXt of ``cfg`` (random init, no classifier, no pooling)."""
    timm = import_timm()
    return timm.create_model(cfg.resnext, pretrained=False, num_classes=0, global_pool="",
                             layers=cfg.resnext_layers, channels=cfg.resnext_widths,
                             cardinality=cfg.resnext_cardinality, base_width=cfg.resnext_base_width)


def resnext_channels(cfg: ModelConfig) -> tuple[int, ...]:
    """Output channels of the four ResNeXt stages (bottleneck expansion 4)."""
    return tuple(4 * w for w in cfg.resnext_widths)


def resnext_features(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The four stage outputs of ResNeXt ``net`` on ``x`` ``[N, 3, h, w]``: strides 4, 8, 16, 32."""
    x = net.maxpool(net.act1(net.bn1(net.conv1(x))))
    feats = []
    for stage in (net.layer1, net.layer2, net.layer3, net.layer4):
        x = stage(x)
        feats.append(x)
    return feats
