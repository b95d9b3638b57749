"""Bilinear lookup in texel grids (float64) — the one interpolation rule of the height field, the
data renderers (``neumat.data``) and the renderer's numpy references.

Texel (r, c) of an H×W grid is centred at uv = ((c + .5) / W, (r + .5) / H); row = v, col = u.
"""

from __future__ import annotations

import numpy as np


def bilinear(image: np.ndarray, uv: np.ndarray, wrap: bool = True, skip_nan: bool = False) -> np.ndarray:
    """Bilinearly interpolate ``image`` at texture coordinates ``uv``.

    Args:
        image: [H, W] or [H, W, C] array (any float dtype; NaNs propagate to the samples whose
            four neighbours include them, unless ``skip_nan``).
        uv: [N, 2] texture coordinates (u along columns, v along rows), any real values.
        wrap: ``True``: the texture repeats (tileable materials); ``False``: clamp to the edge
            texels (measured, non-tileable images such as UBO2014 frames).
        skip_nan: interpolate over the finite neighbours only (their bilinear weights
            renormalized); NaN only where all four are NaN. For images with masked texels.

    Returns:
        [N] or [N, C] interpolated values, in ``image``'s dtype when it is floating point
        (computed in float64 for float64 input, float32 otherwise).
    """
    h, w = image.shape[:2]
    work = np.float64 if image.dtype == np.float64 else np.float32
    x = np.asarray(uv[:, 0], dtype=np.float64) * w - 0.5
    y = np.asarray(uv[:, 1], dtype=np.float64) * h - 0.5
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = (x - x0).astype(work)
    fy = (y - y0).astype(work)
    x0 = x0.astype(np.int64)
    y0 = y0.astype(np.int64)
    if wrap:
        x1 = (x0 + 1) % w
        y1 = (y0 + 1) % h
        x0 %= w
        y0 %= h
    else:
        x1 = np.clip(x0 + 1, 0, w - 1)
        y1 = np.clip(y0 + 1, 0, h - 1)
        x0 = np.clip(x0, 0, w - 1)
        y0 = np.clip(y0, 0, h - 1)
    if image.ndim == 3:
        fx = fx[:, None]
        fy = fy[:, None]
    img = image.astype(work, copy=False)
    if skip_nan:
        taps = [(img[y0, x0], (1 - fx) * (1 - fy)), (img[y0, x1], fx * (1 - fy)),
                (img[y1, x0], (1 - fx) * fy), (img[y1, x1], fx * fy)]
        total = sum(np.where(np.isnan(v), 0, v * w) for v, w in taps)
        weight = sum(np.where(np.isnan(v), 0, w) for v, w in taps)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(weight > 0, total / weight, np.nan).astype(work)
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy
