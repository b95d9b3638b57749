"""NeuMIP optimization: universal-decoder pretraining, texture-only fitting, fine-tuning.

* :func:`pretrain` — one texture pair per material, **shared** decoders, all trained together
  on every material's synthetic BTF (seed 000: "universal NeuMIP MLPs ... pretrained on a set
  of materials"); QAT phases observe -> quantize -> frozen-range fine-tune
  (:func:`neumat.train.schedule.qat_phase`), so the decoders export to INT8 accurately.
* :func:`fit` — a new material's textures only, decoders frozen (weights and INT8 ranges):
  the fast path. The frozen decoders run in float before ``qat.quantize_start`` and
  fake-quantized with the frozen ranges after it, so the exported bundle is what was fitted.
  ``finetune_steps > 0`` then trains everything a little more (fake-quantized, frozen ranges,
  learning rates times ``qat.finetune_lr_scale``); the decoders are then no longer universal.

Each step draws ``batch_size`` samples per material from its training directions, seeded by
``(seed, step, material)`` (:func:`neumat.train.sampling.stream_rng`); the loss is L1 on BTF
values divided by each material's ``value_scale``; AdamW, linear warm-up + one cosine decay
(:func:`neumat.train.schedule.lr_factor`). The offsets are off (Δu = 0) for the first
``offset_start`` of the steps; ``offset_penalty`` keeps them along the view azimuth (where true
parallax lies) and ``offset_anchor`` pins the head-on offsets (ωo = +z) to 0 from the first
step (see :class:`NeuMipConfig`).
On CPU the run is deterministic (``torch.use_deterministic_algorithms``): the same config and
seed give the same weights.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ...data import BtfBatch, BtfSource
from ...data.source import concat_batches
from ...models.neumip import NeuMipDecoders, NeuMipField
from ...models.qat import QatMode
from ..config import OptimConfig
from ..progress import TrainProgress
from ..sampling import (
    TRAIN_STREAM,
    calibrate_value_scale,
    calibration_values,
    stream_rng,
    validation_batch,
)
from ..schedule import lr_factor, qat_phase
from ..sources import make_source
from .config import NeuMipConfig
from .export import bundle_provenance, material_metrics, to_bundle

log = logging.getLogger(__name__)

CALIBRATION_SAMPLES = 65536
"""Training samples drawn to calibrate a material's ``value_scale``."""
LOG_EVERY = 50
"""Steps between loss records."""
DECODER_MODES = ("frozen", "qat", "finetune")
"""What :func:`optimize` does with the decoders."""


@dataclass
class MaterialData:
    """One material's training data."""

    name: str
    """Registry name."""
    spec: dict[str, Any]
    """Data-source spec (:mod:`neumat.train.sources`), recorded in the bundle."""
    source: BtfSource
    """The synthetic BTF (reference uv space)."""
    value_scale: float
    """BTF value of decoder output 1.0."""
    val: BtfBatch
    """Fixed held-out samples (held-out direction configurations)."""


