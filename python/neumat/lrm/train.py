"""Training the LRM on the project's training engine (:mod:`neumat.train.engine`: checkpoints,
exact resume, time budget, progress bar) — this module is its plug-in.

One optimizer step (seed §4.3, on ``materials_per_step`` materials drawn from the stream
``(seed, TRAIN_STREAM, step)``):

1. the 17 uniformly spaced frames of each material's video (:func:`.model.input_indices`) →
   frozen VAE latents (cached per material with ``cache_latents``: the encoder never changes);
2. DiT + upsampler → T_off, T_rgb per material (:class:`.model.LrmNetwork`);
3. ``render_frames`` frames per material, drawn from the same stream out of its 81 trajectory
   and 81 cross-joined frames, rendered from the predicted textures with the universal decoders
   (:mod:`.render`; the seed renders all 162 — a uniform subset keeps a CPU step cheap and the
   loss unbiased);
4. L2 + ``perceptual_weight`` x perceptual (:mod:`.loss`; LPIPS by local file, else the stated
   MS-SSIM substitute), averaged over frames and materials; backward; gradients clipped to
   ``grad_clip`` and averaged over processes; AdamW, warm-up + cosine decay.

Trained: the DiT, the stand-in text tokens, the upsampler (post-quant conv + VAE decoder with its
new head) at ``lr``, and the universal NeuMIP decoders at ``lr_decoders`` (seed Table 2: trainable
decoders beat frozen ones). The decoders run fake-quantized with the activation ranges of their
pretraining frozen (QAT ``quantize`` mode), so the INT8 bundles :mod:`.reconstruct` writes
evaluate what was trained. Frozen: the VAE encoder.

Validation (main process) renders ``val_frames`` frames, evenly spread over the 162, of each
held-out material, saves them beside the data set's (``<out>/val/step_<step>_<material>.png``)
and their figures (:mod:`.metrics`, the perceptual term named) in ``<out>/val/step_<step>.json``.
At the end the trained LRM is written to ``<out>/weights`` (:func:`.weights.save_lrm`).

A killed run resumed from its last checkpoint ends bit-identical to an uninterrupted one on CPU
(every draw is a function of the seed and the step; the latent cache is a function of the
frozen encoder); on GPUs as far as their kernels are deterministic.

Multi-GPU (each process trains ``materials_per_step / processes`` materials; the launchers set
the environment :func:`neumat.train.distributed.init_distributed` reads)::

    # 8 GPUs, one node: 256² frames at fp32 (the seed's first stage)
    accelerate launch --multi_gpu --num_processes 8 -m neumat lrm train --data dataset256/ \\
        --out runs/lrm256 --model full --wan-weights Wan2.1-T2V-1.3B-Diffusers \\
        --set model.frame_size=256 --set model.texture_resolution=256 --set materials_per_step=8
    # 64 GPUs, 8 nodes x 8 (run on every node with its NODE_RANK): 1024² at bf16 (second stage)
    accelerate launch --multi_gpu --num_machines 8 --num_processes 64 --machine_rank $NODE_RANK \\
        --main_process_ip $HEAD_IP --main_process_port 29500 -m neumat lrm train --data dataset1024/ \\
        --out runs/lrm1024 --model full --init runs/lrm256/weights --set model.precision=bf16 \\
        --set model.frame_size=1024 --set model.texture_resolution=1024 --set materials_per_step=64 \\
        --set gradient_checkpointing=true
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..models.qat import QatMode
from ..train.config import OptimConfig
from ..train.distributed import DistInfo, all_reduce_mean_
from ..train.sampling import TRAIN_STREAM, stream_rng
from ..train.schedule import lr_factor
from .config import LrmTrainConfig
from .data import LrmMaterial
from .loss import make_perceptual, render_loss
from .metrics import frame_figures, mean_figures, save_comparison
from .model import LrmNetwork, frames_to_tensor, input_indices
from .render import decoder_field, render_predicted

if TYPE_CHECKING:
    from ..train.engine import RunOutcome, StepCallback

log = logging.getLogger(__name__)

MODEL_KIND = "lrm"
"""``model_kind`` of an LRM checkpoint."""


class LrmSystem(nn.Module):
    """What trains: the network and a field around the universal decoders (:func:`.render.decoder_field`)."""

    def __init__(self, network: LrmNetwork, decoders, max_offset: float) -> None:
        super().__init__()
        self.network = network
        self.field = decoder_field(decoders, max_offset)

    @property
    def decoders(self):
        """The universal NeuMIP decoders."""
        return self.field.decoders


def set_decoders_trained(decoders, trained: bool) -> None:
    """Fake-quantized forward with frozen activation ranges; gradients on when ``trained``."""
    decoders.set_qat_mode(QatMode.QUANTIZE)
    decoders.freeze_observers(True)
    decoders.requires_grad_(trained)


def split_materials(materials: list[LrmMaterial], held_out: int) -> tuple[list[LrmMaterial], list[LrmMaterial]]:
    """(training, validation) materials: the last ``held_out`` by name are held out; with 0 the
    first (up to) two training materials are validated on.

    Raises:
        ValueError: nothing left to train on.
    """
    if held_out >= len(materials):
        raise ValueError(f"val_materials {held_out} leaves none of the {len(materials)} materials to train on")
    train = materials[: len(materials) - held_out]
    return train, (materials[len(materials) - held_out:] if held_out else train[:2])


class LrmPlugin:
    """The engine plug-in of an LRM run (module docstring).

    Args:
        cfg: the run's config.
        train, val: training and validation materials (:func:`split_materials`).
        info: where this process sits in the run.
        state: a checkpoint to resume from, or None.
        network: the network with pretrained weights loaded (:mod:`.weights`), or None for a
            random one (seeded); a checkpoint's weights replace either.
        decoders, max_offset: the universal decoders to start from (:func:`neumat.train.neumip.load_decoders`).
    """

    check_loss = True

    def __init__(self, cfg: LrmTrainConfig, train: list[LrmMaterial], val: list[LrmMaterial], info: DistInfo,
                 state: dict[str, Any] | None, network: LrmNetwork | None, decoders, max_offset: float) -> None:
        from ..train.engine import seed_everything

        if cfg.materials_per_step % info.world_size:
            raise ValueError(f"materials_per_step {cfg.materials_per_step} must be a multiple of the process count "
                             f"{info.world_size}")
        self.cfg, self.train, self.val, self.info = cfg, train, val, info
        if network is None:
            seed_everything(cfg.seed)
            network = LrmNetwork(cfg.model)
        if cfg.gradient_checkpointing:
            network.dit.enable_gradient_checkpointing()
        set_decoders_trained(decoders, cfg.lr_decoders > 0)
        self.model = LrmSystem(network, decoders, max_offset).to(info.device)
        self.perceptual = make_perceptual(cfg.perceptual, cfg.lpips_weights, cfg.model.frame_size)
        self.inputs = input_indices(cfg.model.video_frames, cfg.model.frames)
        self.latents: dict[str, torch.Tensor] = {}
        self.samples_per_step = cfg.materials_per_step * cfg.render_frames
        self.seconds, self.fields = 0.0, {}
        groups = [{"params": network.trainable_parameters(), "lr": cfg.lr, "weight_decay": cfg.weight_decay}]
        if cfg.lr_decoders > 0:
            groups.append({"params": list(decoders.parameters()), "lr": cfg.lr_decoders, "weight_decay": 0.0})
        self.base = [g["lr"] for g in groups]
        self.optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.99))
        if state is not None:
            self._load(state)
        self.model.train()

    # -- state ---------------------------------------------------------------------------------
    def _load(self, state: dict[str, Any]) -> None:
        meta = state.get("lrm")
        if state.get("model_kind") != MODEL_KIND or not isinstance(meta, dict):
            raise ValueError("not a checkpoint of an LRM run; start afresh in another run directory")
        if meta["train"] != [m.name for m in self.train]:
            log.warning("resuming with other training materials than the checkpoint's: the run will not match "
                        "an uninterrupted one")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.seconds = float(meta["seconds"])

    def state_dict(self) -> dict[str, Any]:
        """``model_kind``, ``model`` (network, decoders and their ranges), ``optimizer``, ``lrm``."""
        meta = {"train": [m.name for m in self.train], "val": [m.name for m in self.val], "seconds": self.seconds,
                "perceptual": self.perceptual.name}
        return {"model_kind": MODEL_KIND, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "lrm": meta}

    def describe(self) -> str:
        return (f"LRM on {len(self.train)} materials ({self.cfg.materials_per_step} per step, {self.cfg.render_frames} "
                f"rendered frames each; perceptual term: {self.perceptual.name})")

    def log_fields(self) -> dict[str, Any]:
        """The learning rate and the loss parts of the last step."""
        return dict(self.fields)

    # -- one optimizer step --------------------------------------------------------------------
    def material_latents(self, m: LrmMaterial) -> torch.Tensor:
        """``[1, 16, f, h, w]`` normalised latents of material ``m``'s input frames (cached)."""
        if m.name in self.latents:
            return self.latents[m.name]
        frames = frames_to_tensor(m.input_frames(self.inputs))[None].to(self.info.device)
        z = self.model.network.encode(frames)
        if self.cfg.cache_latents:
            self.latents[m.name] = z
        return z

    def _render(self, off: torch.Tensor, rgb: torch.Tensor, m: LrmMaterial,
                frames: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(rendered radiance, the data set's uint8 frames), ``[K, S, S, 3]`` each, on the device."""
        poses, refs = zip(*(m.loss_frame(int(k)) for k in frames))
        pred = render_predicted(self.model.field, off, rgb, list(poses), m.video.size, m.video.sample_size,
                                self.cfg.value_scale)
        return pred, torch.from_numpy(np.stack(refs)).to(self.info.device)

    def train_step(self, step: int, total_steps: int) -> torch.Tensor:
        """Run optimizer step ``step`` of ``total_steps`` (module docstring); returns this process's loss."""
        t0 = time.perf_counter()
        cfg, info = self.cfg, self.info
        sched = OptimConfig(warmup_steps=min(cfg.warmup_steps, max(total_steps - 1, 0)), restart_period=0,
                            min_lr_ratio=cfg.min_lr_ratio)
        factor = lr_factor(step, sched, total_steps)
        for g, base in zip(self.optimizer.param_groups, self.base):
            g["lr"] = base * factor
        rng = stream_rng(cfg.seed, TRAIN_STREAM, step)
        picks = rng.choice(len(self.train), cfg.materials_per_step, replace=cfg.materials_per_step > len(self.train))
        draws = [rng.choice(self.train[i].loss_frames, cfg.render_frames,
                            replace=cfg.render_frames > self.train[i].loss_frames) for i in picks]
        mine = list(range(info.rank, len(picks), info.world_size))
        materials = [self.train[picks[j]] for j in mine]
        off, rgb = self.model.network(torch.cat([self.material_latents(m) for m in materials]))
        losses, parts = [], []
        for j, m in enumerate(materials):
            pred, ref = self._render(off[j], rgb[j], m, draws[mine[j]])
            loss_j, part = render_loss(pred, ref, self.perceptual, cfg.perceptual_weight)
            losses.append(loss_j)
            parts.append(part)
        loss = torch.stack(losses).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if info.distributed:
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                all_reduce_mean_(p.grad, info)
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        self.optimizer.step()
        self.fields = {"lr": cfg.lr * factor, **{k: float(np.mean([p[k] for p in parts])) for k in parts[0]}}
        self.seconds += time.perf_counter() - t0
        return loss.detach()

    # -- validation ----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, materials: list[LrmMaterial], frames: int,
                 images: Path | None = None) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Figures (:mod:`.metrics`) of ``materials`` over ``frames`` frames each, evenly spread over
        their 162; ``images``: also save the comparisons there as ``<prefix>_<material>.png``
        (``images`` is the path prefix). Returns (means, per material)."""
        self.model.eval()
        try:
            per = {}
            for m in materials:
                idx = np.unique(np.linspace(0, m.loss_frames - 1, frames).round().astype(int))
                off, rgb = self.model.network(self.material_latents(m))
                pred, ref = self._render(off[0], rgb[0], m, idx)
                per[m.name] = frame_figures(pred, ref, self.perceptual)
                if images is not None:
                    save_comparison(images.parent / f"{images.name}_{m.name}.png", pred, ref)
        finally:
            self.model.train()
        return mean_figures(list(per.values())), per

    def validate(self, step: int, total_steps: int, final: bool) -> tuple[dict[str, Any], None, list, str]:
        """Main process: figures of the validation materials (module docstring)."""
        import json

        from ..fileio import atomic_write_bytes

        out = Path(self.cfg.out) / "val" if self.cfg.out else None
        means, per = self.evaluate(self.val, self.cfg.val_frames, out / f"step_{step:08d}" if out else None)
        if out is not None:
            doc = {"step": step, "materials": per, "mean": means, "perceptual_metric": self.perceptual.name,
                   "held_out": self.cfg.val_materials > 0}
            atomic_write_bytes(out / f"step_{step:08d}.json", json.dumps(doc, indent=1).encode())
        log.info("step %d: validation relative L1 %.4f, PSNR %.2f dB, %s %.4f", step, means["rel_l1"], means["psnr"],
                 self.perceptual.name.split(" (")[0], means["perceptual"])
        return {f"val_{k}": v for k, v in means.items()}, None, [], f"val rel L1 {means['rel_l1']:.4f}"


def run_training(cfg: LrmTrainConfig, materials: list[LrmMaterial], decoders, max_offset: float,
                 network: LrmNetwork | None = None, resume: bool | str = False,
                 callbacks: Sequence[StepCallback] = (), training: dict[str, Any] | None = None) -> RunOutcome:
    """Train on ``materials`` (split by ``cfg.val_materials``) on the engine; with ``cfg.out`` the
    main process writes the trained LRM to ``<out>/weights`` at the end (``training``: extra
    provenance for it). Returns the engine's outcome."""
    from ..train.engine import Engine
    from .weights import save_lrm

    train, val = split_materials(materials, cfg.val_materials)
    engine = Engine(cfg, lambda info, state: LrmPlugin(cfg, train, val, info, state, network, decoders, max_offset),
                    resume=resume, callbacks=callbacks)
    outcome = engine.run()
    plugin = engine.plugin
    if engine.info.is_main and cfg.out:
        record = {"steps": outcome.steps_done, "materials": [m.name for m in train], "held_out": [m.name for m in val],
                  "perceptual": plugin.perceptual.name, "value_scale": cfg.value_scale, "seconds": round(plugin.seconds, 2),
                  "config": cfg.to_dict(), **(training or {})}
        save_lrm(Path(cfg.out) / "weights", plugin.model.network, plugin.model.decoders, cfg.value_scale, max_offset,
                 record)
    return outcome
