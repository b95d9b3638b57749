"""Consistency finetuning of a trained MVInverse on unlabeled videos (seed 002 §3.3) — a plug-in of
the project's training engine (:mod:`neumat.train.engine`: checkpoints, exact resume, time
budget, progress), as :mod:`.train` is; only the objective and the data differ.

Data: sequences of frames (a folder of images, a video, a posed video folder: :mod:`.frames`),
resized to the run's long side (:func:`~.predictor.resize_frames`), with the optical flow of
every adjacent pair and its occlusion mask computed once (:mod:`.flow`). Step ``k`` of process
``rank`` trains on one clip of ``clip_frames`` adjacent frames, its sequence and start drawn from
``default_rng([seed, k, rank])`` — a pure function of the step, so a killed run resumed from a
checkpoint ends bit-identical to an uninterrupted one (on one device).

Objective: eq. 6 (:func:`~.consistency.finetune_loss`) — flow-warped consistency between adjacent
frames plus the anchor at frame 0 against a frozen copy of the pretrained network, run on the
same clip at every step. The trained parameter groups are :attr:`~.config.FinetuneConfig.groups`
(default: decoder and heads, encoders frozen as in pretraining); one Adam, learning rate by
:func:`~.train.scheduled_lr` over the run.

Checkpoints have ``model_kind`` :data:`FINETUNE_KIND` and every weight of the finetuned network,
and the run's ``config.json`` holds its :class:`~.config.ModelConfig`: ``--weights`` of
``neumat inverse`` / ``eval`` / ``capture2mat`` loads them as it loads a training run's
(:func:`~.predictor.load_model`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..train.distributed import DistInfo
from .config import FinetuneConfig
from .consistency import finetune_loss
from .flow import PairFlow, adjacent_flows
from .model import MVInverse
from .train import apply_gradients, scheduled_lr

if TYPE_CHECKING:
    from ..train.engine import RunOutcome, StepCallback

FINETUNE_KIND = "mvinverse-finetune"
"""``model_kind`` of a consistency-finetuned MVInverse checkpoint."""


@dataclass
class FlowSequence:
    """One unlabeled sequence, ready for finetuning or the Table 4 metric."""

    name: str
    """Where it came from (messages, records)."""
    frames: np.ndarray
    """``[T, H, W, 3]`` float32 sRGB in [0, 1], ``H`` and ``W`` multiples of 14, ``T >= 2``."""
    pairs: list[PairFlow]
    """The ``T - 1`` flows ``t → t + 1`` with their occlusion masks (:func:`~.flow.adjacent_flows`)."""


def flow_sequence(frames: np.ndarray, name: str, method: str = "dis") -> FlowSequence:
    """A :class:`FlowSequence` of ``frames`` (``[T, H, W, 3]`` sRGB in [0, 1], sides multiples of 14)."""
    frames = np.ascontiguousarray(frames, np.float32)
    return FlowSequence(name, frames, adjacent_flows(frames, method))


def read_sequence(path: str | Path, long_side: int, max_frames: int, method: str = "dis") -> FlowSequence:
    """A sequence from a frame folder, video or posed video folder (:func:`~.frames.read_capture`,
    ``max_frames`` evenly spaced: for adjacent frames, give at least the sequence's length),
    resized to ``long_side``, with its flows.

    Raises:
        :class:`~.frames.FrameError` naming the file or frame.
    """
    from .frames import read_capture
    from .predictor import resize_frames

    capture = read_capture(path, max_frames)
    return flow_sequence(resize_frames(capture.frames, long_side), str(path), method)


class ClipSource:
    """Clips of adjacent frames drawn from sequences (module docstring)."""

    def __init__(self, sequences: Sequence[FlowSequence], clip_frames: int) -> None:
        if not sequences:
            raise ValueError("consistency finetuning needs at least one sequence of frames")
        short = [s.name for s in sequences if len(s.frames) < 2]
        if short:
            raise ValueError(f"sequences with fewer than 2 frames: {short}")
        self.sequences, self.clip_frames = list(sequences), clip_frames

    def __call__(self, seed: int, step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The clip of ``step`` on process ``rank``: ``(images [1, L, 3, H, W] in [0, 1], flow
        [L - 1, H, W, 2], valid [L - 1, 1, H, W] bool)``, ``L = min(clip_frames, T)``."""
        rng = np.random.default_rng([seed, step, rank])
        s = self.sequences[int(rng.integers(len(self.sequences)))]
        length = min(self.clip_frames, len(s.frames))
        start = int(rng.integers(len(s.frames) - length + 1))
        pairs = s.pairs[start:start + length - 1]
        images = torch.from_numpy(s.frames[start:start + length]).permute(0, 3, 1, 2)[None]
        flow = torch.from_numpy(np.stack([p.flow for p in pairs]))
        valid = torch.from_numpy(np.stack([p.valid for p in pairs]))[:, None]
        return images, flow, valid


class FinetunePlugin:
    """The engine plug-in of a consistency finetuning run (module docstring).

    Args:
        cfg: the run's config.
        clips: the clip source.
        pretrained: the network with the pretrained weights (``cfg.weights``); copied twice — the
            frozen anchor and the finetuned network (a checkpoint's weights replace the latter's).
        info: where this process sits in the run.
        state: a checkpoint to resume from, or None.
    """

    check_loss = True

    def __init__(self, cfg: FinetuneConfig, clips: ClipSource, pretrained: MVInverse, info: DistInfo,
                 state: dict[str, Any] | None) -> None:
        self.cfg, self.clips, self.info = cfg, clips, info
        self.reference = copy.deepcopy(pretrained).to(info.device).eval()
        for p in self.reference.parameters():
            p.requires_grad_(False)
        self.model = copy.deepcopy(pretrained).to(info.device)
        self.optimizer = torch.optim.Adam(self.model.set_trainable(cfg.trained_groups()), lr=cfg.lr)
        self.samples_per_step = cfg.clip_frames * info.world_size
        self.fields: dict[str, Any] = {}
        self.seconds = 0.0
        if state is not None:
            if state.get("model_kind") != FINETUNE_KIND:
                raise ValueError(f"not a checkpoint of a consistency finetuning run ({state.get('model_kind')!r}); "
                                 "start afresh in another run directory")
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.seconds = float(state["finetune"]["seconds"])

    def state_dict(self) -> dict[str, Any]:
        """``model_kind``, ``model`` (every weight), ``optimizer`` and ``finetune`` (seconds)."""
        return {"model_kind": FINETUNE_KIND, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "finetune": {"seconds": self.seconds}}

    def describe(self) -> str:
        return (f"MVInverse consistency finetuning of {self.cfg.weights or 'the given weights'} "
                f"({self.cfg.groups}; clips of {self.cfg.clip_frames} frames, λ = {self.cfg.consistency_weight:g})")

    def log_fields(self) -> dict[str, Any]:
        """The learning rate, the clip length and both loss terms of the last step."""
        return dict(self.fields)

    def validate(self, step: int, total_steps: int, final: bool) -> None:
        """No validation during the run (``neumat inverse consistency`` measures after): None."""
        return None

    def train_step(self, step: int, total_steps: int) -> torch.Tensor:
        """One optimizer step on the clip of ``step`` (module docstring); returns the loss."""
        t0 = time.perf_counter()
        cfg = self.cfg
        lr = scheduled_lr(cfg.lr, cfg.warmup_steps, cfg.min_lr_ratio, step, max(total_steps, 1))
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        images, flow, valid = (t.to(self.info.device) for t in self.clips(cfg.seed, step, self.info.rank))
        with torch.no_grad():
            reference = self.reference(images)
        self.model.train()
        loss, parts = finetune_loss(self.model(images), reference, flow, valid, cfg.consistency_weight)
        apply_gradients(self.optimizer, loss, self.info)
        self.fields = {"lr": lr, "frames": int(images.shape[1]), **parts}
        self.seconds += time.perf_counter() - t0
        return loss.detach()


def run_finetune(cfg: FinetuneConfig, sequences: Sequence[FlowSequence], pretrained: MVInverse,
                 resume: bool | str = False, callbacks: Sequence[StepCallback] = ()
                 ) -> tuple[RunOutcome, MVInverse]:
    """Finetune ``pretrained`` (left unchanged) on ``sequences`` for ``cfg.steps`` steps on the
    engine (checkpoints, resume and budget as :class:`~neumat.train.engine.Engine`). Returns the
    engine's outcome and the finetuned network (in eval mode)."""
    from ..train.engine import Engine

    clips = ClipSource(sequences, cfg.clip_frames)
    engine = Engine(cfg, lambda info, state: FinetunePlugin(cfg, clips, pretrained, info, state), resume=resume,
                    callbacks=callbacks, planned_steps=cfg.steps)
    outcome = engine.run()
    return outcome, engine.model.eval()
