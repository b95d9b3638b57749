"""Error metrics of neural materials against reference images (numpy, no torch).

Metrics are in BTF value units (linear Rec.709, see :mod:`neumat.data.source`):
``l1 = mean |pred - target|`` over pixels and channels, ``rel_l1 = sum |pred - target| /
sum |target|``, ``psnr = 10 log10(1 / mse)`` dB with a fixed peak of 1.0 (independent of
``value_scale``, so runs of a material compare; it flatters dark materials — read ``rel_l1``).
The held-out helpers (:func:`render_heldout`, :func:`evaluate_heldout`) evaluate any bundle
through its kind's numpy INT8 reference (:attr:`neumat.material.MaterialKind.reference`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .bundle import Bundle
from .material import EvalError, kind_of


def error_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """``{"l1", "rel_l1", "mse", "psnr", "valid"}`` of ``pred`` vs ``target`` (``[..., 3]``, BTF units).

    ``rel_l1 = sum |pred - target| / sum |target|`` (scale-free: PSNR with peak 1 flatters dark
    materials); ``psnr`` has peak 1.
    Target pixels holding NaN (points masked from the view in ``"surface"``-space sources)
    are left out; ``valid`` counts the pixels used.
    """
    p = np.asarray(pred, dtype=np.float64).reshape(-1, 3)
    t = np.asarray(target, dtype=np.float64).reshape(-1, 3)
    keep = np.all(np.isfinite(t), axis=1)
    if not keep.any():
        raise EvalError("no valid (non-NaN) target pixels to compare with")
    diff = p[keep] - t[keep]
    mse = float(np.mean(diff * diff))
    rel = float(np.sum(np.abs(diff)) / max(float(np.sum(np.abs(t[keep]))), 1e-30))
    return {"l1": float(np.mean(np.abs(diff))), "rel_l1": rel, "mse": mse, "psnr": psnr(mse), "valid": int(keep.sum())}


HEADLINE_KEYS = ("rel_l1", "psnr", "l1", "mse", "valid")
"""Keys of the held-out figures every report shows, in reading order (relative L1 first)."""


def headline_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The :data:`HEADLINE_KEYS` of an :func:`error_metrics` / :func:`evaluate_heldout` dict, in order."""
    return {k: metrics[k] for k in HEADLINE_KEYS}


def psnr(mse: float) -> float:
    """``10 log10(1 / mse)`` in dB (peak 1.0 in BTF units); capped at 200 dB for mse = 0."""
    return 200.0 if mse <= 1e-20 else float(-10.0 * math.log10(mse))


def image_uv(rows: int, cols: int) -> np.ndarray:
    """float32 ``[rows * cols, 2]`` pixel-centre uv of an image, row-major (row = v, col = u)."""
    v, u = np.meshgrid((np.arange(rows) + 0.5) / rows, (np.arange(cols) + 0.5) / cols, indexing="ij")
    return np.stack([u.ravel(), v.ravel()], axis=1).astype(np.float32)


def render_heldout(
    bundle: Bundle, images: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> list[np.ndarray]:
    """INT8 renders ``[H, W, 3]`` of each held-out ``(wi, wo, image)`` (see ``BtfSource.heldout_images``)
    through the numpy reference the bundle's kind declares (:func:`neumat.material.kind_of`)."""
    render = kind_of(bundle).load_reference()
    renders = []
    for wi, wo, image in images:
        rows, cols = image.shape[:2]
        uv = image_uv(rows, cols)
        w_i = np.broadcast_to(np.asarray(wi, np.float32), (len(uv), 3))
        w_o = np.broadcast_to(np.asarray(wo, np.float32), (len(uv), 3))
        renders.append(render(bundle, uv, w_i, w_o).reshape(rows, cols, 3))
    return renders


def evaluate_heldout(bundle: Bundle, images: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """Held-out error of a bundle: overall ``l1``/``mse``/``psnr`` over all valid pixels of all
    images (``valid``; NaN target pixels are masked points, left out), ``pixels`` (all), and
    ``per_direction`` (one metrics dict each, with ``wi``/``wo``)."""
    if not images:
        raise EvalError("no held-out images to evaluate")
    renders = render_heldout(bundle, images)
    preds = np.concatenate([r.reshape(-1, 3) for r in renders])
    targets = np.concatenate([np.asarray(img, np.float32).reshape(-1, 3) for _, _, img in images])
    report: dict[str, Any] = error_metrics(preds, targets)
    report["pixels"] = int(len(preds))
    report["per_direction"] = [
        {"wi": np.asarray(wi).tolist(), "wo": np.asarray(wo).tolist(), **error_metrics(r, img)}
        for (wi, wo, img), r in zip(images, renders)
        if np.isfinite(img).all(axis=-1).any()
    ]
    return report
