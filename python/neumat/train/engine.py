"""The training engine every neural material trains on: the step loop, atomic checkpoints with
exact resume, the ``max_minutes`` budget, the validation / checkpoint / export cadence, the
non-finite guards and the progress bar — with the model a plug-in (:class:`TrainModel`).

As in nerfstudio, the pipeline (this module) is separate from the model (losses, parameter
groups, schedules, what a validation and an export are) and the field (the networks):

* :class:`neumat.train.loop.TriplePlaneModel` — a triple-plane material (``neumat train``);
* :class:`neumat.train.neumip.plugin.NeuMipModel` — NeuMIP texture fitting with frozen
  decoders (+ optional fine-tune) and universal-decoder pretraining (``neumat neumip``).

The run's config is any config dataclass with the :data:`RUN_FIELDS` (``steps``, ``seed``,
``max_minutes``, ``out``, ``export``, ...; see :class:`~.config.TrainConfig` for their meaning)
and a ``validate()`` method. ``out = ""`` runs without a run directory: no ``config.json``, no
checkpoints, nothing to resume from.

Reproducibility: a plug-in's step is a function of the step index, the run's total step
count, its own checkpointed state and the global generators, which the checkpoint carries
(:mod:`.checkpoint`), so a run killed at any point and resumed from its last checkpoint ends
bit-identical to an uninterrupted one. A ``max_minutes`` budget rescales the *total* step count
(:func:`.schedule.steps_in_budget`) after ``budget_probe_steps`` timed steps and again whenever
another 10 % of the budget has passed, so the plug-in's schedule (warm-up, QAT phases, decay)
fits inside the budget. Under torchrun the main process's decisions (budget, stop) are shared.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ..bundle import Bundle
from ..fileio import atomic_write_bytes
from .checkpoint import (
    checkpoint_path,
    load_checkpoint,
    load_latest_checkpoint,
    prune_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .config_io import config_to_dict, save_config
from .distributed import DistInfo, all_reduce_max_, all_reduce_mean_, any_process, barrier, init_distributed
from .guards import check_finite, check_run_outputs, write_live_bundle
from .plots import write_loss_curve
from .progress import TrainProgress

log = logging.getLogger(__name__)

RUN_FIELDS = ("steps", "seed", "max_minutes", "budget_probe_steps", "val_every", "ckpt_every", "keep_checkpoints",
              "log_every", "out", "export", "device", "progress")
"""Config fields the engine reads (top level of the run's config dataclass)."""
RESUME_MAY_CHANGE = ("steps", "max_minutes", "export", "progress", "out", "device", "val_every", "log_every")
"""Top-level config fields a resumed run may change without a warning (``steps`` extends the
run but also stretches the schedule)."""

StepCallback = Callable[["Engine", int], None]
"""Called on every process after each optimizer step with ``(engine, steps_done)``."""


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's global and torch's generators with the run's ``seed`` (plug-ins
    call it right before they initialize their parameters)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class TrainModel(Protocol):
    """What a model plug-in provides to the :class:`Engine`.

    A plug-in is built by a factory ``build(info, state)`` (``state``: the checkpoint dict to
    resume from, or None); it seeds the global generators itself right before it initializes
    its parameters (after loading its data, which may draw from them), and on resume restores
    everything it returned from :meth:`state_dict`.
    """

    model: torch.nn.Module
    """The trained module; every floating tensor of its state is checked for NaN/inf."""
    samples_per_step: int
    """Global training samples of one optimizer step (progress bar, samples/s)."""
    check_loss: bool
    """Whether the step's loss is checked for NaN/inf (False e.g. under AMP's gradient scaler)."""

    def describe(self) -> str:
        """What is trained, for the run's first log line."""

    def train_step(self, step: int, total_steps: int) -> torch.Tensor:
        """Run optimizer step ``step`` (0-based) of a run of ``total_steps``; returns this
        process's loss (0-d tensor)."""

    def log_fields(self) -> dict[str, Any]:
        """Extra values of the latest step for its ``"train"`` history record (JSON-able)."""

    def validate(self, step: int, total_steps: int, final: bool) -> tuple[dict[str, float], Bundle | None,
                                                                            list[dict[str, Any]], str] | None:
        """Main process only: ``(metrics, bundle or None, extra history records, progress text)``
        after ``step`` steps, or None for a plug-in run without validation; ``final``: the
        run's last validation."""

    def state_dict(self) -> dict[str, Any]:
        """The plug-in's part of a checkpoint (tensors, numbers, strings, lists, dicts)."""


