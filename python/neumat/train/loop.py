"""The triple-plane material's training (seed 003, sections 4.1.3-4.1.4): its model plug-in
(:class:`TriplePlaneModel`) of the shared :class:`~.engine.Engine`, and :class:`Trainer` /
:func:`train`, the engine with it.

Feature LoD (``cfg.lod_pyramid`` > 0, point sources): the run's last ``round(lod_pyramid *
total)`` steps (:func:`pyramid_steps`) fit the learned coarse U levels
(:meth:`TriplePlaneField.start_pyramid`) on prefiltered batches (split ``"prefiltered"``) with
everything else frozen and the decoder fake-quantized with its frozen ranges (the INT8 path's
form); the steps before are a point-only run of ``total - pyramid steps`` (its warm-up, QAT
phases and decay are functions of that count). Its own AdamW (``lod_lr``, cosine to
``min_lr_ratio`` over the phase) is checkpointed as ``"pyramid_optimizer"``.

L1 loss on the encoded output (plus the relative L2 of :mod:`.data_loss`, weight
``optim.relative_l2``, and the H/D-plane smoothness prior ``optim.angular_smoothness``, see
:meth:`TriplePlaneField.angular_roughness`), AdamW with two parameter groups (planes,
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

import logging
import math
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from ..angles import uses_relief_frame
from ..bundle import Bundle
from ..data import BtfSource, PointBtf
from ..material import SOURCE_KEY, DirectionCoding
from ..material.visible_slope import VISIBLE_SLOPE_GAIN
from ..models.triple_plane import TriplePlaneField
from . import sources
from .config import TrainConfig
from .config_io import config_to_dict
from .data_loss import DataLoss
from .distributed import DistInfo, all_reduce_mean_
from .engine import RESUME_MAY_CHANGE, Engine, StepCallback, seed_everything  # noqa: F401 (re-exported)
from .evaluate import heldout_report
from .export import heldout_record, material_surface, state_coding, surface_relief
from .observers import StepObserver
from .result import TrainResult
from .sampling import GlobalBatchSampler, PlaneBatch, box_batch, calibrate_output, validation_batch
from .schedule import lr_factor, qat_phase
from .validate import ValidationSet, validate

log = logging.getLogger(__name__)

AUTO_U_RES_MAX = 512
"""Largest automatic U-plane side: half the side of 1024² maps (README "Capacity")."""
AUTO_U_RES_FALLBACK = 400
"""Automatic U-plane side for sources without maps (measured BTFs; the seed's 400)."""


def pyramid_steps(total_steps: int, fraction: float) -> int:
    """Steps at the end of a run of ``total_steps`` that fit the learned LoD pyramid
    (``cfg.lod_pyramid`` = ``fraction``; 0 when it is 0): ``round(fraction * total)``, at least 1
    and leaving at least 1 point step."""
    if fraction <= 0 or total_steps < 2:
        return 0
    return min(max(1, int(round(fraction * total_steps))), total_steps - 1)


def resolve_u_res(u_res: int, source: BtfSource) -> int:
    """``u_res``, or for 0 (automatic) the side of the source's maps capped at
    :data:`AUTO_U_RES_MAX` texels (:data:`AUTO_U_RES_FALLBACK` when the source has no maps)."""
    if u_res:
        return u_res
    height = getattr(getattr(source, "material", None), "height", None)
    return min(int(height.shape[0]), AUTO_U_RES_MAX) if height is not None else AUTO_U_RES_FALLBACK


class TriplePlaneModel:
    """The triple-plane plug-in of the :class:`~.engine.Engine` (see the module docstring).

    Args:
        cfg: the run's configuration.
        source: the material's BTF; None builds it from ``cfg.source`` (:mod:`.sources`).
        info: where this process sits in the run.
        state: the checkpoint to resume from, or None.
    """

    def __init__(self, cfg: TrainConfig, source: BtfSource | None, info: DistInfo,
                 state: dict[str, Any] | None) -> None:
        self.cfg, self.info = cfg, info
        if info.device.type == "cpu":
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
        joint = cfg.source.lod_fraction > 0
        boxes = isinstance(source, PointBtf) or cfg.lod_target == "network"
        self.lod_pyramid = cfg.lod_pyramid if boxes and not joint else 0.0
        """Fraction of the steps fitting the learned LoD pyramid (0: off, joint LoD, or a
        ``"btf"`` target on a source without rendered boxes)."""
        if cfg.lod_pyramid > 0 and not self.lod_pyramid and not joint:
            log.warning("lod_pyramid %.3g ignored: %s draws no prefiltered samples (point sources only; "
                        "lod_target 'network' fits any source)",
                        cfg.lod_pyramid, type(source).__name__)
        u_res = resolve_u_res(cfg.model.u_res, source)
        if isinstance(source, PointBtf):  # prefiltered boxes start at one U texel (material/mips.py)
            source.config.lod_res = u_res
            if self.lod_pyramid and cfg.lod_target == "btf":
                source.limit_lod_pool(pyramid_steps(cfg.steps, self.lod_pyramid) * cfg.data.batch_size)
        seed_everything(cfg.seed)
        m = cfg.model
        self.model = TriplePlaneField(u_res, m.hd_res, m.channels, m.hidden, m.plane_init_std).to(info.device)
        o = cfg.optim
        self.base_lrs = (o.lr_planes, o.lr_mlp)
        self.optimizer = torch.optim.AdamW(
            [{"params": self.model.plane_parameters(), "lr": o.lr_planes, "weight_decay": o.weight_decay_planes},
             {"params": self.model.mlp_parameters(), "lr": o.lr_mlp, "weight_decay": o.weight_decay_mlp}],
            betas=o.betas, eps=o.eps,
        )
        self.pyramid_optimizer = torch.optim.AdamW(list(self.model.u_levels), lr=o.lr_planes,
                                                   weight_decay=o.weight_decay_planes, betas=o.betas, eps=o.eps)
        self.use_amp = cfg.amp and info.device.type == "cuda"
        self.check_loss = not self.use_amp  # the gradient scaler skips steps with an overflowing loss
        self.samples_per_step = cfg.data.batch_size
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.angle_param = cfg.model.angle_param
        """H/D plane parameterization of the run (a resumed run keeps its checkpoint's)."""
        self.last_smoothness = torch.zeros(())
        if state is not None:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if state.get("pyramid_optimizer"):
                self.pyramid_optimizer.load_state_dict(state["pyramid_optimizer"])
            if state["scaler"]:
                self.scaler.load_state_dict(state["scaler"])
            self.output, self.angle_param = state_coding(state)
        else:
            d = cfg.data
            self.output = calibrate_output(source, cfg.seed, d.output_encoding, d.calibration_samples,
                                           d.value_quantile, d.value_scale)
        self.data_loss = DataLoss(self.output, cfg.optim.relative_l2)
        self.observer = StepObserver(self.model.mlp, cfg.qat.observer_momentum)
        self.surface = material_surface(source)
        gain = VISIBLE_SLOPE_GAIN if self.lod_pyramid else 0.0  # the pyramid's coarse reads: the visible frame
        relief = (surface_relief(self.surface, self.model.u_res, self.angle_param, gain)
                  if uses_relief_frame(self.angle_param) else None)
        coding = DirectionCoding(self.angle_param, relief)
        self.sampler = GlobalBatchSampler(source, cfg.seed, cfg.data.batch_size, cfg.data.chunks,
                                          cfg.data.accum_steps, info.rank, info.world_size, self.output, coding)
        self.val = ValidationSet(validation_batch(source, cfg.seed, cfg.data.val_samples), self.output, coding)
        # Observer buffers are identical on every process (StepObserver syncs them), so DDP's
        # default buffer broadcast is a no-op in value and costs a few bytes per step.
        self.ddp = (DistributedDataParallel(self.model, device_ids=[info.device] if info.device.type == "cuda"
                                            else None)
                    if info.distributed else None)

    def describe(self) -> str:
        return (f"{self.spec.get('name', self.spec.get('path'))} (triple-plane, batch {self.cfg.data.batch_size}, "
                f"output {self.output.id} {', '.join(f'{s:.4g}' for s in self.output.scale)})")

    def state_dict(self) -> dict[str, Any]:
        """The plug-in's part of a checkpoint (see :mod:`.checkpoint`)."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "pyramid_optimizer": self.pyramid_optimizer.state_dict(),
                "scaler": self.scaler.state_dict() if self.use_amp else {},
                **self.output.provenance(), "angle_param": self.angle_param, "source": self.spec}

    def log_fields(self) -> dict[str, Any]:
        return {"smoothness": float(self.last_smoothness), "lr_mlp": self.optimizer.param_groups[1]["lr"]}

    # -- one optimizer step ------------------------------------------------------------------
    def train_step(self, step: int, total_steps: int) -> torch.Tensor:
        """Run optimizer step ``step``; returns this process's data loss (0-d; :mod:`.data_loss`).

        The smoothness penalty's value of the step is left in :attr:`last_smoothness`. The last
        :func:`pyramid_steps` of the run fit the learned LoD pyramid (:meth:`_pyramid_step`).
        """
        cfg = self.cfg
        fit = pyramid_steps(total_steps, self.lod_pyramid)
        point_steps = total_steps - fit
        if self.model.pyramid or (fit and step >= point_steps):  # a started phase never goes back
            return self._pyramid_step(step - point_steps, fit)
        phase = qat_phase(step, point_steps, cfg.qat)
        self.model.set_qat_mode(phase.mode)
        factor = lr_factor(step, cfg.optim, point_steps) * phase.lr_scale
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor
        net = self.ddp or self.model
        micro = self.sampler.micro_batches(step)
        norm = float(self.sampler.local_samples * 3)
        autocast = self.use_amp and phase.name == "observe"
        total = torch.zeros((), device=self.info.device)
        self.optimizer.zero_grad(set_to_none=True)
        self.observer.active = True
        try:
            for i, mb in enumerate(micro):
                uv, h, d, footprint, target = (torch.from_numpy(a).to(self.info.device, non_blocking=True)
                                               for a in (mb.uv, mb.h, mb.d, mb.footprint, mb.target))
                sync = nullcontext() if self.ddp is None or i == len(micro) - 1 else self.ddp.no_sync()
                with sync:
                    with torch.autocast("cuda", dtype=torch.float16, enabled=autocast):
                        pred = net(uv, h, d, footprint)
                    loss = self.data_loss(pred.float(), target) / norm
                    self.scaler.scale(loss).backward()
                total += loss.detach()
        finally:
            self.observer.active = False
        self.last_smoothness = self._add_smoothness_gradient()
        if cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.observer.commit(self.info, phase.observe)
        return total

    def _pyramid_step(self, step: int, steps: int) -> torch.Tensor:
        """Step ``step`` of the ``steps`` fitting the learned coarse U levels on prefiltered
        batches (module docstring); returns this process's data loss (0-d; :mod:`.data_loss`)."""
        if not self.model.pyramid:
            self.model.start_pyramid()
        self.model.set_qat_mode("quantize")  # frozen ranges: the INT8 path's form
        o = self.cfg.optim
        t = min(max(step, 0), max(steps - 1, 0)) / max(steps - 1, 1)
        factor = o.min_lr_ratio + (1.0 - o.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))
        for group in self.pyramid_optimizer.param_groups:
            group["lr"] = self.cfg.lod_lr * factor
        norm = float(self.sampler.local_samples * 3)
        total = torch.zeros((), device=self.info.device)
        self.pyramid_optimizer.zero_grad(set_to_none=True)
        for mb in self._pyramid_batches(step):
            uv, h, d, footprint, target = (torch.from_numpy(a).to(self.info.device, non_blocking=True)
                                           for a in (mb.uv, mb.h, mb.d, mb.footprint, mb.target))
            loss = self.data_loss(self.model(uv, h, d, footprint), target) / norm
            loss.backward()
            total += loss.detach()
        for level in self.model.u_levels:
            if level.grad is None:
                level.grad = torch.zeros_like(level)
            all_reduce_mean_(level.grad, self.info)
        self.pyramid_optimizer.step()
        self.last_smoothness = torch.zeros(())
        return total

    def _pyramid_batches(self, step: int) -> list:
        """The pyramid step's batches: rendered box means (split ``"prefiltered"``), or with
        ``lod_target = "network"`` the frozen network's own mean over ``lod_taps``² level-0 taps
        per box (decoded, averaged, re-encoded)."""
        if self.cfg.lod_target != "network":
            return self.sampler.micro_batches(step, "prefiltered")  # their own stream
        box = box_batch(self.sampler, step, self.model.u_res, self.cfg.lod_taps)
        with torch.no_grad():
            taps = self.model(*(torch.from_numpy(a).to(self.info.device) for a in (box.tap_uv, box.tap_h, box.tap_d)))
        k2 = self.cfg.lod_taps ** 2
        values = self.output.decode(taps.float().cpu().numpy()).reshape(-1, k2, 3).mean(axis=1)
        return [PlaneBatch(box.uv, box.h, box.d, box.footprint, self.output.encode(values.astype(np.float32)))]

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

    # -- validation --------------------------------------------------------------------------
    def validate(self, step: int, total_steps: int, final: bool) -> tuple[dict[str, float], Bundle,
                                                                            list[dict[str, Any]], str]:
        """Periodic validation (random held-out samples) and its bundle; ``final``: also the
        held-out figures of :func:`.evaluate.heldout_report`, stored as its ``metrics``."""
        prov = {SOURCE_KEY: self.spec, "step": step, "total_steps": total_steps,
                "config": config_to_dict(self.cfg)}
        metrics, bundle = validate(self.model, self.val, prov, self.surface)
        bundle.provenance["validation"] = dict(metrics)
        records = []
        if final:
            bundle.provenance["metrics"] = heldout_report(bundle, self.model, self.source.heldout_images(), step)
            records.append({"kind": "heldout", **bundle.provenance["metrics"]})
        log.info("step %d: validation on %d random held-out samples (a progress figure, not neumat eval's): "
                 "relative L1 fp32 %.2f%% int8 %.2f%% | PSNR fp32 %.2f int8 %.2f dB", step,
                 len(self.val.batch), 100 * metrics["fp32_rel_l1"], 100 * metrics["int8_rel_l1"],
                 metrics["fp32_psnr"], metrics["int8_psnr"])
        return metrics, bundle, records, f"PSNR fp32 {metrics['fp32_psnr']:.2f} int8 {metrics['int8_psnr']:.2f} dB"


