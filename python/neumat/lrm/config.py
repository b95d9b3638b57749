"""Configuration of the LRM (VideoNeuMat seed §4.3): the network (:class:`LrmModelConfig`) and its
training run (:class:`LrmTrainConfig`), one docstring per field.

:meth:`LrmModelConfig.full` is the seed's network: the Wan2.1-T2V-1.3B DiT (30 blocks of width
1536, 12 heads of 128, FFN 8960, UMT5 text width 4096) over the Wan2.1 VAE's latents (base width
96, multipliers 1-2-4-4, 2 residual blocks per stage), 17 input frames of 1024² and 12 + 12
feature channels at 1024² texels. :meth:`LrmModelConfig.tiny` is the same architecture at the
widths of :mod:`neumat.video.wan_tiny` (a tiny Wan folder written there loads into it), which
runs in milliseconds on a CPU. Files and ``--set`` overrides work as for ``neumat train``
(:mod:`neumat.train.config_io`: unknown keys are errors listing the valid ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..train.config_io import ConfigError, config_to_dict, non_finite_fields, run_control_checks
from ..video.wan_tiny import TINY_TEXT_DIM

PRECISIONS = ("fp32", "bf16")
"""Autocast precision of the DiT and the upsampler (decoders and renderer stay float32)."""
PERCEPTUAL = ("auto", "msssim", "lpips")
"""Perceptual loss term (:mod:`.loss`): ``auto`` = LPIPS when ``lpips_weights`` is given, else the
MS-SSIM substitute."""
RUN_CONTROL = ("max_minutes", "budget_probe_steps", "val_every", "ckpt_every", "keep_checkpoints", "log_every",
               "out", "export", "device", "progress")
"""Fields that steer the engine (:mod:`neumat.train.engine`), not the result."""
SPATIAL_MULTIPLE = 16
"""Frame sides must be multiples of this: the VAE downsamples 8x, the DiT patches 2x2 latents."""


@dataclass
class LrmModelConfig:
    """The LRM network (:class:`~.model.LrmNetwork`); defaults: the seed's full size."""

    dit_layers: int = 30
    """DiT transformer blocks (Wan2.1 1.3B: 30)."""
    dit_heads: int = 12
    """Attention heads per block."""
    dit_head_dim: int = 128
    """Width of one head (token width = heads x head_dim = 1536)."""
    dit_ffn: int = 8960
    """Feed-forward hidden width."""
    dit_text_dim: int = 4096
    """Width of the text-encoder states the cross-attention reads (UMT5-XXL: 4096). The LRM has
    no caption: it feeds ``text_tokens`` learned vectors of this width instead."""
    dit_freq_dim: int = 256
    """Sinusoidal time-embedding width (the LRM always passes timestep 0: clean latents)."""
    dit_rope_max_seq_len: int = 1024
    """Positions per axis of the rotary embedding table (latent frames, rows, columns / 2)."""
    text_tokens: int = 1
    """Learned stand-in text tokens (zeros at start) the cross-attention attends to."""
    vae_base_dim: int = 96
    """Width of the VAE's first stage."""
    vae_dim_mult: tuple[int, int, int, int] = (1, 2, 4, 4)
    """Stage width multipliers (4 stages: 3 down/upsamplings, 8x in space)."""
    vae_res_blocks: int = 2
    """Residual blocks per VAE stage."""
    frames: int = 17
    """Input frames, uniformly spaced over the video (seed: 17 of 81); 4k + 1 for the causal VAE."""
    video_frames: int = 81
    """Frames of the trajectory video the inputs are taken from (and poses assumed for)."""
    frame_size: int = 1024
    """Side of the square input frames, pixels (a multiple of 16)."""
    texture_resolution: int = 1024
    """Side of T_off and T_rgb, texels: the upsampler's frame-sized output is resampled to it."""
    channels: int = 12
    """Features per texture (seed: 12 each; must match the universal decoders)."""
    residual: bool = True
    """Zero-initialised texture head (the upsampler's new ``conv_out``): the textures start as the
    flat texture of the head's bias — one mean texel, learned on the training materials only —
    and the rest of the head learns the spatial residual over it (:mod:`.model`); False:
    PyTorch's default initialisation of the head."""
    precision: str = "fp32"
    """``fp32`` or ``bf16`` autocast of the DiT and the upsampler (:data:`PRECISIONS`); the seed
    trains 256² at fp32 and 1024² at bf16."""

    @classmethod
    def full(cls, **changes: Any) -> LrmModelConfig:
        """The seed's network (Wan2.1-T2V-1.3B DiT and the Wan2.1 VAE), with ``changes``."""
        return replace(cls(), **changes)

    @classmethod
    def tiny(cls, **changes: Any) -> LrmModelConfig:
        """The architecture at the widths of :func:`neumat.video.wan_tiny.tiny_wan_components`
        (2 blocks of 2 heads x 16, VAE base 16, multipliers 1-1-1-1, 1 residual block), 32²
        frames and textures, with ``changes``."""
        small = dict(dit_layers=2, dit_heads=2, dit_head_dim=16, dit_ffn=64, dit_text_dim=TINY_TEXT_DIM,
                     dit_freq_dim=32, dit_rope_max_seq_len=64, vae_base_dim=16, vae_dim_mult=(1, 1, 1, 1),
                     vae_res_blocks=1, frame_size=32, texture_resolution=32)
        return replace(cls(), **{**small, **changes})

    def dit_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``diffusers.WanTransformer3DModel`` (Wan2.1 text-to-video layout)."""
        return dict(patch_size=(1, 2, 2), num_attention_heads=self.dit_heads, attention_head_dim=self.dit_head_dim,
                    in_channels=16, out_channels=16, text_dim=self.dit_text_dim, freq_dim=self.dit_freq_dim,
                    ffn_dim=self.dit_ffn, num_layers=self.dit_layers, cross_attn_norm=True,
                    qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=self.dit_rope_max_seq_len)

    def vae_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``diffusers.AutoencoderKLWan`` (Wan2.1 VAE, 16 latent channels)."""
        return dict(base_dim=self.vae_base_dim, z_dim=16, dim_mult=list(self.vae_dim_mult),
                    num_res_blocks=self.vae_res_blocks, attn_scales=[], temperal_downsample=[False, True, True],
                    dropout=0.0)

    def problems(self) -> list[str]:
        """What is out of range (empty when valid)."""
        checks = [
            (min(self.dit_layers, self.dit_heads, self.dit_head_dim, self.dit_ffn, self.dit_text_dim) >= 1,
             "dit_* sizes must be >= 1"),
            (self.dit_head_dim % 2 == 0 and self.dit_freq_dim % 2 == 0, "dit_head_dim and dit_freq_dim must be even"),
            (self.text_tokens >= 1 and self.vae_base_dim >= 1 and self.vae_res_blocks >= 1
             and min(self.vae_dim_mult) >= 1, "text_tokens, vae_base_dim, vae_res_blocks, vae_dim_mult must be >= 1"),
            (self.frames >= 5 and (self.frames - 1) % 4 == 0, "frames must be 4k + 1 >= 5 (Wan's causal VAE)"),
            (self.video_frames >= self.frames, "video_frames must be >= frames"),
            (self.frame_size >= SPATIAL_MULTIPLE and self.frame_size % SPATIAL_MULTIPLE == 0,
             f"frame_size must be a multiple of {SPATIAL_MULTIPLE} (pixels)"),
            (self.frame_size // 16 <= self.dit_rope_max_seq_len, "frame_size / 16 exceeds dit_rope_max_seq_len"),
            (self.texture_resolution >= 2 and 1 <= self.channels <= 124, "texture_resolution >= 2, channels in [1, 124]"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}"),
        ]
        return [msg for ok, msg in checks if not ok]

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values out of range."""
        bad = self.problems()
        if bad:
            raise ConfigError("invalid LRM model config: " + "; ".join(bad))


@dataclass
class LrmTrainConfig:
    """One LRM training run (:mod:`.train`)."""

    model: LrmModelConfig = field(default_factory=LrmModelConfig.tiny)
    """The network; default the tiny one (``--set`` any field, or a config file with the full one)."""
    steps: int = 2000
    """Optimizer steps."""
    materials_per_step: int = 2
    """Materials per optimizer step over all processes (a multiple of the process count)."""
    render_frames: int = 8
    """Frames rendered per material and step, drawn uniformly from the 81 trajectory + 81 cross
    frames (the seed renders all 162; a subset keeps a CPU step cheap; the loss is unbiased)."""
    val_frames: int = 16
    """Frames per validation material (evenly spread over the 162; rendered, scored, saved)."""
    val_materials: int = 2
    """Materials held out of training (the last ones by name) and validated on; 0: validate
    on the first training materials."""
    lr: float = 1e-4
    """Peak learning rate of the DiT, the upsampler and the stand-in text tokens."""
    lr_decoders: float = 1e-4
    """Peak learning rate of the universal NeuMIP decoders (trained with the LRM, seed Table 2)."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay of the network."""
    warmup_steps: int = 100
    """Linear learning-rate warm-up, then one cosine decay to ``min_lr_ratio`` at ``steps``."""
    min_lr_ratio: float = 0.1
    """Learning rate at the last step, fraction of the peak."""
    grad_clip: float = 1.0
    """Largest global gradient norm (clipped above it); 0: no clipping."""
    gradient_checkpointing: bool = False
    """Recompute the DiT blocks' activations in the backward pass (full size at 1024²)."""
    perceptual_weight: float = 0.1
    """Weight of the perceptual term (seed: LPIPS x 0.1)."""
    perceptual: str = "auto"
    """:data:`PERCEPTUAL`: which perceptual term (:mod:`.loss`)."""
    lpips_weights: str = ""
    """Local file of a full ``lpips.LPIPS`` state dict (backbone + linear layers); "": none."""
    value_scale: float = 0.5
    """BTF value of decoder output 1.0 in the bundles the LRM writes (one for all materials: the
    frames' 8-bit range at the trajectory's irradiance π holds BTF values up to ~1/π ≈ 0.32 at
    the centre, more towards the edges)."""
    decoders: str = ""
    """Universal decoder file to start from ("": the shipped assets/neumip/universal_mlps.safetensors)."""
    wan_weights: str = ""
    """Local diffusers Wan2.1 folder (transformer/, vae/) to initialise the DiT and the VAE from;
    "": random initialisation (seeded)."""
    cache_latents: bool = True
    """Keep each material's VAE latents in memory after their first encoding (frozen VAE)."""
    seed: int = 0
    """Seed of initialisation and of the per-step material and frame draws."""
    max_minutes: float = 0.0
    """Wall-time budget of this invocation, minutes; 0: none (see :mod:`neumat.train.engine`)."""
    budget_probe_steps: int = 10
    """Steps timed before a ``max_minutes`` budget rescales the run."""
    val_every: int = 0
    """Optimizer steps between validations (images and metrics saved); 0: only at the end."""
    ckpt_every: int = 200
    """Optimizer steps between checkpoints in ``out`` (and always at the last step)."""
    keep_checkpoints: int = 3
    """Most recent checkpoints kept."""
    log_every: int = 10
    """Optimizer steps between loss records."""
    out: str = ""
    """Run directory: config.json, ckpt_*.pt, history.json, loss.png, val/, weights/."""
    export: str = ""
    """Unused by the LRM (its result is a weights folder, :mod:`.weights`); must stay ""."""
    device: str = "auto"
    """"auto", "cpu", "cuda" or "cuda:N" (torchrun / accelerate set one GPU per process)."""
    progress: bool = True
    """Show a progress bar (main process, terminals only)."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values out of range."""
        bad = self.model.problems()
        checks = [
            (self.steps >= 1 and self.materials_per_step >= 1 and self.render_frames >= 1 and self.val_frames >= 1,
             "steps, materials_per_step, render_frames and val_frames must be >= 1"),
            (self.val_materials >= 0, "val_materials must be >= 0"),
            (self.lr > 0 and self.lr_decoders >= 0 and self.weight_decay >= 0 and self.grad_clip >= 0,
             "lr > 0, lr_decoders >= 0 (0: decoders frozen), weight_decay >= 0, grad_clip >= 0"),
            (0 <= self.min_lr_ratio <= 1 and self.warmup_steps >= 0, "min_lr_ratio in [0, 1], warmup_steps >= 0"),
            (self.perceptual_weight >= 0 and self.perceptual in PERCEPTUAL,
             f"perceptual_weight >= 0, perceptual one of {PERCEPTUAL}"),
            (self.perceptual != "lpips" or bool(self.lpips_weights), "perceptual 'lpips' needs lpips_weights (a local file)"),
            (self.value_scale > 0, "value_scale must be > 0"),
            (self.export == "", "export is unused by the LRM (the weights folder is <out>/weights)"),
            *run_control_checks(self),
        ]
        bad += [msg for ok, msg in checks if not ok]
        infinite = non_finite_fields(self)
        if infinite:
            bad.append(f"not finite (NaN or infinity): {', '.join(infinite)}")
        if bad:
            raise ConfigError("invalid LRM config: " + "; ".join(bad))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form for provenance: every field but :data:`RUN_CONTROL`."""
        return {k: v for k, v in config_to_dict(self).items() if k not in RUN_CONTROL}
