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

Every run trains on the shared engine (:mod:`neumat.train.engine`) with the NeuMIP plug-in
(:mod:`.plugin`): ``cfg.out`` holds ``config.json`` and atomic checkpoints, ``resume=True``
continues a killed run bit-identically, ``cfg.max_minutes`` rescales the run to a time budget
(the QAT phases and the decay fit inside it), torchrun runs it on several processes.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...bundle import Bundle
from ...data import BtfBatch, BtfSource
from ...models.neumip import NeuMipDecoders, NeuMipField
from ..engine import Engine, StepCallback, seed_everything
from ..sampling import calibrate_value_scale, calibration_values, validation_batch
from ..sources import make_source
from .config import NeuMipConfig
from .export import bundle_provenance, to_bundle
from .penalties import cross_view_offset_penalty, normal_view_offset_penalty  # noqa: F401 (re-exported)
from .plugin import DECODER_MODES, NeuMipModel

log = logging.getLogger(__name__)

CALIBRATION_SAMPLES = 65536
"""Training samples drawn to calibrate a material's ``value_scale``."""


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
    """Loss and validation records (:mod:`neumat.train.engine`)."""
    steps_done: int = 0
    """Optimizer steps completed (all stages)."""
    checkpoint: Path | None = None
    """Last checkpoint written (None without a run directory ``cfg.out``)."""
    stopped_by_budget: bool = False
    """True when ``max_minutes`` ended or shortened the run."""
    export_error: str = ""
    """Why the last ``cfg.export`` write failed ("" when it succeeded, or without ``export``)."""

    def bundle(self, index: int = 0, config: NeuMipConfig | None = None, **extra: Any) -> Bundle:
        """The INT8 ``neumip`` bundle of material ``index`` with provenance (``config``'s
        :meth:`~NeuMipConfig.to_dict`, the held-out ``metrics``, ``extra``)."""
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


def optimize(model: NeuMipField, materials: list[MaterialData], cfg: NeuMipConfig, steps: int, *,
             decoders: str, progress: bool = True, history: list[dict[str, Any]] | None = None) -> float:
    """Run ``steps`` optimizer steps of one stage on ``model`` (in place, no run directory, no
    budget, no validation); returns the wall time in seconds.

    ``decoders``: ``"frozen"`` trains the textures only (float, then fake-quantized with the
    frozen ranges); ``"qat"`` trains textures and decoders through the QAT phases of
    ``cfg.qat``; ``"finetune"`` trains both fake-quantized with frozen ranges, learning rates
    times ``cfg.qat.finetune_lr_scale`` (:mod:`.plugin`).
    """
    if decoders not in DECODER_MODES:
        raise ValueError(f"decoders must be one of {DECODER_MODES}, got {decoders!r}")
    cfg = dataclasses.replace(cfg, steps=steps, out="", export="", max_minutes=0.0, progress=cfg.progress and progress)
    engine = Engine(cfg, lambda info, state: NeuMipModel(cfg, materials, model, [(decoders, steps)], info, state,
                                                         validating=False))
    outcome = engine.run()
    if decoders != "frozen":
        model.decoders.freeze_observers(True)
    if history is not None:
        history.extend(outcome.history)
    return engine.plugin.seconds


def _run(cfg: NeuMipConfig, build: Any, resume: bool | str | Path, callbacks: Sequence[StepCallback],
         planned_steps: int) -> FitResult:
    engine = Engine(cfg, build, resume, callbacks, planned_steps)
    outcome = engine.run()
    plugin = engine.plugin
    plugin.model.decoders.freeze_observers(True)
    return FitResult(plugin.model, plugin.materials, plugin.seconds, plugin.metrics, outcome.history,
                     outcome.steps_done, outcome.checkpoint, outcome.stopped_by_budget, outcome.export_error)


def pretrain(cfg: NeuMipConfig, names: list[str], progress: bool = True, resume: bool | str | Path = False,
             callbacks: Sequence[StepCallback] = ()) -> FitResult:
    """Pretrain universal decoders (and one texture pair per material) on materials ``names``.

    ``resume``: False, True (the newest checkpoint in ``cfg.out``) or a checkpoint path;
    ``callbacks``: called after every step with ``(engine, steps_done)``.
    """
    cfg.validate()
    if not names:
        raise ValueError("pretraining needs at least one material")
    cfg = dataclasses.replace(cfg, progress=cfg.progress and progress)

    def build(info, state):
        materials = [load_material(cfg, n) for n in names]
        seed_everything(cfg.seed)
        model = NeuMipField(len(materials), cfg.texture_resolution, cfg.max_offset, None, cfg.channels, cfg.hidden)
        return NeuMipModel(cfg, materials, model, [("qat", cfg.steps)], info, state, task="pretrain")

    log.info("pretraining NeuMIP decoders on %s: %d steps x %d samples per material", names, cfg.steps,
             cfg.batch_size)
    return _run(cfg, build, resume, callbacks, cfg.steps)


def fit(cfg: NeuMipConfig, name: str, decoders: NeuMipDecoders, max_offset: float, finetune_steps: int = 0,
        progress: bool = True, spec: dict[str, Any] | None = None, resume: bool | str | Path = False,
        callbacks: Sequence[StepCallback] = (), bundle_extra: dict[str, Any] | None = None) -> FitResult:
    """Fit material ``name``'s textures with frozen ``decoders`` for ``cfg.steps`` steps (then
    optionally fine-tune all for ``finetune_steps``); ``spec``: its data source when it is not a
    registry material (:func:`load_material`).

    ``cfg.max_offset`` is ignored: the offsets mean what the decoders were trained with. With
    ``cfg.export`` the bundle (provenance: :meth:`FitResult.bundle`'s plus ``step``,
    ``total_steps`` and ``bundle_extra``) is written at every validation. ``resume``,
    ``callbacks``: as :func:`pretrain`'s.
    """
    cfg.validate()
    if finetune_steps < 0:
        raise ValueError(f"finetune_steps must be >= 0, got {finetune_steps}")
    cfg = dataclasses.replace(cfg, progress=cfg.progress and progress)
    stages = [("frozen", cfg.steps)] + ([("finetune", finetune_steps)] if finetune_steps else [])
    extra = {**(bundle_extra or {}), "finetune_steps": finetune_steps}

    def build(info, state):
        material = load_material(cfg, name, spec)
        seed_everything(cfg.seed)
        decoders.freeze()
        model = NeuMipField(1, cfg.texture_resolution, max_offset, decoders)
        return NeuMipModel(cfg, [material], model, stages, info, state, task="fit", bundle_extra=extra)

    return _run(cfg, build, resume, callbacks, cfg.steps + finetune_steps)