@dataclass
class FitResult:
    """What a pretraining or fitting run produced."""

    field: NeuMipField
    """The trained model (textures of every material, decoders)."""
    materials: list[MaterialData]
    """The materials, in texture order."""
    seconds: float
    """Wall time of the optimization (data preparation excluded)."""
    metrics: list[dict[str, float]]
    """Held-out figures per material (:func:`~.export.material_metrics`, INT8 included)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """Loss records."""

    def bundle(self, index: int = 0, config: NeuMipConfig | None = None, **extra: Any):
        """The INT8 ``neumip`` bundle of material ``index`` with provenance."""
        m = self.materials[index]
        prov = bundle_provenance(m.spec, config.to_dict() if config else {}, self.metrics[index],
                                 material=m.name, fit_seconds=round(self.seconds, 2), **extra)
        return to_bundle(self.field, index, m.value_scale, prov)


def load_material(cfg: NeuMipConfig, name: str, spec: dict[str, Any] | None = None) -> MaterialData:
    """Build (render or load from the disk cache) material ``name``'s BTF and its fixed sets:
    the registry material ``name``, or the source ``spec`` (e.g. :meth:`NeuMipConfig.maps_spec`)
    under that name."""
    spec = spec if spec is not None else cfg.material_spec(name)
    source = make_source(spec)
    scale = calibrate_value_scale(calibration_values(source, cfg.seed, CALIBRATION_SAMPLES), cfg.value_quantile)
    return MaterialData(name, spec, source, scale, validation_batch(source, cfg.seed, cfg.val_samples))


def _step_batch(cfg: NeuMipConfig, materials: list[MaterialData], step: int) -> tuple[torch.Tensor, ...]:
    batches = [m.source.sample(cfg.batch_size, stream_rng(cfg.seed, TRAIN_STREAM, step, k), "train")
               for k, m in enumerate(materials)]
    both = concat_batches(batches)
    scales = np.repeat(np.float32([m.value_scale for m in materials]), [len(b) for b in batches])
    target = (both.rgb / scales[:, None]).astype(np.float32)
    arrays = (both.uv, both.wi, both.wo, target)
    return tuple(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in arrays)


def optimize(model: NeuMipField, materials: list[MaterialData], cfg: NeuMipConfig, steps: int, *,
             decoders: str, progress: bool = True, history: list[dict[str, Any]] | None = None) -> float:
    """Run ``steps`` optimizer steps; returns the wall time in seconds.

    ``decoders``: ``"frozen"`` trains the textures only (float, then fake-quantized with the
    frozen ranges); ``"qat"`` trains textures and decoders through the QAT phases of
    ``cfg.qat``; ``"finetune"`` trains both fake-quantized with frozen ranges, learning rates
    times ``cfg.qat.finetune_lr_scale``.
    """
    if decoders not in DECODER_MODES:
        raise ValueError(f"decoders must be one of {DECODER_MODES}, got {decoders!r}")
    train_decoders = decoders != "frozen"
    torch.use_deterministic_algorithms(True)
    # Determinism does not need freshly allocated tensors NaN-filled (measured: a fifth of a step).
    torch.utils.deterministic.fill_uninitialized_memory = False
    groups = [{"params": model.texture_parameters(), "lr": cfg.lr_textures, "weight_decay": 0.0}]
    if train_decoders:
        model.decoders.requires_grad_(True)
        groups.append({"params": model.decoder_parameters(), "lr": cfg.lr_decoders,
                       "weight_decay": cfg.weight_decay_decoders})
    opt = torch.optim.AdamW(groups, betas=(0.9, 0.99))
    base = [g["lr"] * (cfg.qat.finetune_lr_scale if decoders == "finetune" else 1.0) for g in groups]
    sched = OptimConfig(warmup_steps=min(cfg.warmup_steps, steps - 1), restart_period=steps, restart_mult=1,
                        min_lr_ratio=cfg.min_lr_ratio)
    sizes = [cfg.batch_size] * len(materials)
    bar = TrainProgress(steps, 0, progress)
    if decoders != "qat":
        model.decoders.freeze_observers(True)
    model.train()
    t0 = time.perf_counter()
    try:
        for step in range(steps):
            phase = qat_phase(step, steps, cfg.qat)
            if decoders == "qat":
                model.decoders.set_qat_mode(phase.mode)
                model.decoders.freeze_observers(not phase.observe)
            elif decoders == "finetune":
                model.decoders.set_qat_mode(QatMode.QUANTIZE)
            else:  # frozen decoders: float, then fake-quantized with their frozen ranges
                model.decoders.set_qat_mode(QatMode.FLOAT if phase.name == "observe" else QatMode.QUANTIZE)
            factor = lr_factor(step, sched, steps) * (phase.lr_scale if decoders == "qat" else 1.0)
            for g, b in zip(opt.param_groups, base):
                g["lr"] = b * factor
            uv, wi, wo, target = _step_batch(cfg, materials, step)
            zero = cfg.zero_offset or (decoders != "finetune" and step < cfg.offset_start * steps)
            pred, du = model(uv, wi, wo, sizes, zero_offset=zero, return_offsets=True)
            loss = (pred - target).abs().mean()
            if not zero and cfg.offset_penalty > 0:
                loss = loss + cfg.offset_penalty * cross_view_offset_penalty(du, wo, model.max_offset)
            if not cfg.zero_offset and cfg.offset_anchor > 0:
                loss = loss + cfg.offset_anchor * normal_view_offset_penalty(model, uv, sizes)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.advance(len(uv))
            if (step + 1) % LOG_EVERY == 0 or step + 1 == steps:
                value = float(loss.detach())
                bar.update_loss(value)
                if history is not None:
                    history.append({"step": step + 1, "loss": value, "phase": phase.name})
            if (step + 1) % max(steps // 10, 1) == 0:
                log.info("step %d/%d (%s): loss %.5f, %.1f s", step + 1, steps, phase.name, float(loss.detach()),
                         time.perf_counter() - t0)
    finally:
        bar.close()
    if train_decoders:
        model.decoders.freeze_observers(True)
    return time.perf_counter() - t0


def cross_view_offset_penalty(du: torch.Tensor, wo: torch.Tensor, max_offset: float) -> torch.Tensor:
    """mean(|Δu⊥ / max_offset|²) / 2: the part of the offsets ``du`` ``[B, 2]`` (UV units)
    perpendicular to the view's azimuth ``wo.xy`` (``wo`` ``[B, 3]`` unit local directions).

    True parallax in the reference uv space is ``-(ωo.xy / ωo.z) · depth`` with depth >= 0: a
    shift along the view azimuth only. The component along it is left free (its size is the
    material's depth, what the offset network is there to learn); the component across it is
    never parallax. Halved so it equals mean((Δu / max_offset)²) when all of Δu is across.
    Head-on (``wo.xy = 0``) all of Δu counts. Measured on stone_tiles with the head-on anchor
    (:func:`normal_view_offset_penalty`): penalizing all of Δu gave offset / true-parallax
    correlation 0.12 and held-out INT8 39.4 dB, a quarter weight on the along part 0.22 and
    40.3 dB, a tenth 0.26 and 40.7 dB, none (this) 0.39 and 40.8 dB."""
    axis = torch.nn.functional.normalize(wo[:, :2], dim=1, eps=1e-6)
    across = du - (du * axis).sum(1, keepdim=True) * axis
    return (across / max_offset).square().sum(1).mean() / 2


def normal_view_offset_penalty(model: NeuMipField, uv: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """mean((Δu(uv, ωo = +z) / max_offset)²): the offsets of the step's texture coordinates
    ``uv`` ``[B, 2]`` seen head-on, where the true parallax in the reference uv space is 0 (the
    view ray enters the shell top right above the point it hits).

    Why it is needed: the training views have θo between about 16° and 71°, so the other
    penalty never sees head-on views, and there the bias-free offset network's output is a
    positively homogeneous function of ``T_off`` alone (ωo.xy = 0); ``T_off`` starts near 0,
    i.e. at Δu = -max_offset. Without this term the shipped stone_tiles material had a head-on
    shift of -0.58 max_offset (while its mean offset on the training views was < 0.01
    max_offset): a view-dependent texture shift that swims on curved surfaces. It acts from
    step 0, also while Δu is held at 0 for the rgb lookups, on the textures and (when they
    train) the decoders."""
    normal = torch.zeros(len(uv), 3, dtype=uv.dtype)
    normal[:, 2] = 1.0
    return (model.offsets(uv, normal, sizes) / model.max_offset).square().mean()


def _metrics(model: NeuMipField, materials: list[MaterialData], zero_offset: bool) -> list[dict[str, float]]:
    """Held-out figures per material; INT8 ones only for models trained with their offsets (the
    bundle always applies the offset network, untrained in a Δu = 0 ablation run)."""
    out = []
    for k, m in enumerate(materials):
        bundle = None if zero_offset else to_bundle(model, k, m.value_scale)
        out.append(material_metrics(model, k, m.val, m.value_scale, bundle, zero_offset))
    return out


def pretrain(cfg: NeuMipConfig, names: list[str], progress: bool = True) -> FitResult:
    """Pretrain universal decoders (and one texture pair per material) on materials ``names``."""
    cfg.validate()
    if not names:
        raise ValueError("pretraining needs at least one material")
    materials = [load_material(cfg, n) for n in names]
    torch.manual_seed(cfg.seed)
    model = NeuMipField(len(materials), cfg.texture_resolution, cfg.max_offset, None, cfg.channels, cfg.hidden)
    history: list[dict[str, Any]] = []
    log.info("pretraining NeuMIP decoders on %s: %d steps x %d samples per material", names, cfg.steps,
             cfg.batch_size)
    seconds = optimize(model, materials, cfg, cfg.steps, decoders="qat", progress=progress, history=history)
    return FitResult(model, materials, seconds, _metrics(model, materials, cfg.zero_offset), history)


def fit(cfg: NeuMipConfig, name: str, decoders: NeuMipDecoders, max_offset: float, finetune_steps: int = 0,
        progress: bool = True, spec: dict[str, Any] | None = None) -> FitResult:
    """Fit material ``name``'s textures with frozen ``decoders`` (then optionally fine-tune all);
    ``spec``: its data source when it is not a registry material (:func:`load_material`).

    ``cfg.max_offset`` is ignored: the offsets mean what the decoders were trained with.
    """
    cfg.validate()
    material = load_material(cfg, name, spec)
    torch.manual_seed(cfg.seed)
    decoders.freeze()
    model = NeuMipField(1, cfg.texture_resolution, max_offset, decoders)
    history: list[dict[str, Any]] = []
    seconds = optimize(model, [material], cfg, cfg.steps, decoders="frozen", progress=progress, history=history)
    if finetune_steps > 0:
        seconds += optimize(model, [material], cfg, finetune_steps, decoders="finetune", progress=progress,
                            history=history)
    return FitResult(model, [material], seconds, _metrics(model, [material], cfg.zero_offset), history)
