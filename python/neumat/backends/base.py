"""The interface every INT8 MLP backend implements (numpy, native CPU, Slang, CUDA)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from ..quant import Int8MLP


class BackendUnavailable(RuntimeError):
    """A backend cannot run on this machine; the message says why and how to fix it."""


class Int8Backend(ABC):
    """One way of evaluating an :class:`~neumat.quant.Int8MLP`, bit-exact with the reference.

    Construction uploads/prepares the weights once; calling evaluates a batch. Inputs are
    float32 ``[N, n_0]`` host arrays, outputs float32 ``[N, n_L]`` host arrays in [0, 1].
    """

    name: ClassVar[str]
    """Registry key (``numpy``, ``native``, ``slang``, ``cuda``)."""

    @classmethod
    @abstractmethod
    def unavailable_reason(cls) -> str | None:
        """None when the backend can run here, else a sentence saying why not and what to do."""

    def __init__(self, mlp: Int8MLP) -> None:
        reason = self.unavailable_reason()
        if reason is not None:
            raise BackendUnavailable(f"INT8 backend '{self.name}' is unavailable: {reason}")
        self.mlp = mlp

    @abstractmethod
    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Evaluate float32 ``[N, n_0]`` inputs; returns float32 ``[N, n_L]``."""

    def describe(self) -> str:
        """A short human-readable description (device, ISA) for reports."""
        return self.name

    def _check_inputs(self, x: np.ndarray) -> np.ndarray:
        """Return ``x`` as a C-contiguous float32 ``[N, n_0]`` array or raise ValueError."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.mlp.n_inputs:
            raise ValueError(f"expected float32 inputs [N, {self.mlp.n_inputs}], got shape {x.shape}")
        return x