class Trainer(Engine):
    """One triple-plane run: the :class:`~.engine.Engine` with a :class:`TriplePlaneModel`.

    Args:
        cfg: the run's configuration.
        source: the material's BTF; None builds it from ``cfg.source`` (:mod:`.sources`).
        resume: False, True (latest checkpoint in ``cfg.out``, fresh start if none) or a
            checkpoint path.
        callbacks: called after every optimizer step with ``(trainer, steps_done)``.
    """

    def __init__(self, cfg: TrainConfig, source: BtfSource | None = None, resume: bool | str | Path = False,
                 callbacks: Sequence[StepCallback] = ()) -> None:
        super().__init__(cfg, lambda info, state: TriplePlaneModel(cfg, source, info, state), resume, callbacks)

    def run(self) -> TrainResult:
        """Train (see :meth:`.engine.Engine.run`); returns the :class:`TrainResult`."""
        r = super().run()
        return TrainResult(r.steps_done, r.metrics, r.checkpoint, r.bundle, self.plugin.output, r.history,
                           r.stopped_by_budget, heldout_record(r.history, r.steps_done), r.export_error)


def train(cfg: TrainConfig, source: BtfSource | None = None, resume: bool | str | Path = False,
          callbacks: Sequence[StepCallback] = ()) -> TrainResult:
    """Train one material (see :class:`Trainer`); returns the :class:`TrainResult`."""
    return Trainer(cfg, source, resume, callbacks).run()
