"""Training MVInverse on the project's training engine (:mod:`neumat.train.engine`: checkpoints,
exact resume, time budget, progress) — this module is its plug-in and the optimizer step.

Stages (seed §7), each with a fresh Adam at ``lr``, warm-up + cosine decay over its steps:

==========  =========================  ======================================  ======================
stage       steps                      trains                                  frozen
==========  =========================  ======================================  ======================
pretrain    ``steps`` (80 x 1000)      decoder (attention blocks, register     DINOv2 and ResNeXt
                                       tokens) and heads                       encoders
heads       ``heads_steps`` (50 x      heads only (detail fusion included),    encoders and every
            1000)                      at ``heads_long_side``                  attention block
==========  =========================  ======================================  ======================

Frozen modules have ``requires_grad`` off, are left out of the optimizer and stay in eval mode
(:meth:`~.model.MVInverse.set_trainable`): their parameters and batch-norm statistics do not
change by a bit. The albedo is supervised by plain MSE for the first ``albedo_warmup`` of the
pretraining steps, by the scale-invariant loss after (and in the heads stage).

Data: each step draws its dynamic batch shape (:func:`~.batch.dynamic_views`) from the stream
``(seed, TRAIN_STREAM, stage, step in stage)`` and asks the run's batch source
(:data:`BatchSource`) for that many scenes and views at the stage's long side; a source that
is a function of its :class:`BatchRequest` makes the run reproducible, and a killed run resumed
from a checkpoint ends bit-identical to an uninterrupted one (on one device).

Multi-GPU: ``accelerate launch --multi_gpu --num_processes N`` (or ``torchrun``) starts the
processes and sets the environment the engine's process group reads
(:func:`neumat.train.distributed.init_distributed`); each process trains its own batch (its
rank in the request), gradients are averaged over processes, missing ones as zeros.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..train.config import OptimConfig
from ..train.distributed import DistInfo, all_reduce_mean_
from ..train.neumip.plugin import stage_bounds
from ..train.sampling import TRAIN_STREAM, stream_rng
from ..train.schedule import lr_factor
from .batch import InverseBatch, dynamic_views
from .config import InverseTrainConfig
from .intrinsics import SPECS, Intrinsic
from .losses import total_loss
from .model import MVInverse, start_at_constants

if TYPE_CHECKING:
    from ..train.engine import RunOutcome, StepCallback

MODEL_KIND = "mvinverse"
"""``model_kind`` of an MVInverse checkpoint."""
STAGE_GROUPS: dict[str, tuple[str, ...]] = {"pretrain": ("decoder", "heads"), "heads": ("heads",)}
"""Parameter groups (:data:`~.model.GROUPS`) each stage trains; the others are frozen."""


@dataclass(frozen=True)
class BatchRequest:
    """What one process needs for one optimizer step."""

    stage: str
    """``"pretrain"`` or ``"heads"``."""
    step: int
    """Step within the stage (0-based)."""
    scenes: int
    """Scenes ``B`` of this process's batch."""
    views: int
    """Views ``V`` of every scene."""
    long_side: int
    """Long image side, pixels (a multiple of 14; the short side is the source's choice)."""
    rank: int
    """This process (distinct processes must draw distinct scenes)."""
    world_size: int
    """Processes in the run."""
    seed: int
    """The run's seed."""


BatchSource = Callable[[BatchRequest], InverseBatch]
"""Returns the batch of a request (``[B, V, ...]`` as asked); a pure function of the request."""


def loss_weights(cfg: InverseTrainConfig) -> dict[Intrinsic, float]:
    """λ per map (eq. 5) from :attr:`InverseTrainConfig.loss_weights`, in :data:`SPECS` order."""
    return dict(zip(SPECS, cfg.loss_weights))


