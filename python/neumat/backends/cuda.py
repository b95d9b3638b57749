"""The CUDA INT8 backend: the ``__dp4a`` kernel of ``cuda/mlp_dp4a.cu`` through ``neumat._native``.

Bit-exact with :func:`neumat.quant.forward`. The extension links the CUDA runtime statically,
so it imports everywhere; this backend is unavailable (with the reason) when the extension was
built without nvcc or when no CUDA device/driver is present.

``__call__`` takes and returns numpy arrays (copied through the device). ``forward_device``
evaluates device arrays in place (cupy arrays, torch CUDA tensors: anything exposing
``__cuda_array_interface__``) on the caller's stream.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..quant import Int8MLP
from .base import Int8Backend
from .native_cpu import load_native, native_import_error


class CudaBackend(Int8Backend):
    """Evaluates an :class:`~neumat.quant.Int8MLP` on a CUDA device (weights uploaded once).

    Args:
        mlp: the quantized network.
        device: CUDA device ordinal holding the weights.
    """

    name = "cuda"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        reason = native_import_error()
        if reason is not None:
            return reason
        # Built without nvcc: the reason says so; built with it: "no CUDA device: ..." or None.
        return load_native().cuda_unavailable_reason()

    def __init__(self, mlp: Int8MLP, device: int = 0) -> None:
        super().__init__(mlp)
        native = load_native()
        self._impl = native.CudaMlp(
            mlp.flat_weights(),
            np.asarray(mlp.widths, dtype=np.int32),
            mlp.multipliers(),
            device=device,
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._impl.forward(self._check_inputs(x))

    def forward_device(self, x: Any, out: Any = None, stream: int | None = None) -> Any:
        """Evaluate a device array ``x`` float32 ``[N, n_0]`` into ``out`` float32 ``[N, n_L]``.

        ``x`` and ``out`` are C-contiguous cupy arrays or torch CUDA tensors on this backend's
        device, not overlapping (``ValueError``: no in-place evaluation); ``out`` is allocated
        like ``x`` when omitted. ``stream`` is a cudaStream_t as an int; by default torch
        tensors use torch's current stream, other arrays the stream ``x`` exports
        (``__cuda_array_interface__`` v3), else the one ``out`` exports, else the legacy default
        stream. The kernel first waits (a CUDA event) for the streams ``x`` and ``out`` export
        where they differ from that stream. Returns ``out`` (the kernel is enqueued
        asynchronously on that stream).
        """
        shape = (int(x.shape[0]), self.mlp.n_outputs)
        is_torch = type(x).__module__.startswith("torch")
        if out is None:
            out = _empty_like_device(x, shape, is_torch)
        if stream is None and is_torch:
            import torch

            stream = torch.cuda.current_stream(x.device).cuda_stream
        self._impl.forward_device(x, out, stream)
        return out

    def describe(self) -> str:
        return f"CUDA dp4a on device {self._impl.device} ({self._impl.device_name})"


def _empty_like_device(x: Any, shape: tuple[int, int], is_torch: bool) -> Any:
    """An uninitialized float32 device array of ``shape`` from the same library as ``x``."""
    if is_torch:
        import torch

        return torch.empty(shape, dtype=torch.float32, device=x.device)
    if type(x).__module__.startswith("cupy"):
        import cupy

        with x.device:
            return cupy.empty(shape, dtype=cupy.float32)
    raise TypeError(
        f"pass `out` for device arrays of type {type(x).__name__} "
        "(only cupy arrays and torch tensors are allocated automatically)"
    )
