"""FP32 held-out figures of a trained field, for comparison with its INT8 bundle.

The INT8 figures come from :func:`neumat.eval.evaluate_heldout` (numpy reference, exactly what
renderers compute from the ``.nmat``); these come from the torch field with a float decoder on
the same pixels. Both in BTF value units (see :mod:`neumat.eval`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..angles import plane_coords
from ..eval import error_metrics, image_uv
from ..models.triple_plane import TriplePlaneField
from .checkpoint import load_checkpoint
from .export import fp32_predict, model_from_state

HeldoutImages = list[tuple[np.ndarray, np.ndarray, np.ndarray]]


def fp32_heldout(model: TriplePlaneField, value_scale: float, images: HeldoutImages) -> dict[str, float]:
    """``{"l1", "rel_l1", "mse", "psnr", "valid"}`` of the FP32 field over the valid held-out pixels."""
    preds, targets = [], []
    for wi, wo, image in images:
        rows, cols = image.shape[:2]
        uv = image_uv(rows, cols)
        h, d = plane_coords(np.broadcast_to(np.asarray(wi, np.float32), (len(uv), 3)),
                            np.broadcast_to(np.asarray(wo, np.float32), (len(uv), 3)))
        preds.append(fp32_predict(model, uv, h.astype(np.float32), d.astype(np.float32)) * np.float32(value_scale))
        targets.append(np.asarray(image, np.float32).reshape(-1, 3))
    return error_metrics(np.concatenate(preds), np.concatenate(targets))


def checkpoint_fp32(ckpt: str | Path, images: HeldoutImages) -> dict[str, Any]:
    """FP32 held-out figures of a checkpoint: ``{"l1", "rel_l1", "mse", "psnr", "valid", "step"}``."""
    state = load_checkpoint(ckpt)
    return {**fp32_heldout(model_from_state(state), float(state["value_scale"]), images), "step": int(state["step"])}
