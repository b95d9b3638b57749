"""Learning-rate schedule and QAT phases as pure functions of the optimizer step.

Being functions of the step (not stateful schedulers) is what makes a resumed run continue
exactly where the killed one stopped: nothing but the step needs restoring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..models.qat import QatMode
from .config import OptimConfig, QatConfig


def lr_factor(step: int, cfg: OptimConfig) -> float:
    """Multiplier of the peak learning rates at optimizer step ``step`` (0-based).

    Linear warm-up over ``warmup_steps``, then cosine annealing with warm restarts (Loshchilov
    & Hutter 2017, SGDR): cycle ``i`` lasts ``T_0 * T_mult^i`` steps and within it the factor
    goes ``min + (1 - min) * (1 + cos(pi * t / T_i)) / 2`` from 1 down to ``min_lr_ratio``.
    """
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    t, period = step - cfg.warmup_steps, cfg.restart_period
    while t >= period:
        t -= period
        period *= cfg.restart_mult
    lo = cfg.min_lr_ratio
    return lo + (1.0 - lo) * 0.5 * (1.0 + math.cos(math.pi * t / period))


@dataclass(frozen=True)
class QatPhase:
    """What the decoder does during one optimizer step."""

    name: str
    """"observe", "quantize" or "finetune"."""
    mode: QatMode
    """Forward pass of the decoder."""
    observe: bool
    """Whether this step's activation maxima update the observers' EMA."""
    lr_scale: float
    """Extra learning-rate multiplier."""


def qat_phase(step: int, total_steps: int, cfg: QatConfig) -> QatPhase:
    """The QAT phase of optimizer step ``step`` of ``total_steps``.

    ``[0, quantize_start)``: observe (FP32 forward, ranges recorded); ``[quantize_start,
    finetune_start)``: fake-quantized forward, ranges still tracked; ``[finetune_start, 1]``:
    fake-quantized, ranges frozen, learning rate times ``finetune_lr_scale``. With QAT
    disabled every step observes (the export is then post-training quantization).
    """
    frac = step / total_steps
    if not cfg.enabled or frac < cfg.quantize_start:
        return QatPhase("observe", QatMode.OBSERVE, True, 1.0)
    if frac < cfg.finetune_start:
        return QatPhase("quantize", QatMode.QUANTIZE, True, 1.0)
    return QatPhase("finetune", QatMode.QUANTIZE, False, cfg.finetune_lr_scale)
