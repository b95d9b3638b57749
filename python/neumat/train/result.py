"""What a training run produced (:class:`TrainResult`, returned by :func:`neumat.train.train`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..bundle import Bundle
from ..output_encoding import OutputEncoding


@dataclass
class TrainResult:
    """What a finished (or budget-stopped) run produced."""

    steps_done: int
    """Optimizer steps completed."""
    metrics: dict[str, float]
    """Last periodic validation on random held-out samples (a progress figure): fp32_l1, fp32_psnr,
    int8_l1, int8_psnr, int8_gap_db."""
    checkpoint: Path | None
    """Last checkpoint written (None on non-main processes)."""
    bundle: Bundle | None
    """INT8 bundle of the last validation (main process)."""
    output: OutputEncoding
    """The run's output encoding (decoder output -> BTF values)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """Loss and validation records."""
    stopped_by_budget: bool = False
    """True when ``max_minutes`` ended the run early."""
    heldout: dict[str, Any] = field(default_factory=dict)
    """The final held-out figures, as ``neumat eval`` computes them (:func:`.evaluate.heldout_report`;
    the bundle's provenance ``metrics``); empty on non-main processes."""
    export_error: str = ""
    """Why the last ``export`` write failed ("" when it succeeded, or without ``export``)."""
