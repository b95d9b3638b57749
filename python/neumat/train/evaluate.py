"""The held-out figures of a trained material: INT8 bundle and FP32 field on the same images.

The INT8 figures come from :func:`neumat.metrics.evaluate_heldout` (numpy reference, exactly what
renderers compute from the ``.nmat``); the FP32 ones from the torch field with a float decoder
on the same pixels. Both in BTF value units (see :mod:`neumat.metrics`). :func:`heldout_report` is
what the trainer stores in the bundle's provenance (``metrics``) at the end of a run, and
``neumat eval`` computes the same figures with the same functions from the rebuilt source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import Bundle
from ..material import DirectionCoding, ReliefSlope
from ..material.triple_plane import bundle_output_encoding, bundle_relief
from ..metrics import error_metrics, evaluate_heldout, headline_metrics, image_uv
from ..models.triple_plane import TriplePlaneField
from ..output_encoding import OutputEncoding
from .checkpoint import load_checkpoint
from .export import fp32_predict, model_from_state, state_coding

HeldoutImages = list[tuple[np.ndarray, np.ndarray, np.ndarray]]
EVALUATED_BY = "neumat.metrics.evaluate_heldout(source.heldout_images())"
"""Tag of the held-out figures in provenance ``metrics``: what computed them, on which data."""


def heldout_report(bundle: Bundle, model: TriplePlaneField, images: HeldoutImages, step: int) -> dict[str, Any]:
    """Held-out figures of a run's INT8 ``bundle`` and FP32 ``model`` (decoded with the bundle's
    output encoding and angle parameterization) on ``images``.

    Returns ``{"evaluated_by", "step", "directions", "pixels", "int8": {...}, "fp32": {...}}``
    with :data:`neumat.metrics.HEADLINE_KEYS` in ``int8``/``fp32`` — the figures ``neumat eval``
    (``--ckpt`` for FP32) prints for the same bundle and source.
    """
    int8 = evaluate_heldout(bundle, images)
    coding = DirectionCoding(bundle.angle_param, bundle_relief(bundle))
    fp32 = fp32_heldout(model, bundle_output_encoding(bundle), coding, images)
    return {"evaluated_by": EVALUATED_BY, "step": int(step), "directions": len(images), "pixels": int8["pixels"],
            "int8": headline_metrics(int8), "fp32": fp32}


def fp32_heldout(model: TriplePlaneField, output: OutputEncoding, coding: DirectionCoding,
                 images: HeldoutImages) -> dict[str, float]:
    """:func:`~neumat.metrics.headline_metrics` of the FP32 field (trained with output encoding
    ``output`` and H/D parameterization and relief ``coding``) over the valid held-out pixels."""
    preds, targets = [], []
    for wi, wo, image in images:
        rows, cols = image.shape[:2]
        uv = image_uv(rows, cols)
        h, d = coding.coords(uv, np.broadcast_to(np.asarray(wi, np.float32), (len(uv), 3)),
                             np.broadcast_to(np.asarray(wo, np.float32), (len(uv), 3)))
        preds.append(output.decode(fp32_predict(model, uv, h, d)))
        targets.append(np.asarray(image, np.float32).reshape(-1, 3))
    return headline_metrics(error_metrics(np.concatenate(preds), np.concatenate(targets)))


def checkpoint_fp32(ckpt: str | Path, images: HeldoutImages, relief: ReliefSlope | None = None) -> dict[str, Any]:
    """FP32 held-out figures of a checkpoint: :func:`fp32_heldout` plus ``step``. ``relief``:
    the material's relief (its bundle's :func:`~neumat.material.triple_plane.bundle_relief`; ``None``: flat),
    read when the run measured directions in the relief frame."""
    state = load_checkpoint(ckpt)
    output, angle_param = state_coding(state)
    fp32 = fp32_heldout(model_from_state(state), output, DirectionCoding(angle_param, relief), images)
    return {**fp32, "step": int(state["step"])}
