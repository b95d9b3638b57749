"""Image metrics of the suite, over the pixels both renderers cover.

All images are float [H, W, 3] linear Rec.709 radiance (BTF units: radiance under unit
irradiance). In the order reported (see ARCHITECTURE.md, "Measuring fidelity"):

* ``rel_l1`` = Σ|pred − ref| / Σ|ref| over covered pixels and channels (scale-free);
* ``flip``: mean HDR-ꟻLIP error (NVIDIA's ``flip-evaluator``, ``"HDR"`` mode: both linear
  images go through the same automatically chosen exposure range and ACES tone mapper, error
  per pixel in [0, 1], 0 = identical) over the covered pixels; uncovered pixels of ``pred``
  are set to the reference first so they add no error to their neighbours (FLIP filters
  spatially). Default viewing: 67 pixels per degree;
* ``psnr``: ``10 log10(1 / MSE)`` dB with peak 1 in BTF units (:func:`neumat.metrics.psnr`; it
  flatters dark materials — read it after the two above);
* ``mean_ratio``: per channel, mean(pred) / mean(ref) over covered pixels (1 = same energy);
  ``mean_ratio_min`` / ``mean_ratio_max`` its extreme channels.
"""

from __future__ import annotations

import numpy as np

from ..metrics import error_metrics

FLIP_MODE = "HDR"
"""ꟻLIP dynamic-range mode used on the linear images."""


class MetricError(ValueError):
    """Images that cannot be compared (shape mismatch, nothing covered, negative values)."""


def image_metrics(pred: np.ndarray, ref: np.ndarray, covered: np.ndarray) -> dict[str, object]:
    """Every metric of the module docstring for one image pair.

    Args:
        pred, ref: [H, W, 3] linear radiance (neumat's render, the ground truth).
        covered: [H, W] bool, pixels both renderers see the material in.

    Returns:
        ``{"rel_l1", "flip", "psnr", "mean_ratio" [3], "mean_ratio_min", "mean_ratio_max",
        "coverage"}`` (floats; ``coverage`` = fraction of pixels compared) and, under
        ``"flip_map"``, the [H, W] float32 FLIP error map (0 outside ``covered``).

    Raises:
        MetricError: shapes differ, no pixel is covered, or values are negative / not finite.
    """
    pred, ref, covered = np.asarray(pred, np.float32), np.asarray(ref, np.float32), np.asarray(covered, bool)
    if pred.shape != ref.shape or pred.ndim != 3 or pred.shape[2] != 3 or covered.shape != pred.shape[:2]:
        raise MetricError(f"expected pred and ref [H, W, 3] and covered [H, W]; got {list(pred.shape)}, "
                          f"{list(ref.shape)}, {list(covered.shape)}")
    if not covered.any():
        raise MetricError("no pixel is covered by both renders; nothing to compare")
    for name, img in (("pred", pred), ("ref", ref)):
        if not np.all(np.isfinite(img[covered])) or img[covered].min() < 0.0:
            raise MetricError(f"{name} holds negative or non-finite radiance in covered pixels")
    base = error_metrics(pred[covered], ref[covered])
    flip_map = flip_error_map(np.where(covered[..., None], pred, ref), ref)
    flip_map = np.where(covered, flip_map, 0.0).astype(np.float32)
    ratio = mean_colour_ratio(pred[covered], ref[covered])
    return {"rel_l1": float(base["rel_l1"]), "flip": float(flip_map[covered].mean()),
            "psnr": float(base["psnr"]), "mean_ratio": ratio.tolist(),
            "mean_ratio_min": float(ratio.min()), "mean_ratio_max": float(ratio.max()),
            "coverage": float(covered.mean()), "flip_map": flip_map}


def flip_error_map(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """[H, W] float32 HDR-ꟻLIP error of ``pred`` against ``ref`` (both [H, W, 3] linear,
    non-negative); needs ``pip install flip-evaluator``."""
    try:
        import flip_evaluator
    except ImportError as e:
        raise MetricError("FLIP needs the flip-evaluator package: pip install flip-evaluator") from e
    error, _, _ = flip_evaluator.evaluate(np.ascontiguousarray(ref, np.float32),
                                          np.ascontiguousarray(pred, np.float32), FLIP_MODE,
                                          applyMagma=False, computeMeanError=False)
    return np.asarray(error, np.float32).reshape(ref.shape[:2])


def mean_colour_ratio(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """[3] float64 mean(pred) / mean(ref) per channel of [..., 3] arrays (inf where the
    reference channel's mean is 0 and pred's is not; 1 where both are 0)."""
    p = np.asarray(pred, np.float64).reshape(-1, 3).mean(axis=0)
    r = np.asarray(ref, np.float64).reshape(-1, 3).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r > 0, p / np.where(r > 0, r, 1.0), np.where(p > 0, np.inf, 1.0))
