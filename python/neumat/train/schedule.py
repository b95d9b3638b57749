"""Learning-rate schedule and QAT phases as pure functions of the optimizer step.

Being functions of the step and the run's total step count (not stateful schedulers) is what
makes a resumed run continue exactly where the killed one stopped: nothing but the step and
the total need restoring. A wall-time budget (``max_minutes``) rescales the *total*
(:func:`steps_in_budget`), so warm-up, the QAT phases and the learning-rate decay all fit in
the budget and every exported bundle has gone through QAT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..models.qat import QatMode
from .config import OptimConfig, QatConfig


def lr_factor(step: int, cfg: OptimConfig, total_steps: int) -> float:
    """Multiplier of the peak learning rates at optimizer step ``step`` (0-based) of a run of
    ``total_steps``.

    Linear warm-up over ``warmup_steps`` steps, then cosine annealing
    from 1 down to ``min_lr_ratio``: over the rest of the run when ``restart_period`` is 0 (one
    cycle that ends with the run, whatever its length), else with warm restarts (Loshchilov &
    Hutter 2017, SGDR): cycle ``i`` lasts ``T_0 * T_mult^i`` steps.
    """
    warmup = cfg.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    t = step - warmup
    period = cfg.restart_period or max(total_steps - warmup, 1)
    while t >= period:
        t -= period
        period *= cfg.restart_mult
    lo = cfg.min_lr_ratio
    return lo + (1.0 - lo) * 0.5 * (1.0 + math.cos(math.pi * t / period))


def steps_in_budget(seconds_per_step: float, budget_s: float, planned_steps: int, reserve: float = 0.1) -> int:
    """How many more steps fit in ``budget_s`` seconds at the measured ``seconds_per_step``.

    ``reserve`` of the budget is kept for the final validation and export; the result is at
    least 1 (a run always finishes the step it is in) and at most ``planned_steps``.
    """
    fit = int((1.0 - reserve) * budget_s / max(seconds_per_step, 1e-9))
    return max(1, min(planned_steps, fit))


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
