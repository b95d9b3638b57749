"""The C++ CPU INT8 backend (``neumat._native``): AVX-512 VNNI, AVX-VNNI, AVX2, scalar kernels.

Bit-exact with :func:`neumat.quant.forward`; batches are split over threads and the GIL is
released while computing. The ISA path is chosen at run time (fastest the CPU supports) or
forced with ``isa=...`` (``neumat._native.cpu_supported_isas()`` lists what works here).
"""

from __future__ import annotations

import os
from types import ModuleType

import numpy as np

from ..quant import Int8MLP
from .base import Int8Backend

BUILD_HINT = "build it with `make setup` or `pip install .` (needs a C++17 compiler and CMake)"


def load_native() -> ModuleType:
    """Import ``neumat._native`` (ImportError if the extension was not built)."""
    from .. import _native

    return _native


def native_import_error() -> str | None:
    """None if ``neumat._native`` imports, else why not and how to build it."""
    try:
        load_native()
    except ImportError as exc:
        return f"the C++ extension neumat._native is not importable ({exc}); {BUILD_HINT}"
    return None


class NativeCpuBackend(Int8Backend):
    """Evaluates an :class:`~neumat.quant.Int8MLP` with the native CPU kernels.

    Args:
        mlp: the quantized network.
        isa: ``"auto"`` (fastest supported) or one of ``"avx512vnni"``, ``"avxvnni"``,
            ``"avx2"``, ``"scalar"``; ValueError if this CPU or build does not support it.
        threads: worker threads; 0 = all hardware threads (small batches use fewer).
    """

    name = "native"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return native_import_error()

    def __init__(self, mlp: Int8MLP, isa: str = "auto", threads: int = 0) -> None:
        super().__init__(mlp)
        native = load_native()
        supported = list(native.cpu_supported_isas())
        if isa == "auto":
            isa = supported[0]
        elif isa not in supported:
            raise ValueError(
                f"isa '{isa}' is not supported by this CPU or build "
                f"(supported: {', '.join(supported)})"
            )
        if threads < 0:
            raise ValueError(f"threads must be >= 0 (0 = all hardware threads), got {threads}")
        self.isa = isa
        self.threads = int(threads)
        self._native = native
        self._weights = mlp.flat_weights()
        self._widths = np.asarray(mlp.widths, dtype=np.int32)
        self._multipliers = mlp.multipliers()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._native.mlp_int8_forward(
            self._check_inputs(x),
            self._weights,
            self._widths,
            self._multipliers,
            isa=self.isa,
            threads=self.threads,
        )

    def describe(self) -> str:
        threads = self.threads or os.cpu_count() or 1
        return f"native CPU ({self.isa}, {threads} threads)"
