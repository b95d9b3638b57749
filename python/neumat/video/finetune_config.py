"""Configuration of a Wan2.1 finetuning run (:mod:`neumat.video.finetune`): one dataclass, one
docstring per field. Loading, saving and ``--set`` overrides go through
:mod:`neumat.train.config_io` (unknown keys are errors listing the valid ones); the resolved
config is written as ``config.json`` beside the checkpoints and embedded in each of them.

Defaults follow the seed (VideoNeuMat §3.2): AdamW at 1e-5, LoRA rank 32 or full finetuning
with classifier-free-guidance caption dropout 0.1, the base model's flow-matching objective,
material-only and filtered captions mixed equally.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..train.config_io import ConfigError, non_finite_fields

MODES = ("lora", "full")
"""``mode`` values: low-rank adapters on the attention projections, or every DiT weight."""
PRECISIONS = ("fp32", "bf16")
"""``precision`` values (see :attr:`FinetuneConfig.precision`)."""
CAPTION_STYLES = ("mix", "material_only", "filtered")
"""``caption_style`` values: which caption of a clip's ``caption.json`` a step trains on."""
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
"""Attention projections that get LoRA adapters (self- and cross-attention of every block)."""


@dataclass
class FinetuneConfig:
    """One finetuning run: what is trained, how, and when checkpoints are written."""

    mode: str = "lora"
    """``"lora"``: rank-``lora_rank`` adapters on :data:`LORA_TARGETS`, base DiT frozen;
    ``"full"``: every DiT weight trained. VAE, text and image encoders are always frozen."""
    lora_rank: int = 32
    """LoRA rank r (seed: 32)."""
    lora_alpha: float = 32.0
    """LoRA scale numerator: the adapter adds (alpha / r) * B A x; alpha = r gives scale 1."""
    lr: float = 1e-5
    """AdamW learning rate, constant (seed: 1e-5 for LoRA and full finetuning)."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam moment decay rates (beta1, beta2)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value before each step (0: no clipping)."""
    caption_dropout: float = -1.0
    """Probability that a sample trains on the empty caption (classifier-free guidance dropout,
    so negative prompts keep working). -1: the seed's choice, 0.1 for ``full`` and 0 for
    ``lora`` (adapters leave the unconditional model intact)."""
    caption_style: str = "mix"
    """Caption a sample trains on (:data:`CAPTION_STYLES`); ``"mix"`` draws material-only or
    filtered with probability 1/2 each, as the seed does."""
    steps: int = 1000
    """Optimizer steps of the whole run (a resumed run continues to this total)."""
    batch_size: int = 1
    """Clips per process per micro-step; the global batch is batch_size x processes x grad_accum."""
    grad_accum: int = 1
    """Micro-steps whose gradients are summed (averaged) into one optimizer step."""
    precision: str = "fp32"
    """``"fp32"``: everything float32. ``"bf16"``: VAE and encoders stored in bfloat16, the DiT
    runs under bfloat16 autocast with float32 trainable weights (a LoRA run also stores the
    frozen base DiT in bfloat16). Pure-bfloat16 weights are not offered: AdamW steps at 1e-5
    are below bfloat16's resolution for most weights and would be lost."""
    gradient_checkpointing: bool = True
    """Recompute each DiT block's activations in the backward pass (memory for ~30 % time)."""
    trajectory: str = "video"
    """The ``<trajectory_name>`` clip folders trained on (the two-phase video; the dataset's
    ``cross`` folders are the LRM's)."""
    resolution: int = 0
    """Train at this frame side in pixels (frames resized, square clips only; a multiple of 16);
    0: the clips' own size."""
    max_text_tokens: int = 512
    """Text tokens per caption (Wan2.1's 512; generation uses the same)."""
    seed: int = 0
    """Seed of clip order, noise, timesteps, caption choice and dropout (each drawn from a stream
    keyed by (seed, sample index), so a resumed run draws exactly what an unbroken one does)."""
    checkpoint_every: int = 100
    """Write a checkpoint every this many optimizer steps (and at the end)."""
    keep_checkpoints: int = 2
    """Checkpoints kept on disk (older ones are deleted)."""
    log_every: int = 10
    """Log the mean loss every this many optimizer steps."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming every field out of range."""
        infinite = non_finite_fields(self)
        checks = [
            (not infinite, f"not finite (NaN or infinity): {', '.join(infinite)}"),
            (self.mode in MODES, f"mode must be one of {', '.join(MODES)}, got {self.mode!r}"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
            (self.caption_style in CAPTION_STYLES,
             f"caption_style must be one of {', '.join(CAPTION_STYLES)}, got {self.caption_style!r}"),
            (1 <= self.lora_rank <= 4096 and self.lora_alpha > 0, "lora_rank must be in [1, 4096], lora_alpha > 0"),
            (self.lr > 0 and self.weight_decay >= 0, "lr must be > 0, weight_decay >= 0"),
            (all(0 <= b < 1 for b in self.betas), f"betas must both be in [0, 1), got {list(self.betas)}"),
            (self.grad_clip >= 0, "grad_clip must be >= 0 (0: no clipping)"),
            (self.caption_dropout == -1.0 or 0 <= self.caption_dropout <= 1,
             "caption_dropout must be in [0, 1], or -1 for the seed's choice"),
            (self.steps >= 1 and self.batch_size >= 1 and self.grad_accum >= 1,
             "steps, batch_size and grad_accum must be >= 1"),
            (self.resolution >= 0 and self.resolution % 16 == 0,
             f"resolution must be 0 or a multiple of 16 pixels, got {self.resolution}"),
            (bool(self.trajectory) and "/" not in self.trajectory, "trajectory must be a folder name"),
            (1 <= self.max_text_tokens <= 4096, "max_text_tokens must be in [1, 4096]"),
            (self.checkpoint_every >= 1 and self.keep_checkpoints >= 1 and self.log_every >= 1,
             "checkpoint_every, keep_checkpoints and log_every must be >= 1"),
        ]
        errors = [message for ok, message in checks if not ok]
        if errors:
            raise ConfigError("invalid finetune config: " + "; ".join(errors))

    @property
    def dropout(self) -> float:
        """The caption dropout probability in effect (``caption_dropout`` with -1 resolved)."""
        if self.caption_dropout >= 0:
            return self.caption_dropout
        return 0.1 if self.mode == "full" else 0.0
