"""NeuMIP's model plug-in of the training engine (:mod:`neumat.train.engine`).

A run is a sequence of *stages*, each ``(mode, steps)`` with its own AdamW and its own
schedule (seed 000, §4.1; :mod:`.fit`):

* ``"qat"`` — textures and the universal decoders, QAT phases observe -> quantize ->
  frozen-range fine-tune (pretraining over several materials);
* ``"frozen"`` — textures only, the decoders frozen (weights and INT8 ranges): float before
  ``qat.quantize_start``, fake-quantized with the frozen ranges after it (texture fitting);
* ``"finetune"`` — textures and decoders, fake-quantized with frozen ranges, learning rates
  times ``qat.finetune_lr_scale`` (after a fit, ``finetune_steps``).

Within a stage of ``L`` steps, step ``l`` (0-based) runs with warm-up + one cosine decay over
``L`` (:func:`neumat.train.schedule.lr_factor`), QAT phase ``qat_phase(l, L)``, offsets off for
``l < offset_start * L`` (not when fine-tuning) and the batch of stream ``(seed, l, material)``
— exactly the loop the stages ran before the engine existed, so the same config gives the
same textures, decoders and bundles. A ``max_minutes`` budget rescales the engine's total;
the current stage and those after it share the steps left after its start in proportion to
their planned steps (:func:`stage_bounds`; a stage's start is fixed once it began), so a
budget-cut fit still ends quantized.

Under torchrun every process draws each material's full per-step batch and trains on its
``1/W`` slice; gradients are averaged over processes (equal slices: the mean of the global
loss) and every activation-range update takes the maximum over all processes, so N processes
train like one up to float summation order (once fake-quantized, an INT8 rounding flip can
follow from it: close, not equal). ``batch_size`` must be a multiple of the process count.

Checkpoints (:mod:`neumat.train.checkpoint`) hold ``model`` (textures, decoders, observer
ranges), the current stage's ``optimizer`` and ``neumip`` (task, stages, stage starts,
``max_offset``, each material's name, spec and ``value_scale``, seconds trained, the bundle's
extra provenance): ``neumat export RUN_DIR`` writes a fit's bundle from it
(:func:`.export.checkpoint_bundle`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch

from ...bundle import Bundle
from ...data import BtfBatch
from ...data.source import concat_batches
from ...models.neumip import NeuMipField
from ...models.qat import ActivationObserver, QatMode
from ..config import OptimConfig
from ..distributed import DistInfo, all_reduce_max_, all_reduce_mean_
from ..sampling import TRAIN_STREAM, stream_rng
from ..schedule import lr_factor, qat_phase
from .config import NeuMipConfig
from .export import bundle_provenance, material_metrics, to_bundle
from .penalties import cross_view_offset_penalty, normal_view_offset_penalty

log = logging.getLogger(__name__)

DECODER_MODES = ("frozen", "qat", "finetune")
"""Stage modes: what a stage does with the decoders (module docstring)."""
MODEL_KIND = "neumip"
"""Value of a NeuMIP checkpoint's ``model_kind`` key."""


