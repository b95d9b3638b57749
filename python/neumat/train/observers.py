"""Activation-range observation once per optimizer step, over the whole global batch.

:class:`~neumat.models.qat.QatMlp` can update its EMA observers inside every forward call, but
then the ranges depend on how a step's samples are split into micro-batches and processes.
The trainer instead freezes the observers' own updates and uses :class:`StepObserver`:
forward pre-hooks record each observer's ``max|x|`` over all of this process's micro-batches,
:meth:`StepObserver.commit` takes the maximum over all processes and folds it into each EMA
once. One step's range update is then the same for 1 or N processes and any accumulation.
"""

from __future__ import annotations

import torch

from ..models.qat import QatMlp
from .distributed import DistInfo, all_reduce_max_


class StepObserver:
    """Collects per-layer activation maxima while :attr:`active` and commits them per step.

    Args:
        mlp: the decoder; its observers are frozen (their own updates disabled) and given
            ``momentum``.
        momentum: EMA weight of each step's global maximum.
    """

    def __init__(self, mlp: QatMlp, momentum: float) -> None:
        self.observers = list(mlp.observers)
        for obs in self.observers:
            obs.momentum = momentum
            obs.frozen = True
        self.active = False
        self._maxima: list[torch.Tensor | None] = [None] * len(self.observers)
        self._handles = [obs.register_forward_pre_hook(self._hook(i)) for i, obs in enumerate(self.observers)]

    def _hook(self, i: int):
        def hook(module: torch.nn.Module, args: tuple) -> None:
            if not self.active:
                return
            m = args[0].detach().abs().max().float()
            prev = self._maxima[i]
            self._maxima[i] = m if prev is None else torch.maximum(prev, m)

        return hook

    def commit(self, info: DistInfo, update: bool) -> None:
        """Fold this step's global maxima into the EMAs (if ``update``) and reset the maxima."""
        if update and all(m is not None for m in self._maxima):
            maxima = all_reduce_max_(torch.stack(self._maxima), info)  # type: ignore[arg-type]
            for obs, m in zip(self.observers, maxima):
                obs.frozen = False
                obs.observe(m)
                obs.frozen = True
        self._maxima = [None] * len(self.observers)

    def remove(self) -> None:
        """Detach the hooks."""
        for h in self._handles:
            h.remove()
