"""The numpy reference as a backend (always available; the definition the others match)."""

from __future__ import annotations

import numpy as np

from ..quant import forward
from .base import Int8Backend


class NumpyBackend(Int8Backend):
    """Evaluates :func:`neumat.quant.forward` on the CPU with numpy (int64 matmuls)."""

    name = "numpy"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return forward(self.mlp, self._check_inputs(x))
