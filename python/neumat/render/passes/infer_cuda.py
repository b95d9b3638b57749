"""The infer pass's ``cuda`` backend: the native backend's split (gather kernel → MLP → decode
kernel, :mod:`.infer_native`) with the MLP run by the dp4a CUDA kernel of ``neumat._native``
(:class:`neumat.backends.cuda.CudaBackend`) on the exchange buffers where the render device
keeps them — no host round trip.

It needs a slangpy **CUDA** device (``--device cuda``): slangpy 0.43 gives a CUDA buffer's
device pointer as its ``native_handle`` (type ``CUdeviceptr``), which :class:`CudaBufferView`
hands to the kernel through ``__cuda_array_interface__``. slangpy's CUDA device works in the
device's primary context, the one the extension's CUDA runtime uses; the weights are uploaded and
the kernel launched with that context pushed (``device.cuda_context_scope()``), so both sides
address the same memory. On a Vulkan device the buffers live in Vulkan memory (sharing them
with CUDA needs an interop device and shared buffers): :func:`.infer_native.refusal` refuses it.

Exchange buffers as in :mod:`.infer_native`, but ``inputs`` and ``outputs`` in device-local
memory. Order: gather, then the device is waited on (the host reads the row count anyway); the
kernel runs on the legacy default stream and the context is synchronized before decode is
submitted. Step times: ``gather`` / ``decode`` are device timestamps; ``mlp`` is host wall time
from the gather's completion to the kernel's (launch + run + synchronize), ms.
"""

from __future__ import annotations

import ctypes

from ...backends.cuda import CudaBackend
from .infer_native import InferBackendError, NativeInfer


class CudaBufferView:
    """A float32 ``[rows, cols]`` C-contiguous view of a slangpy CUDA buffer, exposed through
    ``__cuda_array_interface__`` (v3, no stream: the caller orders the work).

    Args:
        buffer: a ``slangpy.Buffer`` of a CUDA device, at least ``4 · rows · cols`` bytes.
        rows, cols: the view's shape (elements).

    Raises:
        InferBackendError: the buffer has no CUDA device pointer (not a CUDA device's) or is
            too small.
    """

    def __init__(self, buffer, rows: int, cols: int) -> None:
        import slangpy as spy

        handle = buffer.native_handle
        if handle.type != spy.NativeHandleType.CUdeviceptr:
            raise InferBackendError(f"infer backend 'cuda' needs buffers of a CUDA device, got a {handle.type.name} "
                                    "handle")
        if 4 * rows * cols > buffer.size:
            raise InferBackendError(f"a [{rows}, {cols}] float32 view does not fit a buffer of {buffer.size} bytes")
        self.__cuda_array_interface__ = {"shape": (int(rows), int(cols)), "typestr": "<f4",
                                         "data": (int(handle.value), False), "version": 3, "strides": None}


def synchronize_context() -> None:
    """``cuCtxSynchronize`` of the calling thread's current CUDA context (the driver API through
    ctypes); RuntimeError with the CUresult on failure."""
    code = ctypes.CDLL("libcuda.so.1").cuCtxSynchronize()
    if code != 0:
        raise RuntimeError(f"cuCtxSynchronize failed with CUresult {code}")


class CudaInfer(NativeInfer):
    """Gather → CUDA dp4a INT8 MLP on the device's buffers → decode (module docstring); same
    arguments as :class:`.infer_native.NativeInfer`, ``device`` a slangpy CUDA device."""

    def _make_network(self) -> CudaBackend:
        with self.device.cuda_context_scope():
            return CudaBackend(self.mlp)

    def _memory_types(self) -> tuple:
        import slangpy as spy

        return spy.MemoryType.device_local, spy.MemoryType.device_local

    def _evaluate(self, rows: int) -> None:
        x = CudaBufferView(self._inputs, rows, self.mlp.n_inputs)
        y = CudaBufferView(self._outputs, rows, self.mlp.n_outputs)
        with self.device.cuda_context_scope():
            self.network.forward_device(x, y)
            synchronize_context()
