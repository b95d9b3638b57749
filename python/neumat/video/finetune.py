"""Finetuning Wan2.1 into a "virtual gonioreflectometer" (VideoNeuMat seed, §3.2): text-to-video
(``WanPipeline``) or image-to-video (``WanImageToVideoPipeline``) weights, read from a local
folder, trained on posed trajectory videos (:mod:`.clips`) with the base model's flow-matching
objective (:mod:`.wan_objective`). Only the DiT trains — LoRA adapters on its attention
projections or every weight (:class:`~.finetune_config.FinetuneConfig`); VAE, text and image
encoders stay frozen.

Checkpoints ``<out>/ckpt_<step:08d>.pt`` (:mod:`neumat.train.checkpoint`, ``model_kind``
``"wan-finetune"``) hold the trained weights (adapters, or the whole DiT), the AdamW state,
the step, the random generators and the loss history; every random draw of a sample is keyed
by (seed, sample index), so N steps in one go and k steps + resume + N-k steps give the same
weights bit for bit on one device. ``<out>/final/`` (:mod:`.finetuned`) is the finished model
that ``neumat video generate --finetuned`` loads.

Multi-GPU runs go through Hugging Face accelerate (DDP; each process trains ``batch_size``
clips, gradients are averaged; clips, noise and timesteps depend only on the global sample
index, so 2 processes x batch 1 train on what 1 process x batch 2 does)::

    accelerate launch --multi_gpu --num_processes 4 \\
        -m neumat video finetune --weights Wan2.1-T2V-14B-Diffusers --data dataset/ --out runs/t2v \\
        --set precision=bf16
    accelerate launch --multi_gpu --num_processes 8 \\
        -m neumat video finetune --weights Wan2.1-T2V-14B-Diffusers --data dataset/ --out runs/t2v \\
        --set precision=bf16 --set mode=full
    torchrun --nproc_per_node 2 -m neumat video finetune ... --device cpu   # 2 CPU processes (gloo)

(``accelerate launch --cpu`` starts several CPU processes only through mpirun/oneCCL; torchrun's
environment is what accelerate reads either way.)

Full finetuning of the 14B DiT needs its weights and AdamW moments sharded (an accelerate
config with FSDP); what is tested here is DDP, where every process holds the whole DiT.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ..train.checkpoint import (load_latest_checkpoint, prune_checkpoints, rng_state, save_checkpoint,
                                set_rng_state, checkpoint_path)
from ..train.config_io import ConfigError, config_from_dict, config_to_dict, save_config
from .clips import Clip, load_frames, scan_clips
from .finetune_config import LORA_TARGETS, FinetuneConfig
from .wan_objective import (clip_index, draw_sample, flow_matching_loss, image_condition, text_embeddings,
                            training_sigmas, vae_latents)

log = logging.getLogger(__name__)

CHECKPOINT_KIND = "wan-finetune"
"""``model_kind`` of a finetuning checkpoint."""
RESUME_FREE_FIELDS = ("steps", "checkpoint_every", "keep_checkpoints", "log_every")
"""Config fields a resumed run may change (anything else would make it another run)."""


@dataclass
class FinetuneResult:
    """What a finetuning run did."""

    steps: int
    """Optimizer steps completed (the run's total)."""
    history: list[dict[str, float]] = field(default_factory=list)
    """``{"step", "loss"}`` per optimizer step (loss averaged over the global batch)."""
    step_seconds: list[float] = field(default_factory=list)
    """Wall time of each optimizer step of this invocation, seconds."""
    final: Path | None = None
    """The finished-model folder (``<out>/final``)."""


def trainable_parameters(model) -> list[tuple[str, torch.nn.Parameter]]:
    """(name, parameter) of every parameter of ``model`` that requires a gradient, in order."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def setup_transformer(pipe, cfg: FinetuneConfig) -> torch.nn.Module:
    """Freeze everything but the DiT's trained part; returns the DiT in train mode.

    LoRA: rank ``cfg.lora_rank`` adapters on :data:`LORA_TARGETS` (peft; A random with seed
    ``cfg.seed``, B zero, so training starts from the base model exactly), kept in float32.
    Full: every DiT parameter, float32 master weights.
    """
    for name in ("vae", "text_encoder", "image_encoder"):
        module = getattr(pipe, name, None)
        if module is not None:
            module.requires_grad_(False).eval()
    dit = pipe.transformer
    if cfg.mode == "lora":
        from peft import LoraConfig

        dit.requires_grad_(False)
        torch.manual_seed(cfg.seed)
        dit.add_adapter(LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, init_lora_weights=True,
                                   target_modules=list(LORA_TARGETS)))
        for _, p in trainable_parameters(dit):
            p.data = p.data.float()
    else:
        dit.float().requires_grad_(True)
    if cfg.gradient_checkpointing:
        dit.enable_gradient_checkpointing()
    return dit.train()


class Batcher:
    """Builds the conditioned training inputs of one micro-batch from the clips (frozen parts,
    no gradients). Sample indices are global: ``((step * grad_accum + micro) * processes +
    rank) * batch_size + j``."""

    def __init__(self, pipe, clips: list[Clip], cfg: FinetuneConfig, shift: float, rank: int, world: int) -> None:
        self.pipe, self.clips, self.cfg, self.rank, self.world = pipe, clips, cfg, rank, world
        self.sigmas = training_sigmas(shift)
        self.image_to_video = getattr(pipe, "image_encoder", None) is not None

    @torch.no_grad()
    def __call__(self, step: int, micro: int, device) -> dict[str, torch.Tensor]:
        from PIL import Image

        cfg = self.cfg
        first = ((step * cfg.grad_accum + micro) * self.world + self.rank) * cfg.batch_size
        draws = [draw_sample(cfg.seed, g, cfg.caption_style, cfg.dropout) for g in range(first, first + cfg.batch_size)]
        clips = [self.clips[clip_index(cfg.seed, g, len(self.clips))] for g in range(first, first + cfg.batch_size)]
        video = torch.stack([load_frames(c, cfg.resolution) for c in clips]).to(device)
        x0 = vae_latents(self.pipe, video)
        noise = torch.stack([torch.randn(x0.shape[1:], generator=d.generator) for d in draws]).to(device)
        captions = ["" if d.drop_caption else c.captions[d.caption_key] for c, d in zip(clips, draws)]
        batch = {"x0": x0, "noise": noise, "sigma": self.sigmas[[d.sigma_index for d in draws]].to(device),
                 "text": text_embeddings(self.pipe, captions, cfg.max_text_tokens, device)}
        if self.image_to_video:
            frames, height, width = video.shape[2:]
            images = []
            for c in clips:
                with Image.open(c.reference) as img:
                    images.append(img.convert("RGB"))
            batch["condition"], batch["image_embeds"] = image_condition(self.pipe, images, frames, height, width, device)
        return batch


def batch_loss(dit, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """:func:`~.wan_objective.flow_matching_loss` of a :class:`Batcher` batch."""
    return flow_matching_loss(dit, batch["x0"], batch["noise"], batch["sigma"], batch["text"],
                              batch.get("condition"), batch.get("image_embeds"))


@torch.no_grad()
def evaluation_loss(pipe, clips: list[Clip], cfg: FinetuneConfig, samples: int = 8) -> float:
    """Mean flow-matching loss of ``pipe``'s DiT over a fixed set: the first ``samples`` training
    samples of ``cfg`` (their clips, captions, noise levels and noise), one process. The same
    call on the base pipeline and on it with a run's finished model shows what training did."""
    from .wan_parts import flow_shift

    one = replace(cfg, batch_size=1, grad_accum=1)
    batcher = Batcher(pipe, clips, one, flow_shift(pipe), rank=0, world=1)
    device = pipe.transformer.device
    return sum(float(batch_loss(pipe.transformer, batcher(i, 0, device))) for i in range(samples)) / samples


def _resume_state(out: Path, cfg: FinetuneConfig) -> dict[str, Any] | None:
    """The newest checkpoint's state, after checking it belongs to a run of ``cfg``."""
    found = load_latest_checkpoint(out)
    if found is None:
        return None
    path, state = found
    if state.get("model_kind") != CHECKPOINT_KIND:
        raise ConfigError(f"{path} is not a Wan finetuning checkpoint (model_kind {state.get('model_kind')!r})")
    saved = config_to_dict(config_from_dict(state["config"], FinetuneConfig))
    given = config_to_dict(cfg)
    differ = [k for k in saved if saved[k] != given[k] and k not in RESUME_FREE_FIELDS]
    if differ:
        raise ConfigError(f"--resume: {path} was trained with other {', '.join(differ)} "
                          f"({', '.join(f'{k}={saved[k]!r}' for k in differ)}); only {', '.join(RESUME_FREE_FIELDS)} may change")
    if state["step"] >= cfg.steps:
        log.info("%s already holds step %d of %d", path, state["step"], cfg.steps)
    log.info("resuming from %s (step %d)", path, state["step"])
    return state


def finetune(weights: str | Path, data: str | Path, out: str | Path, cfg: FinetuneConfig | None = None,
             resume: bool = False, device: str = "auto", progress: bool = True) -> FinetuneResult:
    """Finetune the Wan pipeline in ``weights`` on the clips under ``data``; checkpoints and the
    finished model go to ``out``.

    Everything that can be wrong with the inputs (weights layout, clip folders, config, an
    ``out`` that holds another run) is checked before any weight is loaded.

    Args:
        weights: local diffusers Wan2.1 folder (:mod:`.wan_parts`).
        data: dataset folder of posed clips (:mod:`.clips`).
        out: run folder (``config.json``, ``ckpt_*.pt``, ``final/``).
        cfg: the run's configuration (default :class:`FinetuneConfig`).
        resume: continue from the newest checkpoint in ``out`` (its config must match ``cfg``
            but for :data:`RESUME_FREE_FIELDS`); without it, ``out`` must hold no checkpoint.
        device: ``"auto"`` (accelerate's choice: the process's GPU, else CPU) or ``"cpu"``.
        progress: show a progress bar on the main process.
    Raises:
        WeightsError, VideoFolderError, ConfigError: bad input, before heavy work.
    """
    from accelerate import Accelerator

    from ..train.progress import TrainProgress
    from .finetuned import write_finetuned
    from .wan_parts import check_weights_dir, flow_shift, load_pipeline

    cfg = cfg or FinetuneConfig()
    cfg.validate()
    out = Path(out)
    task = check_weights_dir(weights)
    clips = scan_clips(data, cfg.resolution, trajectory=cfg.trajectory)
    state = _resume_state(out, cfg) if resume else None
    if not resume and load_latest_checkpoint(out) is not None:
        raise ConfigError(f"{out} already holds a run's checkpoints: pass --resume, or another --out")

    bf16 = cfg.precision == "bf16"
    # bf16 autocast is applied here, not through accelerate's mixed_precision: accelerate's state is
    # one per process and refuses a second run with another precision (tests, notebooks).
    accelerator = Accelerator(mixed_precision="no", cpu=device == "cpu")
    low = torch.bfloat16 if bf16 else torch.float32
    pipe = load_pipeline(weights, frozen_dtype=low, transformer_dtype=low if cfg.mode == "lora" else torch.float32)
    dit = setup_transformer(pipe, cfg)
    params = trainable_parameters(dit)
    if state is not None:
        missing = [n for n, _ in params if n not in state["trainable"]]
        if missing or len(state["trainable"]) != len(params):
            raise ConfigError(f"checkpoint weights do not fit this model (missing {missing[:3]})")
        with torch.no_grad():
            for n, p in params:
                p.copy_(state["trainable"][n])
    optimizer = torch.optim.AdamW([p for _, p in params], lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
    for name in ("vae", "text_encoder", "image_encoder"):
        if getattr(pipe, name, None) is not None:
            getattr(pipe, name).to(accelerator.device)
    model, optimizer = accelerator.prepare(dit, optimizer)
    batcher = Batcher(pipe, clips, cfg, flow_shift(pipe), accelerator.process_index, accelerator.num_processes)
    result = FinetuneResult(steps=state["step"] if state else 0, history=list(state["history"]) if state else [])
    main = accelerator.is_main_process
    if main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.json")
        log.info("finetuning %s (%s, %s) on %d clips of %s: %d trainable parameters, %d processes", weights, task,
                 cfg.mode, len(clips), data, sum(p.numel() for _, p in params), accelerator.num_processes)
    bar = TrainProgress(cfg.steps, result.steps, enabled=progress and main)
    global_batch = cfg.batch_size * cfg.grad_accum * accelerator.num_processes
    try:
        while result.steps < cfg.steps:
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            total = torch.zeros((), device=accelerator.device)
            for micro in range(cfg.grad_accum):
                batch = batcher(result.steps, micro, accelerator.device)
                sync = contextlib.nullcontext() if micro == cfg.grad_accum - 1 else accelerator.no_sync(model)
                with sync:
                    with torch.autocast(accelerator.device.type, dtype=torch.bfloat16, enabled=bf16):
                        loss = batch_loss(model, batch) / cfg.grad_accum
                    accelerator.backward(loss)
                total += loss.detach()
            if cfg.grad_clip > 0:
                accelerator.clip_grad_norm_([p for _, p in params], cfg.grad_clip)
            optimizer.step()
            result.steps += 1
            mean_loss = float(accelerator.reduce(total, reduction="mean"))
            result.history.append({"step": result.steps, "loss": mean_loss})
            result.step_seconds.append(time.perf_counter() - start)
            bar.advance(global_batch)
            bar.update_loss(mean_loss)
            if main and result.steps % cfg.log_every == 0:
                recent = [h["loss"] for h in result.history[-cfg.log_every:]]
                log.info("step %d/%d: loss %.5f (mean of %d), %.2f s/step", result.steps, cfg.steps,
                         sum(recent) / len(recent), len(recent), result.step_seconds[-1])
            if result.steps % cfg.checkpoint_every == 0 or result.steps == cfg.steps:
                _checkpoint(accelerator, model, optimizer, out, cfg, result, str(weights), task)
    finally:
        bar.close()
    if main:
        unwrapped = accelerator.unwrap_model(model)
        result.final = write_finetuned(out, unwrapped, {
            "mode": cfg.mode, "task": task, "base_weights": str(Path(weights).resolve()), "steps": result.steps,
            "max_text_tokens": cfg.max_text_tokens, "config": config_to_dict(cfg)})
        log.info("finished model in %s", result.final)
    accelerator.wait_for_everyone()
    return result


def _checkpoint(accelerator, model, optimizer, out: Path, cfg: FinetuneConfig, result: FinetuneResult,
                weights: str, task: str) -> None:
    """Write ``ckpt_<step>.pt`` from the main process (others wait), keep the newest few."""
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        save_checkpoint(checkpoint_path(out, result.steps), {
            "model_kind": CHECKPOINT_KIND, "step": result.steps, "config": config_to_dict(cfg),
            "trainable": {n: p.detach().cpu().clone() for n, p in trainable_parameters(unwrapped)},
            "optimizer": optimizer.state_dict(), "rng": rng_state(), "history": result.history,
            "weights": weights, "task": task, "processes": accelerator.num_processes})
        prune_checkpoints(out, cfg.keep_checkpoints)
    accelerator.wait_for_everyone()
