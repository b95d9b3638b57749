"""What keeps a training run's work safe: its output paths are checked before any step, a
failing live export never stops the run or costs a checkpoint, and a run whose loss or weights
turn non-finite stops (:class:`TrainingDiverged`) before anything non-finite is written.

The engine (:mod:`.engine`) checkpoints before it exports, so an export that fails (a full
disk, a folder removed mid-run) leaves the run's checkpoints intact and training going on; the
failure is logged and reported in :attr:`.result.TrainResult.export_error`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from ..bundle import Bundle, BundleError, save_bundle
from ..fileio import check_output_dir, check_output_path
from .checkpoint import latest_checkpoint
from .distributed import DistInfo, any_process

log = logging.getLogger(__name__)

BUNDLE_SUFFIXES = (".nmat",)
"""The extension of an exported bundle (``export``)."""


class TrainingDiverged(RuntimeError):
    """The loss or the weights of a run became non-finite (NaN or infinity); the message names
    the last good checkpoint, which nothing was written after."""


def check_run_outputs(cfg: Any) -> None:
    """Check, before any work, that ``cfg.out`` (if set) can hold the run (a writable directory,
    or one that can be created) and that ``cfg.export`` (if set) can be written as a ``.nmat``.
    ``cfg``: a run config (:data:`.engine.RUN_FIELDS`).

    Raises:
        neumat.fileio.OutputPathError: the message names the option and the problem.
    """
    if cfg.out:
        check_output_dir(cfg.out, "run directory (out)")
    if cfg.export:
        check_output_path(cfg.export, BUNDLE_SUFFIXES, "export bundle (--export)")


def write_live_bundle(bundle: Bundle, path: str | Path) -> str:
    """Write ``bundle`` to ``path`` atomically; returns "" or, when the write fails, the error
    message (also logged: the run goes on, its checkpoints hold the model)."""
    try:
        save_bundle(bundle, path)
    except (OSError, BundleError) as e:
        message = f"cannot write the bundle {path}: {e}"
        log.error("%s; training goes on and its checkpoints hold the model (`neumat export RUN_DIR --out "
                  "X.nmat` writes it later)", message)
        return message
    return ""


def check_finite(model: torch.nn.Module, loss: torch.Tensor | None, step: int, out: str | Path | None,
                 info: DistInfo) -> None:
    """Raise :class:`TrainingDiverged` on every process when a floating tensor of ``model``'s
    state (weights, observer ranges) or ``loss`` (None: not checked, e.g. under AMP, whose
    gradient scaler skips steps with an overflowing loss) is NaN or infinite on any process.

    ``out``: the run directory (None or "": a run without checkpoints). One device
    synchronisation: the engine calls it at log, validation and checkpoint steps.
    """
    tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
    tensors += [loss] if loss is not None else []
    flags = torch.stack([torch.isfinite(t).all() for t in tensors])
    if not any_process(not bool(flags.all().item()), info):
        return
    last = latest_checkpoint(out) if out else None
    kept = (f"nothing was written after the last good checkpoint, {last}" if last is not None
            else "no checkpoint had been written yet")
    raise TrainingDiverged(
        f"training diverged at step {step}: the loss or the weights became non-finite (NaN or infinity); {kept}. "
        f"Lower the learning rates (optim.lr_planes, optim.lr_mlp) or set optim.grad_clip"
        f"{', then --resume continues from it' if last is not None else ''}")
