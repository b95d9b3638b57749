"""Image figures of rendered LRM materials against data-set frames, and the images validation
saves. Every figure compares linear radiance (8-bit sRGB frames decoded) over all pixels and
channels, in ARCHITECTURE.md's reading order:

* ``rel_l1`` = Σ|pred − ref| / Σ|ref| (scale-free);
* ``mape`` = mean(|pred − ref| / (ref + 0.01)) (the seed's MAPE; 0.01 keeps black pixels finite);
* ``mse`` and ``psnr`` = 10 log10(1 / mse) (peak 1);
* ``perceptual``: the run's perceptual distance (:func:`.loss.make_perceptual`; LPIPS or its
  stated substitute), named in ``perceptual_metric`` beside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..metrics import psnr
from ..video.folder import srgb8, write_png
from .loss import Perceptual, srgb_decode, srgb_encode

MAPE_EPS = 0.01
"""Added to the reference in MAPE's denominator (linear radiance)."""
FIGURES = ("rel_l1", "mape", "mse", "psnr", "perceptual")
"""The figures of :func:`frame_figures`, in reading order."""


@torch.no_grad()
def frame_figures(pred: torch.Tensor, ref8: torch.Tensor, perceptual: Perceptual) -> dict[str, float | str]:
    """Figures (module docstring) of rendered radiance ``pred`` (float32 ``[K, H, W, 3]``) against
    8-bit frames ``ref8`` (uint8 ``[K, H, W, 3]``), plus ``perceptual_metric`` (its name)."""
    ref = srgb_decode(ref8).double()
    p = pred.double()
    diff = (p - ref).abs()
    mse = float((diff * diff).mean())
    dist = perceptual(srgb_encode(pred.float()).permute(0, 3, 1, 2), (ref8.float() / 255.0).permute(0, 3, 1, 2))
    return {"rel_l1": float(diff.sum() / ref.abs().sum().clamp(min=1e-30)),
            "mape": float((diff / (ref + MAPE_EPS)).mean()), "mse": mse, "psnr": psnr(mse),
            "perceptual": float(dist.mean()), "perceptual_metric": perceptual.name}


def mean_figures(rows: list[dict[str, float | str]]) -> dict[str, float | str]:
    """Per-figure means of :func:`frame_figures` dicts (materials weighted equally)."""
    out: dict[str, float | str] = {k: float(np.mean([r[k] for r in rows])) for k in FIGURES}
    out["perceptual_metric"] = rows[0]["perceptual_metric"]
    return out


def save_comparison(path: str | Path, pred: torch.Tensor, ref8: torch.Tensor) -> Path:
    """Write a PNG: the K rendered frames (top row, 8-bit sRGB) over the data set's (bottom row)."""
    top = np.concatenate(list(srgb8(pred.detach().cpu().numpy())), axis=1)
    bottom = np.concatenate(list(ref8.cpu().numpy()), axis=1)
    return write_png(path, np.concatenate([top, bottom], axis=0))