def stage_bounds(planned: list[int], started: list[int], total: int) -> list[tuple[int, int]]:
    """``(start, end)`` step of every stage of planned lengths ``planned`` in a run of ``total``
    steps whose stages ``0 .. len(started) - 1`` began at steps ``started``.

    The current stage and those after it share the steps left after its start in proportion
    to their planned lengths (integer arithmetic: with ``total == sum(planned)`` every stage
    gets exactly its planned length); the last stage ends at ``total``.
    """
    bounds, start = [], 0
    for k, steps in enumerate(planned):
        if k < len(started):
            start = started[k]
        rest = sum(planned[k:])
        if k + 1 < len(started):
            end = started[k + 1]
        elif k == len(planned) - 1:
            end = total
        else:
            end = start + (max(total - start, 0) * steps // rest if rest else 0)
        bounds.append((start, max(end, start)))
        start = bounds[-1][1]
    return bounds


class NeuMipModel:
    """The engine plug-in of a NeuMIP run (module docstring).

    Args:
        cfg: the run's config.
        materials: the training data, in texture order (:func:`.fit.load_material`).
        field: the model (textures of every material, decoders), on CPU.
        stages: ``[(mode, steps), ...]`` (:data:`DECODER_MODES`).
        info: where this process sits in the run.
        state: a checkpoint to resume from, or None.
        task: ``"fit"`` or ``"pretrain"`` (recorded; a resume must match).
        bundle_extra: extra provenance of the fitted material's bundle (e.g. the decoder file).
        validating: False: no validation, no bundle (:func:`.fit.optimize`).
    """

    check_loss = True

    def __init__(self, cfg: NeuMipConfig, materials: list[Any], field: NeuMipField, stages: list[tuple[str, int]],
                 info: DistInfo, state: dict[str, Any] | None, task: str = "fit",
                 bundle_extra: dict[str, Any] | None = None, validating: bool = True) -> None:
        bad = [m for m, _ in stages if m not in DECODER_MODES]
        if bad:
            raise ValueError(f"decoders must be one of {DECODER_MODES}, got {bad[0]!r}")
        if cfg.batch_size % info.world_size:
            raise ValueError(f"batch_size {cfg.batch_size} must be a multiple of the process count {info.world_size}")
        self.cfg, self.materials, self.info, self.task = cfg, materials, info, task
        self.stages = [(m, int(n)) for m, n in stages]
        self.bundle_extra, self.validating = dict(bundle_extra or {}), validating
        self.model = field.to(info.device)
        torch.use_deterministic_algorithms(True)
        # Determinism does not need freshly allocated tensors NaN-filled (measured: a fifth of a step).
        torch.utils.deterministic.fill_uninitialized_memory = False
        self.local = cfg.batch_size // info.world_size
        self.samples_per_step = cfg.batch_size * len(materials)
        self.started: list[int] = []
        self.seconds, self.phase, self.metrics = 0.0, "", [{} for _ in materials]
        self.optimizer: torch.optim.Optimizer | None = None
        if info.distributed:
            _share_observations(field, info)
        if state is not None:
            self._load(state)

    # -- state -------------------------------------------------------------------------------
    def _load(self, state: dict[str, Any]) -> None:
        meta = state.get("neumip")
        if state.get("model_kind") != MODEL_KIND or not isinstance(meta, dict) or meta.get("task") != self.task:
            raise ValueError(f"not a checkpoint of a NeuMIP {self.task} run; start afresh in another run directory")
        recorded = [(str(m), int(n)) for m, n in meta["stages"]]
        if len(meta["started"]) > len(self.stages) or [m for m, _ in recorded] != [m for m, _ in self.stages]:
            raise ValueError(f"the checkpoint's run has the stages {recorded}, this one {self.stages}: resume with "
                             "the same --finetune-steps, or start afresh in another run directory")
        if recorded[1:] != self.stages[1:]:  # the first stage's length follows cfg.steps (a resume may extend it)
            log.warning("resuming with stages %s, the checkpoint's were %s: the run will not match an "
                        "uninterrupted one", self.stages, recorded)
        if len(meta["materials"]) != len(self.materials):
            raise ValueError(f"the checkpoint's run trained {[m['name'] for m in meta['materials']]}, this one "
                             f"{[m.name for m in self.materials]}: resume with the same materials")
        specs = [m["spec"] for m in meta["materials"]]
        if specs != [m.spec for m in self.materials]:
            log.warning("resuming with other data sources than the checkpoint's %s: the run will not match an "
                        "uninterrupted one", specs)
        for m, r in zip(self.materials, meta["materials"]):
            m.value_scale = float(r["value_scale"])  # what the textures were trained against
        self.model.load_state_dict(state["model"])
        self.started = [int(s) for s in meta["started"]]
        self.seconds = float(meta["seconds"])
        if self.started:
            self._begin(len(self.started) - 1)
            self.optimizer.load_state_dict(state["optimizer"])

    def state_dict(self) -> dict[str, Any]:
        """The plug-in's part of a checkpoint (module docstring)."""
        meta = {"task": self.task, "stages": [list(s) for s in self.stages], "started": list(self.started),
                "max_offset": self.model.max_offset, "seconds": self.seconds, "bundle_extra": self.bundle_extra,
                "materials": [{"name": m.name, "spec": m.spec, "value_scale": m.value_scale} for m in self.materials]}
        return {"model_kind": MODEL_KIND, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict() if self.optimizer is not None else {}, "neumip": meta}

    def describe(self) -> str:
        stages = " + ".join(f"{n} {m}" for m, n in self.stages)
        return (f"NeuMIP {self.task} of {[m.name for m in self.materials]} ({stages} steps, {self.cfg.batch_size} "
                "samples per material and step)")

    def log_fields(self) -> dict[str, Any]:
        """``phase`` ``"<stage mode>/<decoder forward>"`` (``qat/observe|quantize|finetune``: the
        QAT phase; ``frozen/float|quantize``; ``finetune/quantize``) and the textures' learning rate."""
        return {"phase": self.phase, "lr_textures": self.optimizer.param_groups[0]["lr"]}

    # -- one optimizer step ------------------------------------------------------------------
    def _begin(self, k: int) -> None:
        """Set up stage ``k``: its parameter groups, a fresh AdamW, the decoders' state."""
        cfg, mode, model = self.cfg, self.stages[k][0], self.model
        groups = [{"params": model.texture_parameters(), "lr": cfg.lr_textures, "weight_decay": 0.0}]
        if mode != "frozen":
            model.decoders.requires_grad_(True)
            groups.append({"params": model.decoder_parameters(), "lr": cfg.lr_decoders,
                           "weight_decay": cfg.weight_decay_decoders})
        self.optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.99))
        self.base = [g["lr"] * (cfg.qat.finetune_lr_scale if mode == "finetune" else 1.0) for g in groups]
        if mode != "qat":
            model.decoders.freeze_observers(True)
        model.train()

    def train_step(self, step: int, total_steps: int) -> torch.Tensor:
        """Run optimizer step ``step`` of ``total_steps``; returns this process's loss (0-d):
        L1 on BTF / value_scale plus the offset penalties (:class:`NeuMipConfig`)."""
        t0 = time.perf_counter()
        cfg, model = self.cfg, self.model
        bounds = stage_bounds([n for _, n in self.stages], self.started, total_steps)
        k = len(self.started) - 1
        while k < 0 or (step >= bounds[k][1] and k + 1 < len(self.stages)):
            k += 1
            self.started.append(step)
            bounds = stage_bounds([n for _, n in self.stages], self.started, total_steps)
            self._begin(k)
        mode, (start, end) = self.stages[k][0], bounds[k]
        local, length = step - start, max(end - start, 1)
        phase = qat_phase(local, length, cfg.qat)
        if mode == "qat":
            model.decoders.set_qat_mode(phase.mode)
            model.decoders.freeze_observers(not phase.observe)
            forward = phase.name
        elif mode == "finetune":
            model.decoders.set_qat_mode(QatMode.QUANTIZE)
            forward = "quantize"
        else:  # frozen decoders: float, then fake-quantized with their frozen ranges
            forward = "float" if phase.name == "observe" else "quantize"
            model.decoders.set_qat_mode(QatMode.FLOAT if forward == "float" else QatMode.QUANTIZE)
        self.phase = f"{mode}/{forward}"
        sched = OptimConfig(warmup_steps=min(cfg.warmup_steps, length - 1), restart_period=length, restart_mult=1,
                            min_lr_ratio=cfg.min_lr_ratio)
        factor = lr_factor(local, sched, length) * (phase.lr_scale if mode == "qat" else 1.0)
        for g, b in zip(self.optimizer.param_groups, self.base):
            g["lr"] = b * factor
        uv, wi, wo, target = self._batch(local)
        sizes = [len(uv) // len(self.materials)] * len(self.materials)
        zero = cfg.zero_offset or (mode != "finetune" and local < cfg.offset_start * length)
        pred, du = model(uv, wi, wo, sizes, zero_offset=zero, return_offsets=True)
        loss = (pred - target).abs().mean()
        if not zero and cfg.offset_penalty > 0:
            loss = loss + cfg.offset_penalty * cross_view_offset_penalty(du, wo, model.max_offset)
        if not cfg.zero_offset and cfg.offset_anchor > 0:
            loss = loss + cfg.offset_anchor * normal_view_offset_penalty(model, uv, sizes)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.info.distributed:
            for p in (p for g in self.optimizer.param_groups for p in g["params"]):
                if p.grad is not None:
                    all_reduce_mean_(p.grad, self.info)
        self.optimizer.step()
        self.seconds += time.perf_counter() - t0
        return loss.detach()

    def _batch(self, local: int) -> tuple[torch.Tensor, ...]:
        """``(uv, wi, wo, target)`` of stage step ``local``: per material ``batch_size`` samples of
        stream ``(seed, local, material)``, this process's slice of each, targets / value_scale."""
        cfg, lo = self.cfg, self.info.rank * self.local
        batches = [m.source.sample(cfg.batch_size, stream_rng(cfg.seed, TRAIN_STREAM, local, k), "train")
                   for k, m in enumerate(self.materials)]
        if self.info.distributed:
            batches = [BtfBatch(b.uv[lo:lo + self.local], b.wi[lo:lo + self.local], b.wo[lo:lo + self.local],
                                b.rgb[lo:lo + self.local]) for b in batches]
        both = concat_batches(batches)
        scales = np.repeat(np.float32([m.value_scale for m in self.materials]), [len(b) for b in batches])
        target = (both.rgb / scales[:, None]).astype(np.float32)
        arrays = (both.uv, both.wi, both.wo, target)
        return tuple(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(self.info.device)
                     for a in arrays)

    # -- validation --------------------------------------------------------------------------
    def validate(self, step: int, total_steps: int, final: bool) -> tuple[dict[str, float], Bundle | None,
                                                                            list[dict[str, Any]], str] | None:
        """Held-out figures of every material (:func:`~.export.material_metrics`, INT8 through the
        bundle unless ``zero_offset``): their means over the materials, and with several also
        each material's as ``<name>.<figure>``; for a fit also its bundle with provenance."""
        if not self.validating:
            return None
        cfg, bundle = self.cfg, None
        for k, m in enumerate(self.materials):
            b = None if cfg.zero_offset else to_bundle(self.model, k, m.value_scale)
            self.metrics[k] = material_metrics(self.model, k, m.val, m.value_scale, b, cfg.zero_offset)
            if b is not None and self.task == "fit":
                b.provenance.update(self.provenance(k, step=step, total_steps=total_steps))
                bundle = b
        flat = {key: float(np.mean([ms[key] for ms in self.metrics])) for key in self.metrics[0]}  # mean over materials
        if len(self.materials) > 1:
            flat.update({f"{m.name}.{key}": v for m, ms in zip(self.materials, self.metrics) for key, v in ms.items()})
        psnr = np.mean([ms["fp32_psnr"] for ms in self.metrics])
        log.info("step %d: held-out PSNR fp32 %.2f dB (mean of %d material(s))", step, psnr, len(self.materials))
        return flat, bundle, [], f"PSNR fp32 {psnr:.2f} dB"

    def provenance(self, k: int, **extra: Any) -> dict[str, Any]:
        """Bundle provenance of material ``k`` (:func:`~.export.bundle_provenance`)."""
        m = self.materials[k]
        return bundle_provenance(m.spec, self.cfg.to_dict(), self.metrics[k], material=m.name,
                                 fit_seconds=round(self.seconds, 2), **self.bundle_extra, **extra)


def _share_observations(field: NeuMipField, info: DistInfo) -> None:
    """Make every activation-range update of ``field``'s decoders take the maximum of ``max|x|``
    over all processes, so each process's observers follow the global batch (module docstring)."""
    for obs in field.decoders.modules():
        if isinstance(obs, ActivationObserver):
            local = obs.observe

            def observe(x: torch.Tensor, local=local, obs=obs) -> None:
                if not obs.frozen:
                    local(all_reduce_max_(x.detach().abs().max().float(), info))

            obs.observe = observe

