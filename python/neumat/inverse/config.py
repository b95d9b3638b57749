"""Configuration of MVInverse (seed 002): the network (:class:`ModelConfig`), its training
(:class:`InverseTrainConfig`) and its consistency finetuning (:class:`FinetuneConfig`), one
docstring per field.

:meth:`ModelConfig.full` is the seed's network — a DINOv2 ViT-L/14 encoder with 4 registers
(Pi3's, built by timm), Pi3's alternating-attention decoder of 18 alternating blocks (each a
frame-wise then a global attention block: the 36 transformer blocks of Pi3's decoder, so Pi3's
weights load one to one), five DPT heads and a ResNeXt-101 32x8d (WSL) detail encoder —
and :meth:`ModelConfig.tiny` the same architecture at widths that run in milliseconds on a
CPU (tests). Files and ``--set`` overrides work as for ``neumat train``
(:mod:`neumat.train.config_io`: unknown keys are errors listing the valid ones).

The seed's learning rate and albedo warm-up length were lost from its text (the value after
"initial learning rate of" is missing; "several epochs"): the defaults here are stated guesses.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..train.config_io import ConfigError, config_to_dict, non_finite_fields, run_control_checks
from .intrinsics import Intrinsic

PATCH = 14
"""Encoder patch size, pixels (DINOv2 /14): input heights and widths are multiples of it."""
RUN_CONTROL = ("max_minutes", "budget_probe_steps", "val_every", "ckpt_every", "keep_checkpoints", "log_every",
               "out", "export", "device", "progress")
"""Fields that steer the engine (:mod:`neumat.train.engine`), not the result."""


@dataclass
class ModelConfig:
    """The MVInverse network (:class:`~.model.MVInverse`); defaults: the seed's full size."""

    encoder: str = "vit_large_patch14_reg4_dinov2"
    """timm architecture of the DINOv2 encoder (Pi3's encoder: ViT-L/14 with 4 registers)."""
    encoder_dim: int = 1024
    """Encoder token width."""
    encoder_depth: int = 24
    """Encoder transformer blocks."""
    encoder_heads: int = 16
    """Encoder attention heads."""
    encoder_img_size: int = 518
    """Image side the encoder's absolute position embedding is laid out for, pixels (37 x 37
    patches, DINOv2's and Pi3's); other sizes resample it (timm's dynamic image size)."""
    dim: int = 1024
    """Decoder token width (Pi3: 1024, the encoder's: tokens pass unprojected)."""
    heads: int = 16
    """Decoder attention heads (Pi3: 16, head width 64)."""
    mlp_ratio: float = 4.0
    """Decoder MLP hidden width / ``dim``."""
    pairs: int = 18
    """Alternating blocks: each is a frame-wise then a global attention block (seed §6: 18,
    following Pi3, whose decoder holds these 36 blocks)."""
    registers: int = 5
    """Register tokens prepended to every view in the decoder (Pi3: 5; the same learned tokens
    for every view, so no view is special: permutation equivariance)."""
    rope_freq: float = 100.0
    """Base frequency of the decoder's 2D rotary position embedding (Pi3's ``rope100``)."""
    layer_scale: float = 0.01
    """Initial LayerScale of the decoder's residual branches (Pi3: 0.01)."""
    head_features: int = 256
    """Width of the DPT heads' fusion path (DPT / VGGT: 256)."""
    head_channels: tuple[int, int, int, int] = (256, 512, 1024, 1024)
    """DPT reassemble widths of the four levels at strides 14/4, 14/2, 14 and 28 pixels."""
    head_layers: tuple[int, int, int, int] = (3, 8, 12, 17)
    """Alternating blocks (0-based) whose outputs feed the four DPT levels: VGGT's (4, 11, 17,
    23) of 24 blocks rescaled to 18 (the seed does not give them)."""
    head_hidden: int = 32
    """Width of each head's last 3x3 convolution before the 1x1 output (DPT / VGGT: 32)."""
    resnext: str = "resnext101_32x8d"
    """timm architecture of the auxiliary multi-resolution detail encoder (seed §6: ResNeXt-101
    32x8d with the WSL weights of Mahajan et al. 2018)."""
    resnext_layers: tuple[int, int, int, int] = (3, 4, 23, 3)
    """Bottleneck blocks per ResNeXt stage."""
    resnext_widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    """Bottleneck base widths per stage (outputs: 4x: 256, 512, 1024, 2048 channels)."""
    resnext_cardinality: int = 32
    """Groups of the ResNeXt 3x3 convolutions."""
    resnext_base_width: int = 8
    """Channels per group of the ResNeXt 3x3 convolutions at width 64."""
    fused_heads: str = "albedo,shading"
    """Comma-separated maps whose heads fuse the ResNeXt features (seed §3.2, Fig. 7 / 9; the
    authors' released model fuses them into albedo and shading only)."""

    image_skip: bool = False
    """Feed the normalized input image, at full resolution, to every head's last convolutions
    (concatenated to the upsampled DPT feature): per-pixel detail finer than the DPT's finest
    level (stride 3.5 px), which matters at the tiny model's 28-84 px images (not the seed's;
    ``tests/test_inverse_baselines.py`` measures it)."""

    @classmethod
    def full(cls) -> "ModelConfig":
        """The seed's network (ViT-L/14 encoder, 18 alternating blocks, ResNeXt-101 32x8d)."""
        return cls()

    @classmethod
    def tiny(cls) -> "ModelConfig":
        """The same architecture at tiny widths and depths (tests, CPU smoke runs)."""
        return cls(encoder_dim=32, encoder_depth=2, encoder_heads=2, encoder_img_size=56, dim=32, heads=2,
                   pairs=2, registers=2, head_features=16, head_channels=(8, 16, 32, 32), head_layers=(0, 0, 1, 1),
                   head_hidden=8, resnext_layers=(1, 1, 1, 1), resnext_widths=(4, 8, 16, 32),
                   resnext_cardinality=2, resnext_base_width=32)

    def fused(self) -> tuple[Intrinsic, ...]:
        """The maps whose heads fuse ResNeXt features (:attr:`fused_heads`)."""
        return tuple(Intrinsic(name.strip()) for name in self.fused_heads.split(",") if name.strip())

    def problems(self) -> list[str]:
        """What is out of range (empty when valid)."""
        bad = []
        if self.encoder_dim % self.encoder_heads or self.dim % self.heads or (self.dim // self.heads) % 4:
            bad.append("encoder_dim must divide by encoder_heads, dim by heads, and the head width by 4 (2D RoPE)")
        if self.dim != self.encoder_dim:
            bad.append("dim must equal encoder_dim (Pi3 feeds the encoder's tokens to the decoder as they are)")
        if min(self.encoder_depth, self.pairs, self.registers, self.head_features, self.head_hidden,
               *self.head_channels, *self.resnext_layers, *self.resnext_widths) < 1:
            bad.append("depths, widths, pairs and registers must be >= 1")
        if self.encoder_img_size % PATCH:
            bad.append(f"encoder_img_size must be a multiple of {PATCH}")
        if not all(0 <= k < self.pairs for k in self.head_layers):
            bad.append(f"head_layers must be alternating-block indices in [0, {self.pairs})")
        try:
            self.fused()
        except ValueError:
            bad.append(f"fused_heads: comma-separated names from {[m.value for m in Intrinsic]}")
        return bad


@dataclass
class InverseTrainConfig:
    """One MVInverse training run: pretraining (``steps``), then heads only (``heads_steps``)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """The network."""
    pretrained: str = ""
    """Folder of pretrained weights loaded before the first step (:func:`~.weights.load_pretrained_dir`:
    ``pi3.*`` or ``dinov2.*``, and ``resnext.*``; seed §6: Pi3's encoder and decoder, the WSL
    ResNeXt); "": random initialization. A resumed run takes its weights from its checkpoint."""
    steps: int = 80_000
    """Pretraining steps (seed §7: 80 epochs x 1000 iterations): DINOv2 and ResNeXt encoders
    frozen; the alternating-attention decoder and the heads train."""
    heads_steps: int = 50_000
    """Steps of the second stage (seed §7: 50 epochs x 1000): every attention block frozen too,
    only the heads train, at ``heads_long_side``."""
    long_side: int = 518
    """Long image side in pretraining, pixels (multiple of 14; the short side is sampled)."""
    heads_long_side: int = 770
    """Long image side in the heads-only stage, pixels (multiple of 14)."""
    min_views: int = 2
    """Fewest views of one scene in a sample (dynamic batches, seed §7 after VGGT)."""
    max_views: int = 12
    """Most views of one scene in a sample."""
    max_images: int = 12
    """Images per process and step: a step draws V in [min_views, max_views] and trains
    max_images // V scenes of V views each."""
    lr: float = 1e-4
    """Adam's initial learning rate (the seed's value is missing from its text; 1e-4 is a guess
    in the range VGGT / Pi3 train at). Each stage starts a fresh Adam at it."""
    warmup_steps: int = 0
    """Linear learning-rate warm-up per stage, steps."""
    min_lr_ratio: float = 0.1
    """Cosine decay of each stage down to this fraction of ``lr`` at its last step (1: constant)."""
    albedo_warmup: float = 0.0625
    """Fraction of the pretraining steps whose albedo loss is plain MSE before the
    scale-invariant one (seed §7: "several epochs"; 5 of 80 here, a guess)."""
    relative_albedo: bool = False
    """Albedo MSE term divided by each view's albedo variance (:func:`~.losses.relative_mse`)
    instead of the seed's plain mean: low-contrast views weigh as much as high-contrast ones, as
    in the per-view albedo PSNR of :mod:`.evaluate` (not the seed's)."""
    msg_scales: int = 4
    """Scales of the multi-scale gradient loss (eq. 3; 4 as MegaDepth / Careaga & Aksoy)."""
    albedo_low: float = 0.01
    """Albedo targets whose every channel is below this are masked out (seed §7)."""
    albedo_high: float = 0.99
    """Albedo targets whose every channel is above this are masked out (seed §7)."""
    loss_weights: tuple[float, float, float, float, float] = (1.0, 1.0, 1.0, 1.0, 1.0)
    """λ of albedo, metallic, roughness, normal, shading in eq. 5 (seed: all 1)."""
    seed: int = 0
    """Seed of initialization and of the per-step draws (views per scene, data)."""
    max_minutes: float = 0.0
    """Wall-time budget of this invocation, minutes; 0: none (the engine rescales both stages)."""
    budget_probe_steps: int = 20
    """Steps timed before a ``max_minutes`` budget rescales the run (>= 1)."""
    val_every: int = 0
    """Steps between validations; 0: only at the last step."""
    ckpt_every: int = 1000
    """Steps between checkpoints in ``out`` (and always at the last step)."""
    keep_checkpoints: int = 3
    """Most recent checkpoints kept in ``out``."""
    log_every: int = 50
    """Steps between loss records (history, progress bar)."""
    out: str = ""
    """Run directory (config.json, ckpt_*.pt, history.json); "": none."""
    export: str = ""
    """Unused by this producer (it writes maps, not a bundle); kept for the engine's contract."""
    device: str = "auto"
    """"auto" (CUDA if available), "cpu", "cuda" or "cuda:N"; a launcher (accelerate / torchrun)
    gives every process its GPU."""
    progress: bool = True
    """Show a progress bar (main process, terminals only)."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values out of range."""
        bad = [f"model: {p}" for p in self.model.problems()]
        checks = [
            (self.steps >= 1 and self.heads_steps >= 0, "steps >= 1, heads_steps >= 0"),
            (self.long_side % PATCH == 0 and self.heads_long_side % PATCH == 0 and self.long_side >= PATCH,
             f"long_side and heads_long_side must be multiples of {PATCH}"),
            (2 <= self.min_views <= self.max_views <= self.max_images,
             "need 2 <= min_views <= max_views <= max_images (one view is not a multi-view sample)"),
            (self.lr > 0 and 0 <= self.min_lr_ratio <= 1 and self.warmup_steps >= 0,
             "lr > 0, min_lr_ratio in [0, 1], warmup_steps >= 0"),
            (0 <= self.albedo_warmup <= 1 and self.msg_scales >= 1, "albedo_warmup in [0, 1], msg_scales >= 1"),
            (0 <= self.albedo_low < self.albedo_high <= 1, "need 0 <= albedo_low < albedo_high <= 1"),
            (min(self.loss_weights) >= 0, "loss_weights must be >= 0"),
            *run_control_checks(self),
        ]
        bad += [msg for ok, msg in checks if not ok]
        infinite = non_finite_fields(self)
        if infinite:
            bad.append(f"not finite (NaN or infinity): {', '.join(infinite)}")
        if bad:
            raise ConfigError("invalid MVInverse training config: " + "; ".join(bad))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form without :data:`RUN_CONTROL` (what the result depends on)."""
        return {k: v for k, v in config_to_dict(self).items() if k not in RUN_CONTROL}

    @classmethod
    def tiny(cls, **changes: Any) -> "InverseTrainConfig":
        """A CPU-sized run of the tiny network (tests): 28-pixel images, 2-4 views."""
        base = cls(model=ModelConfig.tiny(), steps=20, heads_steps=10, long_side=28, heads_long_side=42,
                   min_views=2, max_views=4, max_images=4, lr=1e-3, ckpt_every=0, log_every=1, device="cpu",
                   progress=False)
        return replace(base, **changes)


@dataclass
class FinetuneConfig:
    """Consistency finetuning of a trained MVInverse on unlabeled videos (seed §3.3,
    :mod:`.finetune`); each step trains on one clip of adjacent frames."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """The network (the pretrained run's, copied so the finetuned checkpoint loads alone)."""
    weights: str = ""
    """The pretrained checkpoint (``ckpt_*.pt`` of a ``neumat inverse train`` run): the start and
    the frozen anchor of eq. 6; a resumed run reads it again."""
    steps: int = 2000
    """Optimizer steps (the seed does not give its finetuning length; a guess)."""
    lr: float = 1e-5
    """Adam's learning rate (a tenth of the pretraining guess: finetuning; the seed's is lost)."""
    warmup_steps: int = 0
    """Linear learning-rate warm-up, steps."""
    min_lr_ratio: float = 1.0
    """Cosine decay down to this fraction of ``lr`` at the last step (1: constant)."""
    groups: str = "decoder,heads"
    """Comma-separated parameter groups trained (:data:`~.model.GROUPS`); the others stay frozen
    (default: as in pretraining, the encoders frozen)."""
    clip_frames: int = 4
    """Adjacent frames per training clip (one forward pass; >= 2, at most 12 as in pretraining)."""
    consistency_weight: float = 1.0
    """λ of eq. 6 (``L_anchor + λ L_cons``; the seed's value is lost)."""
    long_side: int = 518
    """Long side the frames are resized to, pixels (multiple of 14; the seed's 518)."""
    flow: str = "dis"
    """Optical flow method (:data:`~.flow.FLOW_METHODS`: ``dis`` or ``tvl1``)."""
    seed: int = 0
    """Seed of the clip draws."""
    max_minutes: float = 0.0
    """Wall-time budget of this invocation, minutes; 0: none."""
    budget_probe_steps: int = 20
    """Steps timed before a ``max_minutes`` budget rescales the run (>= 1)."""
    val_every: int = 0
    """Steps between validations (there are none: 0)."""
    ckpt_every: int = 500
    """Steps between checkpoints in ``out`` (and always at the last step)."""
    keep_checkpoints: int = 3
    """Most recent checkpoints kept in ``out``."""
    log_every: int = 10
    """Steps between loss records (history, progress bar)."""
    out: str = ""
    """Run directory (config.json, ckpt_*.pt, history.json); "": none."""
    export: str = ""
    """Unused (the result is a checkpoint); kept for the engine's contract."""
    device: str = "auto"
    """"auto" (CUDA if available), "cpu", "cuda" or "cuda:N"."""
    progress: bool = True
    """Show a progress bar (main process, terminals only)."""

    def trained_groups(self) -> tuple[str, ...]:
        """:attr:`groups` as a tuple of names."""
        return tuple(g.strip() for g in self.groups.split(",") if g.strip())

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values out of range."""
        from .flow import FLOW_METHODS
        from .model import GROUPS

        bad = [f"model: {p}" for p in self.model.problems()]
        checks = [
            (self.steps >= 1 and self.lr > 0 and self.warmup_steps >= 0 and 0 <= self.min_lr_ratio <= 1,
             "steps >= 1, lr > 0, warmup_steps >= 0, min_lr_ratio in [0, 1]"),
            (bool(self.trained_groups()) and set(self.trained_groups()) <= set(GROUPS),
             f"groups: comma-separated names from {GROUPS}"),
            (2 <= self.clip_frames <= 12, "clip_frames in [2, 12]"),
            (self.consistency_weight >= 0, "consistency_weight >= 0"),
            (self.long_side >= PATCH and self.long_side % PATCH == 0, f"long_side: a multiple of {PATCH}"),
            (self.flow in FLOW_METHODS, f"flow: one of {sorted(FLOW_METHODS)}"),
            *run_control_checks(self),
        ]
        bad += [msg for ok, msg in checks if not ok]
        infinite = non_finite_fields(self)
        if infinite:
            bad.append(f"not finite (NaN or infinity): {', '.join(infinite)}")
        if bad:
            raise ConfigError("invalid MVInverse finetuning config: " + "; ".join(bad))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form without :data:`RUN_CONTROL` (what the result depends on)."""
        return {k: v for k, v in config_to_dict(self).items() if k not in RUN_CONTROL}
