"""The training loop of a triple-plane material (seed 003, sections 4.1.3-4.1.4).

L1 loss on scaled linear RGB (plus the H/D-plane smoothness prior ``optim.angular_smoothness``,
see :meth:`TriplePlaneField.angular_roughness`), AdamW with two parameter groups (planes,
decoder), linear warm-up + cosine with warm restarts (:mod:`.schedule`), gradient
accumulation, QAT phases observe -> quantize -> frozen-range fine-tune, optional AMP on CUDA,
DDP under torchrun.

Reproducibility: with the same config, seed and process count a run is bit-identical on CPU,
and a run killed at any point and resumed from its last checkpoint ends bit-identical to an
uninterrupted one (model, optimizer, observer ranges and RNG states are checkpointed; the
schedule, the QAT phase and the batches are functions of the step). With N processes the
global batch is the same as with one (:mod:`.sampling`), so results agree up to float
summation order.

Files in ``cfg.out``: ``config.json``, ``ckpt_<step>.pt`` (atomic), ``history.json`` and
``loss.png`` (if matplotlib is installed); ``cfg.export`` gets the ``.nmat`` at every validation,
after the checkpoint of that step. Both paths are checked before the first step, a failed
export never stops the run, and a run whose loss or weights turn non-finite stops with
:class:`~.guards.TrainingDiverged` before writing anything non-finite (:mod:`.guards`).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from ..angles import uses_relief_frame
from ..bundle import Bundle
from ..fileio import atomic_write_bytes
from ..data import BtfSource, PointBtf
from ..material import SOURCE_KEY, DirectionCoding
from ..models.triple_plane import TriplePlaneField
from . import sources
from .checkpoint import (
    checkpoint_path,
    load_checkpoint,
    load_latest_checkpoint,
    prune_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .config import TrainConfig, config_to_dict, save_config, validate_config
from .distributed import DistInfo, all_reduce_max_, all_reduce_mean_, any_process, barrier, init_distributed
from .evaluate import heldout_report
from .export import heldout_record, material_surface, state_coding, surface_relief
from .guards import check_finite, check_run_outputs, write_live_bundle
from .observers import StepObserver
from .plots import write_loss_curve
from .progress import TrainProgress
from .result import TrainResult
from .sampling import GlobalBatchSampler, calibrate_output, validation_batch
from .schedule import lr_factor, qat_phase, steps_in_budget
from .validate import ValidationSet, validate

log = logging.getLogger(__name__)

StepCallback = Callable[["Trainer", int], None]
"""Called on every process after each optimizer step with ``(trainer, steps_done)``."""
AUTO_U_RES_MAX = 512
"""Largest automatic U-plane side: half the side of 1024² maps (README "Capacity")."""
AUTO_U_RES_FALLBACK = 400
"""Automatic U-plane side for sources without maps (measured BTFs; the seed's 400)."""
RESUME_MAY_CHANGE = ("steps", "max_minutes", "export", "progress", "out", "device", "val_every", "log_every")
"""Top-level config fields a resumed run may change without a warning (``steps`` extends the
run but also stretches the schedule)."""


def resolve_u_res(u_res: int, source: BtfSource) -> int:
    """``u_res``, or for 0 (automatic) the side of the source's maps capped at
    :data:`AUTO_U_RES_MAX` texels (:data:`AUTO_U_RES_FALLBACK` when the source has no maps)."""
    if u_res:
        return u_res
    height = getattr(getattr(source, "material", None), "height", None)
    return min(int(height.shape[0]), AUTO_U_RES_MAX) if height is not None else AUTO_U_RES_FALLBACK


class Trainer:
    """One run: builds the field, optimizer and sampler, trains, validates, checkpoints.

    Args:
        cfg: the run's configuration.
        source: the material's BTF; None builds it from ``cfg.source`` (:mod:`.sources`).
        resume: False, True (latest checkpoint in ``cfg.out``, fresh start if none) or a
            checkpoint path.
        callbacks: called after every optimizer step (e.g. tests that interrupt a run).
    """

    def __init__(self, cfg: TrainConfig, source: BtfSource | None = None, resume: bool | str | Path = False,
                 callbacks: Sequence[StepCallback] = ()) -> None:
        validate_config(cfg)
        self.cfg, self.callbacks = cfg, list(callbacks)
        self.info: DistInfo = init_distributed(cfg.device)
        if self.info.is_main:
            check_run_outputs(cfg)
        if self.info.device.type == "cpu":
            # Multi-threaded CPU scatter-adds (the plane-gather backward) otherwise sum in a
            # thread-dependent order: runs would differ in the last bits and then diverge.
            torch.use_deterministic_algorithms(True)
        if source is None:
            self.spec = sources.source_spec(cfg.source)
            source = sources.make_source(self.spec)
        else:
            self.spec = sources.source_spec(cfg.source) if cfg.source.kind else sources.custom_spec(source)
        self.spec = sources.recorded_spec(self.spec, source)
        if isinstance(source, PointBtf):  # no pool larger than what the run will draw
            source.limit_pool(cfg.steps * cfg.data.batch_size)
        self.source = source
        self.out = Path(cfg.out)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        torch.manual_seed(cfg.seed)
        m = cfg.model
        self.model = TriplePlaneField(resolve_u_res(m.u_res, source), m.hd_res, m.channels, m.hidden,
                                      m.plane_init_std).to(self.info.device)
        o = cfg.optim
        self.base_lrs = (o.lr_planes, o.lr_mlp)
        self.optimizer = torch.optim.AdamW(
            [{"params": self.model.plane_parameters(), "lr": o.lr_planes, "weight_decay": o.weight_decay_planes},
             {"params": self.model.mlp_parameters(), "lr": o.lr_mlp, "weight_decay": o.weight_decay_mlp}],
            betas=o.betas, eps=o.eps,
        )
        self.use_amp = cfg.amp and self.info.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.step = 0
        self.total_steps = cfg.steps
        """Steps of this run: ``cfg.steps``, or fewer once a ``max_minutes`` budget has rescaled it."""
        self.history: list[dict[str, Any]] = []
        self.angle_param = cfg.model.angle_param
        """H/D plane parameterization of the run (a resumed run keeps its checkpoint's)."""
        self.last_smoothness = torch.zeros(())
        ckpt = self._resume_state(resume)
        if ckpt is not None:
            self._load(*ckpt)
        else:
            d = cfg.data
            self.output = calibrate_output(source, cfg.seed, d.output_encoding, d.calibration_samples,
                                           d.value_quantile, d.value_scale)
        self.observer = StepObserver(self.model.mlp, cfg.qat.observer_momentum)
        self.surface = material_surface(source)
        relief = surface_relief(self.surface) if uses_relief_frame(self.angle_param) else None
        coding = DirectionCoding(self.angle_param, relief)
        self.sampler = GlobalBatchSampler(source, cfg.seed, cfg.data.batch_size, cfg.data.chunks,
                                          cfg.data.accum_steps, self.info.rank, self.info.world_size, self.output,
                                          coding)
        self.val = ValidationSet(validation_batch(source, cfg.seed, cfg.data.val_samples), self.output, coding)
        # Observer buffers are identical on every process (StepObserver syncs them), so DDP's
        # default buffer broadcast is a no-op in value and costs a few bytes per step.
        self.ddp = (DistributedDataParallel(self.model, device_ids=[self.info.device] if self.info.device.type == "cuda"
                                            else None)
                    if self.info.distributed else None)

    # -- state -------------------------------------------------------------------------------
    def _resume_state(self, resume: bool | str | Path) -> tuple[Path, dict[str, Any]] | None:
        """``(path, state)`` to resume from: for True the newest intact checkpoint in ``cfg.out``."""
        if resume is False:
            return None
        if resume is True:
            found = load_latest_checkpoint(self.out, map_location=self.info.device)
            if found is None:
                log.info("no checkpoint in %s: starting a fresh run", self.out)
            return found
        return Path(resume), load_checkpoint(resume, map_location=self.info.device)

    def _load(self, path: Path, state: dict[str, Any]) -> None:
        now = config_to_dict(self.cfg)
        changed = {k for k, v in now.items() if state["config"].get(k) != v} - set(RESUME_MAY_CHANGE)
        if changed:
            log.warning("resuming %s with changed config %s: the run will not match an uninterrupted one",
                        path, sorted(changed))
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.output, self.angle_param = state_coding(state)
        self.total_steps = int(state.get("total_steps", self.cfg.steps))
        if self.cfg.steps != state["config"].get("steps"):  # an explicit --steps extends or shortens the run
            self.total_steps = self.cfg.steps
        self.history = list(state["history"])
        set_rng_state(state["rng"])
        log.info("resumed from %s at step %d", path, self.step)

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint holds (see :mod:`.checkpoint`)."""
        return {
            "step": self.step, "config": config_to_dict(self.cfg), "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict() if self.use_amp else {},
            **self.output.provenance(), "angle_param": self.angle_param,
            "source": self.spec, "rng": rng_state(), "history": self.history,
            "total_steps": self.total_steps,
        }

    def save_checkpoint(self) -> Path | None:
        """Write ``ckpt_<step>.pt`` and ``history.json`` (main process); returns the path."""
        path = None
        if self.info.is_main:
            path = save_checkpoint(checkpoint_path(self.out, self.step), self.state_dict())
            prune_checkpoints(self.out, self.cfg.keep_checkpoints)
            atomic_write_bytes(self.out / "history.json", json.dumps(self.history).encode())
        barrier(self.info)
        return path

    # -- one optimizer step ------------------------------------------------------------------
    def train_step(self) -> torch.Tensor:
        """Run optimizer step ``self.step``; returns this process's L1 data loss (0-d, encoded units).

        The smoothness penalty's value of the step is left in :attr:`last_smoothness`.
        """
        cfg = self.cfg
        phase = qat_phase(self.step, self.total_steps, cfg.qat)
        self.model.set_qat_mode(phase.mode)
        factor = lr_factor(self.step, cfg.optim, self.total_steps) * phase.lr_scale
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor
        net = self.ddp or self.model
        micro = self.sampler.micro_batches(self.step)
        norm = float(self.sampler.local_samples * 3)
        autocast = self.use_amp and phase.name == "observe"
        total = torch.zeros((), device=self.info.device)
        self.optimizer.zero_grad(set_to_none=True)
        self.observer.active = True
        for i, mb in enumerate(micro):
            uv, h, d, target = (torch.from_numpy(a).to(self.info.device, non_blocking=True)
                                for a in (mb.uv, mb.h, mb.d, mb.target))
            sync = nullcontext() if self.ddp is None or i == len(micro) - 1 else self.ddp.no_sync()
            with sync:
                with torch.autocast("cuda", dtype=torch.float16, enabled=autocast):
                    pred = net(uv, h, d)
                loss = (pred.float() - target).abs().sum() / norm
                self.scaler.scale(loss).backward()
            total += loss.detach()
        self.observer.active = False
        self.last_smoothness = self._add_smoothness_gradient()
        if cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.observer.commit(self.info, phase.observe)
        self.step += 1
        return total

    def _add_smoothness_gradient(self) -> torch.Tensor:
        """Add the gradient of the H/D smoothness penalty to the planes' gradients; returns it.

        The penalty does not depend on the data, so every process adds the same gradient after
        DDP's all-reduce; ``autograd.grad`` keeps it out of DDP's gradient hooks.
        """
        weight = self.cfg.optim.angular_smoothness
        if weight <= 0:
            return torch.zeros((), device=self.info.device)
        planes = [self.model.planes["H"], self.model.planes["D"]]
        penalty = self.model.angular_roughness() * weight
        grads = torch.autograd.grad(self.scaler.scale(penalty), planes)
        for plane, grad in zip(planes, grads):
            plane.grad.add_(grad)
        return penalty.detach()

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Train to :attr:`total_steps` (rescaled to a time budget, if any); validate, checkpoint and
        export on schedule."""
        cfg, info = self.cfg, self.info
        if info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.out / "config.json")
        t0, start_step, fitted = time.monotonic(), self.step, False
        budget_s = cfg.max_minutes * 60
        progress = TrainProgress(self.total_steps, self.step, cfg.progress and info.is_main)
        metrics, bundle, ckpt, stopped, export_error = self._last_metrics(), None, None, False, ""
        log.info("training %s: %d steps from %d, batch %d, %d process(es) on %s, output %s %s",
                 self.spec.get("name", self.spec.get("path")), self.total_steps, self.step, cfg.data.batch_size,
                 info.world_size, info.device, self.output.id, ", ".join(f"{s:.4g}" for s in self.output.scale))
        try:
            while self.step < self.total_steps:
                loss = self.train_step()
                if self.step == start_step + 1:  # the first step pays one-off set-up costs
                    window_t, window_step, next_check = time.monotonic(), self.step, 0.1 * budget_s
                elif budget_s > 0 and ((not fitted and self.step - window_step >= cfg.budget_probe_steps)
                                       or any_process(time.monotonic() - t0 > next_check, info)):
                    now = time.monotonic()
                    self._fit_budget(now - t0, (now - window_t) / (self.step - window_step), progress)
                    window_t, window_step, fitted = now, self.step, True
                    next_check = now - t0 + 0.1 * budget_s
                progress.advance(cfg.data.batch_size)
                for cb in self.callbacks:
                    cb(self, self.step)
                over = budget_s > 0 and info.is_main and time.monotonic() - t0 > budget_s
                stopped = any_process(over, info) if budget_s > 0 else False
                last = stopped or self.step == self.total_steps
                validating, saving = self.step % cfg.val_every == 0 or last, self.step % cfg.ckpt_every == 0 or last
                if validating or saving or self.step % cfg.log_every == 0:
                    check_finite(self.model, None if self.use_amp else loss, self.step, self.out, info)
                if self.step % cfg.log_every == 0:
                    value = float(all_reduce_mean_(loss, info).item())
                    rate = progress.update_loss(value)
                    self.history.append({"kind": "train", "step": self.step, "loss": value, "samples_per_s": rate,
                                         "smoothness": float(self.last_smoothness),
                                         "lr_mlp": self.optimizer.param_groups[1]["lr"]})
                if validating:
                    metrics, bundle = self._validate(progress, final=last)
                if saving:
                    ckpt = self.save_checkpoint()
                if validating and cfg.export and info.is_main:  # after the checkpoint: never lose one
                    export_error = write_live_bundle(bundle, cfg.export)
                if stopped:
                    log.info("time budget of %.1f min reached at step %d", cfg.max_minutes, self.step)
                    break
        finally:
            progress.close()
            self.observer.active = False
        if info.is_main:
            write_loss_curve(self.history, self.out / "loss.png")
        stopped = stopped or self.total_steps < cfg.steps  # rescaled to the budget
        return TrainResult(self.step, metrics, ckpt, bundle, self.output, self.history, stopped,
                           heldout_record(self.history, self.step), export_error)

    def _fit_budget(self, elapsed_s: float, seconds_per_step: float, progress: TrainProgress) -> None:
        """Shrink :attr:`total_steps` to what fits the rest of the ``max_minutes`` budget at the
        rate of the latest steps (``elapsed_s`` since the start). Called after
        ``budget_probe_steps`` steps and again whenever another 10 % of the budget has passed, so
        a machine that slows down mid-run still ends with QAT and the decay. The main
        process's figure is shared, so every process trains the same total."""
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
        """Periodic validation (random held-out samples) and its bundle (main process); ``final``:
        also the held-out figures of :func:`.evaluate.heldout_report`, stored as its ``metrics``."""
        metrics, bundle = {}, None
        if self.info.is_main:
            prov = {SOURCE_KEY: self.spec, "step": self.step, "total_steps": self.total_steps,
                    "config": config_to_dict(self.cfg)}
            metrics, bundle = validate(self.model, self.val, prov, self.surface)
            bundle.provenance["validation"] = dict(metrics)
            self.history.append({"kind": "val", "step": self.step, **metrics})
            if final:
                bundle.provenance["metrics"] = heldout_report(bundle, self.model,
                                                              self.source.heldout_images(), self.step)
                self.history.append({"kind": "heldout", **bundle.provenance["metrics"]})
            progress.update_validation(f"PSNR fp32 {metrics['fp32_psnr']:.2f} int8 {metrics['int8_psnr']:.2f} dB")
            log.info("step %d: validation on %d random held-out samples (a progress figure, not neumat eval's): "
                     "relative L1 fp32 %.2f%% int8 %.2f%% | PSNR fp32 %.2f int8 %.2f dB", self.step,
                     len(self.val.batch), 100 * metrics["fp32_rel_l1"], 100 * metrics["int8_rel_l1"],
                     metrics["fp32_psnr"], metrics["int8_psnr"])
        barrier(self.info)
        return metrics, bundle

    def _last_metrics(self) -> dict[str, float]:
        vals = [h for h in self.history if h.get("kind") == "val"]
        return {k: v for k, v in vals[-1].items() if k not in ("kind", "step")} if vals else {}


def train(cfg: TrainConfig, source: BtfSource | None = None, resume: bool | str | Path = False,
          callbacks: Sequence[StepCallback] = ()) -> TrainResult:
    """Train one material (see :class:`Trainer`); returns the :class:`TrainResult`."""
    return Trainer(cfg, source, resume, callbacks).run()
