"""Pictures of the renderer's AOVs (``neumat render --aov``, the viewer's debug views)."""

from __future__ import annotations

import numpy as np


def aov_image(name: str, value: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] visualization of an AOV: uv -> (frac u, frac v, 0); depth normalized over
    the mask (near = bright); mask, height as grey."""
    if name == "uv":
        rgb = np.concatenate([value - np.floor(value), np.zeros_like(value[..., :1])], axis=-1) * mask
    elif name == "depth":
        d = value[..., 0]
        on = mask[..., 0] > 0.5
        lo, hi = (float(d[on].min()), float(d[on].max())) if on.any() else (0.0, 1.0)
        grey = np.where(on, 1.0 - (d - lo) / max(hi - lo, 1e-12), 0.0)
        rgb = np.repeat(grey[..., None], 3, axis=-1)
    else:
        rgb = np.repeat(value[..., :1], 3, axis=-1)
    return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