@dataclass
class RunOutcome:
    """What :meth:`Engine.run` ends with (the plug-in's own result wraps it)."""

    steps_done: int
    """Optimizer steps completed."""
    metrics: dict[str, float]
    """Last validation's figures (main process)."""
    checkpoint: Path | None
    """Last checkpoint written (None on non-main processes and without a run directory)."""
    bundle: Bundle | None
    """Bundle of the last validation (main process), if the plug-in exports one."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """Loss and validation records."""
    stopped_by_budget: bool = False
    """True when ``max_minutes`` ended the run early (stopped, or rescaled below ``steps``)."""
    export_error: str = ""
    """Why the last ``export`` write failed ("" when it succeeded, or without ``export``)."""
    seconds: float = 0.0
    """Wall time of this invocation's steps, validations and checkpoints."""


class Engine:
    """One run of a model plug-in: trains, validates, checkpoints and exports on schedule.

    Args:
        cfg: the run's config (see the module docstring); validated here.
        build: ``build(info, state) -> TrainModel`` (see :class:`TrainModel`).
        resume: False, True (latest checkpoint in ``cfg.out``, fresh start if none) or a
            checkpoint path.
        callbacks: called after every optimizer step (e.g. tests that interrupt a run).
        planned_steps: steps of the whole run when they are not ``cfg.steps`` (a plug-in whose
            run has stages beyond them, e.g. a NeuMIP fit's fine-tune).
    """

    def __init__(self, cfg: Any, build: Callable[[DistInfo, dict[str, Any] | None], TrainModel],
                 resume: bool | str | Path = False, callbacks: Sequence[StepCallback] = (),
                 planned_steps: int | None = None) -> None:
        cfg.validate()
        self.cfg, self.callbacks = cfg, list(callbacks)
        self.planned_steps = cfg.steps if planned_steps is None else int(planned_steps)
        self.info: DistInfo = init_distributed(cfg.device)
        if self.info.is_main:
            check_run_outputs(cfg)
        self.out = Path(cfg.out) if cfg.out else None
        self.step = 0
        self.total_steps = self.planned_steps
        """Steps of this run: the planned ones (``cfg.steps``), or fewer once a ``max_minutes``
        budget has rescaled it."""
        self.history: list[dict[str, Any]] = []
        found = self._resume_state(resume)
        self.plugin = build(self.info, found[1] if found else None)
        if found is not None:
            self._load(*found)

    @property
    def model(self) -> torch.nn.Module:
        """The plug-in's trained module."""
        return self.plugin.model

    # -- state -------------------------------------------------------------------------------
    def _resume_state(self, resume: bool | str | Path) -> tuple[Path, dict[str, Any]] | None:
        """``(path, state)`` to resume from: for True the newest intact checkpoint in ``cfg.out``."""
        if resume is False:
            return None
        if resume is True:
            if self.out is None:
                log.info("no run directory (out): starting a fresh run")
                return None
            found = load_latest_checkpoint(self.out, map_location=self.info.device)
            if found is None:
                log.info("no checkpoint in %s: starting a fresh run", self.out)
            return found
        return Path(resume), load_checkpoint(resume, map_location=self.info.device)

    def _load(self, path: Path, state: dict[str, Any]) -> None:
        """Restore the engine's part of ``state`` (the plug-in restored its own when built)."""
        now = config_to_dict(self.cfg)
        changed = {k for k, v in now.items() if state["config"].get(k) != v} - set(RESUME_MAY_CHANGE)
        if changed:
            log.warning("resuming %s with changed config %s: the run will not match an uninterrupted one",
                        path, sorted(changed))
        self.step = int(state["step"])
        self.total_steps = int(state.get("total_steps", self.planned_steps))
        if self.cfg.steps != state["config"].get("steps"):  # an explicit --steps extends or shortens the run
            self.total_steps = self.planned_steps
        self.history = list(state["history"])
        set_rng_state(state["rng"])
        log.info("resumed from %s at step %d", path, self.step)

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint holds (see :mod:`.checkpoint`)."""
        return {"step": self.step, "config": config_to_dict(self.cfg), **self.plugin.state_dict(),
                "rng": rng_state(), "history": self.history, "total_steps": self.total_steps}

    def save_checkpoint(self) -> Path | None:
        """Write ``ckpt_<step>.pt`` and ``history.json`` (main process, with a run directory);
        returns the path."""
        path = None
        if self.info.is_main and self.out is not None:
            path = save_checkpoint(checkpoint_path(self.out, self.step), self.state_dict())
            prune_checkpoints(self.out, self.cfg.keep_checkpoints)
            atomic_write_bytes(self.out / "history.json", json.dumps(self.history).encode())
        barrier(self.info)
        return path

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> RunOutcome:
        """Train to :attr:`total_steps` (rescaled to a time budget, if any); validate, checkpoint
        and export on schedule (``val_every`` / ``ckpt_every`` 0: only at the last step)."""
        cfg, info = self.cfg, self.info
        if info.is_main and self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.out / "config.json")
        t0, start_step, fitted = time.monotonic(), self.step, False
        budget_s = cfg.max_minutes * 60
        progress = TrainProgress(self.total_steps, self.step, cfg.progress and info.is_main)
        metrics, bundle, ckpt, stopped, export_error = self._last_metrics(), None, None, False, ""
        log.info("training %s: %d steps from %d, %d process(es) on %s", self.plugin.describe(), self.total_steps,
                 self.step, info.world_size, info.device)
        try:
            while self.step < self.total_steps:
                loss = self.plugin.train_step(self.step, self.total_steps)
                self.step += 1
                if self.step == start_step + 1:  # the first step pays one-off set-up costs
                    window_t, window_step, next_check = time.monotonic(), self.step, 0.1 * budget_s
                elif budget_s > 0 and ((not fitted and self.step - window_step >= cfg.budget_probe_steps)
                                       or any_process(time.monotonic() - t0 > next_check, info)):
                    now = time.monotonic()
                    self._fit_budget(now - t0, (now - window_t) / (self.step - window_step), progress)
                    window_t, window_step, fitted = now, self.step, True
                    next_check = now - t0 + 0.1 * budget_s
                progress.advance(self.plugin.samples_per_step)
                for cb in self.callbacks:
                    cb(self, self.step)
                over = budget_s > 0 and info.is_main and time.monotonic() - t0 > budget_s
                stopped = any_process(over, info) if budget_s > 0 else False
                last = stopped or self.step == self.total_steps
                validating, saving = _due(self.step, cfg.val_every, last), _due(self.step, cfg.ckpt_every, last)
                if validating or saving or self.step % cfg.log_every == 0:
                    check_finite(self.model, loss if self.plugin.check_loss else None, self.step,
                                 self.out, info)
                if self.step % cfg.log_every == 0:
                    value = float(all_reduce_mean_(loss, info).item())
                    rate = progress.update_loss(value)
                    self.history.append({"kind": "train", "step": self.step, "loss": value, "samples_per_s": rate,
                                         **self.plugin.log_fields()})
                if validating:
                    metrics, bundle = self._validate(progress, final=last)
                if saving:
                    ckpt = self.save_checkpoint()
                if validating and cfg.export and info.is_main and bundle is not None:
                    export_error = write_live_bundle(bundle, cfg.export)  # after the checkpoint: never lose one
                if stopped:
                    log.info("time budget of %.1f min reached at step %d", cfg.max_minutes, self.step)
                    break
        finally:
            progress.close()
        if info.is_main and self.out is not None:
            write_loss_curve(self.history, self.out / "loss.png")
        stopped = stopped or self.total_steps < self.planned_steps  # rescaled to the budget
        return RunOutcome(self.step, metrics, ckpt, bundle, self.history, stopped, export_error,
                          time.monotonic() - t0)

    def _fit_budget(self, elapsed_s: float, seconds_per_step: float, progress: TrainProgress) -> None:
        """Shrink :attr:`total_steps` to what fits the rest of the ``max_minutes`` budget at the
        rate of the latest steps (``elapsed_s`` since the start). Called after
        ``budget_probe_steps`` steps and again whenever another 10 % of the budget has passed, so
        a machine that slows down mid-run still ends with QAT and the decay. The main
        process's figure is shared, so every process trains the same total."""
        from .schedule import steps_in_budget

        cfg, info = self.cfg, self.info
        fit = steps_in_budget(seconds_per_step, cfg.max_minutes * 60 - elapsed_s, self.total_steps - self.step)
        total = torch.tensor(float(self.step + fit if info.is_main else 0), device=info.device)
        total = int(all_reduce_max_(total, info).item())
        if total < self.total_steps:
            log.info("time budget %.1f min: %.3f s/step now, so the run is rescaled to %d steps (from %d); "
                     "QAT and the learning-rate decay fit inside it", cfg.max_minutes, seconds_per_step, total,
                     self.total_steps)
            self.total_steps = total
            progress.set_total(total)

    def _validate(self, progress: TrainProgress, final: bool = False) -> tuple[dict[str, float], Bundle | None]:
        """The plug-in's validation (main process), recorded in the history as ``"val"`` plus its
        extra records; every process waits for it."""
        metrics, bundle = {}, None
        done = self.plugin.validate(self.step, self.total_steps, final) if self.info.is_main else None
        if done is not None:
            metrics, bundle, records, text = done
            self.history.append({"kind": "val", "step": self.step, **metrics})
            self.history.extend(records)
            progress.update_validation(text)
        barrier(self.info)
        return metrics, bundle

    def _last_metrics(self) -> dict[str, float]:
        vals = [h for h in self.history if h.get("kind") == "val"]
        return {k: v for k, v in vals[-1].items() if k not in ("kind", "step")} if vals else {}


def _due(step: int, every: int, last: bool) -> bool:
    """Whether a validation / checkpoint every ``every`` steps (0: only the last) is due."""
    return last or (every > 0 and step % every == 0)
