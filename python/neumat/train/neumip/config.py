"""Configuration of NeuMIP training: universal-decoder pretraining and texture-only fitting.

One dataclass, one docstring per field (as :mod:`neumat.train.config`); the QAT phases reuse
:class:`neumat.train.config.QatConfig`. Files and ``--set`` overrides work as for
``neumat train`` (:func:`neumat.train.config.load_config` / :func:`~neumat.train.config.
apply_overrides` with this class: unknown keys are errors listing the valid ones). The fields of
:data:`RUN_CONTROL` steer the shared engine (:mod:`neumat.train.engine`: run directory,
checkpoints, time budget, device) and are left out of :meth:`NeuMipConfig.to_dict`, the config
recorded in bundles and decoder files, so the same fit writes the same files however it is run.
Materials are synthetic registry materials (:mod:`neumat.data.materials`) rendered with true
displacement in the ``"reference"`` uv space, so parallax is in the data (what NeuMIP's offset
network learns), PBR texture sets (:meth:`NeuMipConfig.maps_spec`) or measured UBO2014 BTFs
(:meth:`NeuMipConfig.btf_spec`, reference space by measurement).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import QatConfig, SourceConfig
from ..config_io import ConfigError, config_to_dict, non_finite_fields, run_control_checks
from ..sources import source_spec

PRETRAIN_MATERIALS = ("leather", "fabric", "brick", "gravel", "grass")
"""Default pretraining set: procedural (leather, fabric) and photo-based (brick, gravel, grass)
materials; ``stone_tiles`` stays out of it, the unseen material of texture-only fitting."""
RUN_CONTROL = ("max_minutes", "budget_probe_steps", "val_every", "ckpt_every", "keep_checkpoints", "log_every",
               "out", "export", "device", "progress")
"""Fields that steer the engine, not the result (kept out of :meth:`NeuMipConfig.to_dict`);
``max_minutes`` can shorten the run, which the bundle records as ``total_steps``."""


@dataclass
class NeuMipConfig:
    """One NeuMIP run (pretraining over several materials, or fitting one)."""

    texture_resolution: int = 64
    """Side of each feature texture T_off / T_rgb, texels per material tile."""
    channels: int = 12
    """Features per texture (seed 000: 12)."""
    hidden: int = 64
    """Decoder hidden width (4 hidden layers; seed 000: 64)."""
    max_offset: float = 0.125
    """Largest |Δu| per axis in UV units (1/8: 8 texels at 64²; exact in float32). Covers the
    parallax around mid-height of the default materials up to θo = 75° (gravel: tan 75° x 0.04 / 2
    = 0.075). Fixed by the pretrained decoders: fitting reads it from the decoder file."""
    steps: int = 1000
    """Optimizer steps."""
    batch_size: int = 1024
    """Samples per material per step."""
    lr_textures: float = 2e-2
    """Peak learning rate of the feature textures."""
    lr_decoders: float = 2e-3
    """Peak learning rate of the universal decoders (pretraining and fine-tuning only)."""
    weight_decay_decoders: float = 1e-4
    """AdamW decoupled weight decay of the decoders (keeps weights small for INT8)."""
    warmup_steps: int = 50
    """Linear learning-rate warm-up, then one cosine decay to ``min_lr_ratio`` at ``steps``."""
    min_lr_ratio: float = 0.05
    """Learning rate at the last step, fraction of the peak."""
    qat: QatConfig = field(default_factory=lambda: QatConfig(quantize_start=0.6, finetune_start=0.9))
    """QAT phases of the decoders (fractions of ``steps``); when fitting textures only, the frozen
    decoders run in float before ``quantize_start`` and fake-quantized after it."""
    offset_start: float = 0.3
    """Fraction of the steps trained with Δu = 0 before the offsets switch on: the rgb texture
    first learns the material's image, so the lookup's slope (the offsets' only gradient) means
    something when they start (random early offsets scramble the texture instead)."""
    offset_penalty: float = 1.0
    """Weight of mean(|Δu⊥ / max_offset|²) / 2, the offsets' part across the view azimuth ωo.xy
    (never parallax; :func:`~.fit.cross_view_offset_penalty`), added to the L1 loss while the
    offsets are on (stone_tiles: offset / true-parallax correlation 0.39 and +1.7 dB on grazing
    views over Δu = 0, vs 0.12 and +0.6 dB penalizing all of Δu)."""
    offset_anchor: float = 1.0
    """Weight of mean((Δu(uv, ωo = +z) / max_offset)²), the offsets of each step's uv seen
    head-on, where the true parallax is 0 (:func:`~.fit.normal_view_offset_penalty`), added at
    every step, also while the offsets are off: without it the head-on offsets settled at
    -0.6 max_offset on stone_tiles (the bias-free offset network starts there)."""
    zero_offset: bool = False
    """Force Δu = 0 (the parallax ablation: same model without its offset network)."""
    map_resolution: int = 128
    """Texels of the synthetic material's maps (height, albedo, roughness)."""
    material_seed: int = 0
    """Seed of the materials' procedural content."""
    slice_resolution: int = 64
    """Pixels per side of each rendered (ωi, ωo) slice of the synthetic BTF."""
    n_views: int = 12
    """View directions ωo of the synthetic BTF."""
    n_lights: int = 12
    """Light directions ωi per view."""
    value_quantile: float = 0.999
    """Per material, BTF values are divided by this quantile of its training values."""
    val_samples: int = 32768
    """Held-out samples (held-out direction configurations) per material for the metrics."""
    seed: int = 0
    """Seed of initialization and sampling (same seed + config = same weights on CPU)."""
    max_minutes: float = 0.0
    """Wall-time budget of this invocation, minutes; 0: none. After ``budget_probe_steps`` timed
    steps the run's total step count is rescaled to what fits (at most ``steps``, plus a
    fine-tune's), so warm-up, the QAT phases and the decay all happen within it."""
    budget_probe_steps: int = 20
    """Steps timed before a ``max_minutes`` budget rescales the run (>= 1)."""
    val_every: int = 0
    """Optimizer steps between held-out validations (and ``export`` writes); 0: only at the
    last step (a validation renders ``val_samples`` per material through the INT8 bundle)."""
    ckpt_every: int = 250
    """Optimizer steps between checkpoints in ``out`` (and always at the last step)."""
    keep_checkpoints: int = 3
    """Most recent checkpoints kept in ``out`` (older ones are deleted)."""
    log_every: int = 50
    """Optimizer steps between loss records (history, progress bar)."""
    out: str = ""
    """Run directory: config.json, ckpt_*.pt (exact resume), history.json, loss.png; "": none
    (no checkpoints, nothing to resume)."""
    export: str = ""
    """Fitting: write the material's INT8 ``.nmat`` here at every validation, atomically; "":
    none (pretraining writes its decoder file through :func:`~.export.save_decoders`)."""
    device: str = "cpu"
    """"cpu" (the shipped assets' bit-for-bit determinism), "auto" (CUDA if available), "cuda"
    or "cuda:N"; torchrun sets one GPU per process."""
    progress: bool = True
    """Show a rich progress bar (main process, terminals only)."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values out of range."""
        bad: list[str] = []
        checks = [
            (self.texture_resolution >= 2 and 1 <= self.channels <= 124 and 1 <= self.hidden <= 128,
             "texture_resolution >= 2, channels in [1, 124], hidden in [1, 128]"),
            (self.max_offset > 0, "max_offset must be > 0 (UV units)"),
            (self.steps >= 1 and self.batch_size >= 1 and self.val_samples >= 1,
             "steps, batch_size and val_samples must be >= 1"),
            (self.lr_textures > 0 and self.lr_decoders > 0, "learning rates must be > 0"),
            (0 <= self.min_lr_ratio <= 1 and self.warmup_steps >= 0, "min_lr_ratio in [0, 1], warmup_steps >= 0"),
            (0 < self.qat.quantize_start <= self.qat.finetune_start <= 1,
             "need 0 < qat.quantize_start <= qat.finetune_start <= 1"),
            (0 < self.value_quantile <= 1, "value_quantile must be in (0, 1]"),
            (0 <= self.offset_start < 1 and self.offset_penalty >= 0 and self.offset_anchor >= 0,
             "offset_start in [0, 1), offset_penalty >= 0, offset_anchor >= 0"),
            *run_control_checks(self),
        ]
        bad += [msg for ok, msg in checks if not ok]
        infinite = non_finite_fields(self)
        if infinite:
            bad.append(f"not finite (NaN or infinity): {', '.join(infinite)}")
        if bad:
            raise ConfigError("invalid NeuMIP config: " + "; ".join(bad))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form for provenance: every field but :data:`RUN_CONTROL` (the run
        directory's ``config.json`` holds them all)."""
        return {k: v for k, v in config_to_dict(self).items() if k not in RUN_CONTROL}

    def material_spec(self, name: str) -> dict[str, Any]:
        """The data-source spec (:mod:`neumat.train.sources`) of registry material ``name``: point
        values only (``lod_fraction`` 0: NeuMIP reads no footprint, so a prefiltered sample would
        be taken for the value at its box's centre)."""
        return source_spec(SourceConfig(
            kind="material", name=name, resolution=self.map_resolution, seed=self.material_seed,
            uv_space="reference", slice_resolution=self.slice_resolution, n_views=self.n_views,
            n_lights=self.n_lights, lod_fraction=0.0))

    def maps_spec(self, folder: str | Path, height_scale: float | None = None) -> dict[str, Any]:
        """The data-source spec of a PBR texture set in ``folder`` (as ``neumat train --maps``
        reads it; ``height_scale`` in UV units, default :class:`SourceConfig`'s), in the
        ``"reference"`` uv space NeuMIP's offsets are learned for, maps at ``map_resolution``."""
        extra = {} if height_scale is None else {"height_scale": float(height_scale)}
        return source_spec(SourceConfig(
            kind="maps", path=str(folder), resolution=self.map_resolution, uv_space="reference",
            slice_resolution=self.slice_resolution, n_views=self.n_views, n_lights=self.n_lights,
            lod_fraction=0.0, **extra))

    def btf_spec(self, path: str | Path) -> dict[str, Any]:
        """The data-source spec of a measured UBO2014 BTF file (reference uv space by measurement)."""
        return source_spec(SourceConfig(kind="btf", path=str(path)))