def optimizer_step(model: MVInverse, optimizer: torch.optim.Optimizer, batch: InverseBatch,
                   weights: Mapping[Intrinsic, float], scale_invariant_albedo: bool, scales: int = 4,
                   albedo_range: tuple[float, float] = (0.01, 0.99), info: DistInfo | None = None,
                   relative_albedo: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
    """One optimizer step of ``model`` on ``batch``: forward, eq. 5 (:func:`~.losses.total_loss`),
    backward, gradients averaged over processes (``info``, if distributed), ``optimizer.step()``.

    Only the parameters in ``optimizer`` change (the caller's :meth:`~.model.MVInverse.set_trainable`
    decides which). Returns ``(loss, {map: term})`` of this process, loss detached.
    """
    model.train()
    pred = model(batch.images, maps=tuple(batch.targets))
    loss, parts = total_loss(pred, batch, weights, scale_invariant_albedo, scales, albedo_range, relative_albedo)
    apply_gradients(optimizer, loss, info)
    return loss.detach(), parts


def apply_gradients(optimizer: torch.optim.Optimizer, loss: torch.Tensor, info: DistInfo | None = None) -> None:
    """Backward ``loss``, average the gradients over processes (``info``, if distributed; a
    parameter without a gradient counts as zeros, so every process runs the same collectives)
    and step ``optimizer``."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if info is not None and info.distributed:
        for p in (p for g in optimizer.param_groups for p in g["params"]):
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            all_reduce_mean_(p.grad, info)
    optimizer.step()


def scheduled_lr(lr: float, warmup_steps: int, min_lr_ratio: float, step: int, length: int) -> float:
    """The learning rate at ``step`` of a stage of ``length`` steps: linear warm-up over
    ``warmup_steps`` (at most ``length - 1``), then cosine decay to ``min_lr_ratio · lr`` at its
    last step (:func:`neumat.train.schedule.lr_factor`)."""
    sched = OptimConfig(warmup_steps=min(warmup_steps, length - 1), restart_period=length, restart_mult=1,
                        min_lr_ratio=min_lr_ratio)
    return lr * lr_factor(step, sched, length)


class InversePlugin:
    """The engine plug-in of an MVInverse run (module docstring).

    Args:
        cfg: the run's config.
        batches: the batch source.
        info: where this process sits in the run.
        state: a checkpoint to resume from, or None.
        model: the network with its pretrained weights loaded (:mod:`.weights`), or None: built
            seeded with ``cfg.seed``, then ``cfg.pretrained`` loaded into it when set (not on
            resume); a checkpoint's weights replace either.
        constants: the training set's mean albedo / metallic / roughness
            (:func:`~.evaluate.training_constants`), or None: a network built here (not on
            resume) starts at them (:func:`~.model.start_at_constants`).
    """

    check_loss = True

    def __init__(self, cfg: InverseTrainConfig, batches: BatchSource, info: DistInfo,
                 state: dict[str, Any] | None, model: MVInverse | None = None,
                 constants: Mapping[str, Any] | None = None) -> None:
        if model is None:
            from ..train.engine import seed_everything

            seed_everything(cfg.seed)
            model = MVInverse(cfg.model)
            if cfg.pretrained and state is None:
                from .weights import load_pretrained_dir

                load_pretrained_dir(model, cfg.pretrained)
            if constants is not None and state is None:
                start_at_constants(model, constants)
        self.cfg, self.batches, self.info = cfg, batches, info
        self.model = model.to(info.device)
        self.stages = [(name, n) for name, n in (("pretrain", cfg.steps), ("heads", cfg.heads_steps)) if n > 0]
        self.started: list[int] = []
        self.optimizer: torch.optim.Optimizer | None = None
        self.weights = loss_weights(cfg)
        self.samples_per_step, self.fields, self.seconds = 0, {}, 0.0
        if state is not None:
            self._load(state)

    # -- state ---------------------------------------------------------------------------------
    def _load(self, state: dict[str, Any]) -> None:
        meta = state.get("inverse")
        if state.get("model_kind") != MODEL_KIND or not isinstance(meta, dict):
            raise ValueError("not a checkpoint of an MVInverse run; start afresh in another run directory")
        if [s for s, _ in meta["stages"]] != [s for s, _ in self.stages]:
            raise ValueError(f"the checkpoint's run has the stages {meta['stages']}, this one {self.stages}: resume "
                             "with the same steps / heads_steps, or start afresh")
        self.model.load_state_dict(state["model"])
        self.started, self.seconds = [int(s) for s in meta["started"]], float(meta["seconds"])
        if self.started:
            self._begin(len(self.started) - 1)
            self.optimizer.load_state_dict(state["optimizer"])

    def state_dict(self) -> dict[str, Any]:
        """The plug-in's part of a checkpoint: ``model_kind``, ``model`` (every weight, frozen ones
        included), ``optimizer`` (the current stage's Adam) and ``inverse`` (stages, their starts)."""
        meta = {"stages": [list(s) for s in self.stages], "started": list(self.started), "seconds": self.seconds}
        return {"model_kind": MODEL_KIND, "model": self.model.state_dict(), "inverse": meta,
                "optimizer": self.optimizer.state_dict() if self.optimizer is not None else {}}

    def describe(self) -> str:
        stages = " + ".join(f"{n} {s}" for s, n in self.stages)
        return f"MVInverse ({stages} steps, {self.cfg.min_views}-{self.cfg.max_views} views per scene)"

    def log_fields(self) -> dict[str, Any]:
        """The stage, the learning rate, the batch shape and each map's loss term of the last step."""
        return dict(self.fields)

    def validate(self, step: int, total_steps: int, final: bool) -> None:
        """No held-out validation yet (the data sets come with a later item): None."""
        return None

    # -- one optimizer step --------------------------------------------------------------------
    def _begin(self, k: int) -> None:
        """Set up stage ``k``: its trainable groups and a fresh Adam."""
        params = self.model.set_trainable(STAGE_GROUPS[self.stages[k][0]])
        self.optimizer = torch.optim.Adam(params, lr=self.cfg.lr)

    def train_step(self, step: int, total_steps: int) -> torch.Tensor:
        """Run optimizer step ``step`` of ``total_steps`` (module docstring); returns the loss."""
        t0 = time.perf_counter()
        cfg = self.cfg
        planned = [n for _, n in self.stages]
        bounds = stage_bounds(planned, self.started, total_steps)
        k = len(self.started) - 1
        while k < 0 or (step >= bounds[k][1] and k + 1 < len(self.stages)):
            k += 1
            self.started.append(step)
            bounds = stage_bounds(planned, self.started, total_steps)
            self._begin(k)
        stage, (start, end) = self.stages[k][0], bounds[k]
        local, length = step - start, max(end - start, 1)
        lr = scheduled_lr(cfg.lr, cfg.warmup_steps, cfg.min_lr_ratio, local, length)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        scenes, views = dynamic_views(stream_rng(cfg.seed, TRAIN_STREAM, k, local), cfg.min_views, cfg.max_views,
                                      cfg.max_images)
        long_side = cfg.long_side if stage == "pretrain" else cfg.heads_long_side
        request = BatchRequest(stage, local, scenes, views, long_side, self.info.rank, self.info.world_size,
                               cfg.seed)
        batch = self.batches(request).to(self.info.device)
        scale_invariant = stage != "pretrain" or local >= cfg.albedo_warmup * length
        loss, parts = optimizer_step(self.model, self.optimizer, batch, self.weights, scale_invariant,
                                     cfg.msg_scales, (cfg.albedo_low, cfg.albedo_high), self.info,
                                     cfg.relative_albedo)
        self.samples_per_step = scenes * views * self.info.world_size
        self.fields = {"stage": stage, "lr": lr, "views": views, "scenes": scenes,
                       "albedo_loss": "scale-invariant" if scale_invariant else "mse", **parts}
        self.seconds += time.perf_counter() - t0
        return loss


def run_training(cfg: InverseTrainConfig, batches: BatchSource, model: MVInverse | None = None,
                 resume: bool | str = False, callbacks: Sequence[StepCallback] = (),
                 constants: Mapping[str, Any] | None = None) -> RunOutcome:
    """Train both stages on the engine (``steps + heads_steps`` planned steps; checkpoints,
    resume and budget as :class:`~neumat.train.engine.Engine`); ``model``: pretrained weights
    loaded, or None (random, seeded; started at ``constants`` when given: :class:`InversePlugin`).
    Returns the engine's outcome (``history`` with each step's stage, learning rate, batch shape
    and loss terms)."""
    from ..train.engine import Engine

    engine = Engine(cfg, lambda info, state: InversePlugin(cfg, batches, info, state, model, constants),
                    resume=resume, callbacks=callbacks, planned_steps=cfg.steps + cfg.heads_steps)
    return engine.run()
