"""The LRM's rendering loss (VideoNeuMat seed §4.3): L2 on rendered frames plus a perceptual term
with weight 0.1.

For rendered radiance ``pred`` (linear Rec.709, :func:`neumat.video.frame_render.render_frame`)
and an 8-bit sRGB frame ``ref`` of the data set, per frame::

    loss = mean_{pixels, channels} e²  +  w · perceptual(srgb(pred), ref / 255)

with ``e = pred - linear(ref)``, except where ``ref`` is 255 (clipped: the true value is only
known to be >= 1) where ``e = max(1 - pred, 0)``. ``srgb`` is the IEC 61966-2-1 encoding of the
prediction clipped to [0, 1] (the torch twin of :func:`neumat.fidelity.materials.linear_to_srgb`),
so the perceptual term compares what an 8-bit frame would show.

The perceptual term (:func:`make_perceptual`), named in every metric file the LRM writes:

* **LPIPS** when a local file is given: a TorchScript module ``(x, y) -> [N, 1, 1, 1]`` on images
  in [-1, 1], e.g. ``torch.jit.save(torch.jit.trace(lpips.LPIPS(net="vgg").eval(), (x, x)), "lpips.pt")``
  made where its backbone weights can be downloaded (nothing is downloaded here);
* otherwise the weight-free substitute ``1 - MS-SSIM`` (``pytorch-msssim``: 5 scales, Gaussian
  window 11, σ 1.5) — for frames of at most 160 pixels, too small for MS-SSIM's four
  downsamplings, ``1 - SSIM`` at one scale with a window of 7.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..train.config_io import ConfigError

MSSSIM_MIN_SIDE = 161
"""Smallest frame side MS-SSIM's 5 scales take with window 11 (pytorch-msssim: > 10 · 2⁴)."""
SSIM_WINDOW = 7
"""Gaussian window of the one-scale SSIM used below :data:`MSSSIM_MIN_SIDE`."""


def srgb_encode(linear: torch.Tensor) -> torch.Tensor:
    """IEC 61966-2-1 sRGB encoding of linear values clipped to [0, 1] (differentiable inside)."""
    c = linear.clamp(0.0, 1.0)
    return torch.where(c <= 0.0031308, 12.92 * c, 1.055 * c.clamp(min=0.0031308) ** (1.0 / 2.4) - 0.055)


def srgb_decode(srgb8: torch.Tensor) -> torch.Tensor:
    """Linear values of 8-bit sRGB codes (any integer tensor), float32."""
    c = srgb8.float() / 255.0
    return torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


@dataclass
class Perceptual:
    """A perceptual distance between sRGB-encoded images ``[N, 3, H, W]`` in [0, 1] (lower is closer)."""

    name: str
    """What it is, for metric files (e.g. ``"1 - MS-SSIM (pytorch-msssim, substitute for LPIPS)"``)."""
    distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    """``(pred, ref) -> [N]`` distances per image."""

    def __call__(self, pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return self.distance(pred, ref)


def make_perceptual(kind: str, lpips_weights: str | Path, side: int) -> Perceptual:
    """The perceptual term (module docstring) for frames of ``side`` pixels.

    Args:
        kind: ``"auto"`` (LPIPS when ``lpips_weights`` is given, else the substitute),
            ``"msssim"`` or ``"lpips"``.
        lpips_weights: local TorchScript LPIPS file, or "".

    Raises:
        ConfigError: LPIPS asked for without a file, or a file that is not a loadable module.
    """
    if kind == "lpips" or (kind == "auto" and lpips_weights):
        return _lpips(lpips_weights)
    from pytorch_msssim import ms_ssim, ssim

    if side >= MSSSIM_MIN_SIDE:
        return Perceptual("1 - MS-SSIM (pytorch-msssim, 5 scales, window 11; substitute for LPIPS, no LPIPS "
                          "weights given)",
                          lambda p, r: 1.0 - ms_ssim(p, r, data_range=1.0, size_average=False))
    return Perceptual(f"1 - SSIM (pytorch-msssim, one scale, window {SSIM_WINDOW}: frames of {side} px are too small "
                      f"for MS-SSIM; substitute for LPIPS, no LPIPS weights given)",
                      lambda p, r: 1.0 - ssim(p, r, data_range=1.0, size_average=False, win_size=SSIM_WINDOW))


def _lpips(path: str | Path) -> Perceptual:
    path = Path(path) if path else None
    if path is None or not path.is_file():
        raise ConfigError(f"LPIPS weights file {path} does not exist (give a TorchScript LPIPS module, see "
                          "neumat.lrm.loss; without one the MS-SSIM substitute is used)")
    try:
        net = torch.jit.load(str(path), map_location="cpu").eval()
    except (RuntimeError, ValueError, OSError) as e:
        raise ConfigError(f"{path}: not a TorchScript LPIPS module ({e})") from e
    for p in net.parameters():
        p.requires_grad_(False)

    def distance(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        net.to(pred.device)
        return net(pred * 2.0 - 1.0, ref * 2.0 - 1.0).reshape(len(pred))

    return Perceptual(f"LPIPS ({path.name}, TorchScript)", distance)


def render_loss(pred: torch.Tensor, ref8: torch.Tensor, perceptual: Perceptual,
                weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of rendered frames ``pred`` (float32 ``[K, H, W, 3]`` linear radiance) against
    8-bit frames ``ref8`` (uint8 ``[K, H, W, 3]``), averaged over the K frames (module
    docstring). Returns ``(loss, {"l2": ..., "perceptual": ...})`` (the parts detached)."""
    ref = srgb_decode(ref8)
    clipped = ref8 == 255
    err = torch.where(clipped, torch.relu(1.0 - pred), pred - ref)
    l2 = (err * err).mean()
    parts = {"l2": float(l2.detach())}
    if weight <= 0:
        return l2, parts
    p = perceptual(srgb_encode(pred).permute(0, 3, 1, 2), (ref8.float() / 255.0).permute(0, 3, 1, 2)).mean()
    parts["perceptual"] = float(p.detach())
    return l2 + weight * p, parts
