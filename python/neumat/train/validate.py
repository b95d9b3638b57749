"""Held-out validation: the FP32 field and the exported INT8 material, side by side.

The INT8 figure is computed on the exported :class:`~neumat.bundle.Bundle` by
:func:`neumat.material.triple_plane.render_int8` — numpy bilinear plane lookups and the numpy INT8 reference
MLP — i.e. exactly what a renderer computes from the ``.nmat`` file (and what ``neumat eval``
reports). The FP32 figure is the torch field with the decoder in float mode. Both are in BTF
value units (outputs decoded by the run's output encoding, :mod:`neumat.output_encoding`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..bundle import Bundle
from ..data import BtfBatch
from ..material import DirectionCoding
from ..material.triple_plane import render_int8
from ..metrics import error_metrics
from ..models.triple_plane import TriplePlaneField
from ..output_encoding import OutputEncoding
from .export import fp32_predict, to_bundle
from .sampling import to_plane_batch


@dataclass
class ValidationSet:
    """The fixed held-out samples of a run and their plane coordinates."""

    batch: BtfBatch
    """Raw samples (uv, wi, wo, BTF rgb)."""
    output: OutputEncoding
    """The run's output encoding."""
    coding: DirectionCoding
    """The run's H/D plane parameterization and relief."""

    def __post_init__(self) -> None:
        self.inputs = to_plane_batch(self.batch, self.output, self.coding)


def validate(model: TriplePlaneField, val: ValidationSet, provenance: dict[str, Any] | None = None,
             surface: dict[str, Any] | None = None) -> tuple[dict[str, float], Bundle]:
    """Validate ``model`` on ``val``; returns ``(metrics, bundle)``.

    ``metrics``: ``fp32_l1``, ``fp32_rel_l1``, ``fp32_psnr``, the same for ``int8_`` (BTF units,
    PSNR peak 1, see :mod:`neumat.metrics`) and ``int8_gap_db`` = FP32 minus INT8 PSNR.
    ``bundle``: the exported INT8 material the INT8 figures were computed on.
    """
    b, p = val.batch, val.inputs
    fp32 = val.output.decode(fp32_predict(model, p.uv, p.h, p.d))
    bundle = to_bundle(model, val.output, val.coding.angle_param, provenance, surface)
    int8 = render_int8(bundle, b.uv, b.wi, b.wo)
    f, q = error_metrics(fp32, b.rgb), error_metrics(int8, b.rgb)
    metrics = {"fp32_l1": f["l1"], "fp32_rel_l1": f["rel_l1"], "fp32_psnr": f["psnr"],
               "int8_l1": q["l1"], "int8_rel_l1": q["rel_l1"], "int8_psnr": q["psnr"],
               "int8_gap_db": f["psnr"] - q["psnr"]}
    return metrics, bundle
