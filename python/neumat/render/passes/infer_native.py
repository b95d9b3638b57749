"""The infer pass's MLP backends, and the ``native`` one: the pass split around the C++ CPU INT8
MLP (``shaders/infer_native.slang``; :class:`neumat.backends.native_cpu.NativeCpuBackend`).

Backends (:attr:`InferPass.backend <neumat.render.passes.infer.InferPass.backend>`, declared per
material kind in :attr:`neumat.material.kinds.MaterialKind.infer_backends`):

==========  ======================================================================================
backend     what runs
==========  ======================================================================================
``slang``   one kernel per frame (``infer_int8`` / ``infer_fp32`` / ``infer_fp16``): features,
            MLP, output decoding and the shaded sum, on the render device
``native``  INT8 only: ``infer_gather`` writes the MLP inputs, the host evaluates the network
            with ``neumat._native`` (VNNI/AVX2, bit-exact with :func:`neumat.quant.forward`),
            ``infer_decode`` finishes the pass — btf / irradiance / shaded / features /
            directions bit-identical to ``slang`` at precision int8 (same Slang steps, same
            inputs)
``cuda``    INT8 only, on a CUDA render device (``--device cuda``): the same split, the MLP the
            dp4a kernel of ``neumat._native`` reading and writing the exchange buffers in the
            device's memory (no host round trip; :mod:`.infer_cuda`), bit-identical likewise
``auto``    on a software rasterizer (lavapipe: its INT8 MLP is ~20x slower than the native one)
            ``native`` when the extension imports, the precision is int8 and the kind declares
            it; on a hardware device the backend :data:`MEASURED_FASTEST` records for its device
            type when it can run there; else ``slang``
==========  ======================================================================================

Exchange buffers of the native path (``HostMlpIo`` of ``infer_native.slang``), per frame of
W × H pixels, M masked pixels (``mask`` ≥ 0.5), L lights, n_0 MLP inputs:

=============  ================================  ===========================================
buffer         shape, dtype                      meaning
=============  ================================  ===========================================
``counter``    [1] uint32                        rows gather took (= M; zeroed before gather)
``rows``       [H · W] int32                     each masked pixel's row (atomic order, so
                                                 rows are in no particular pixel order)
``inputs``     [capacity · L, n_0] float32       row r, light i: (r · L + i); the exact
                                                 float32 features the INT8 MLP quantizes
``outputs``    [capacity · L, 3] float32         the MLP's rgb in [0, 1], same indexing
=============  ================================  ===========================================

``inputs`` lives in read-back memory and ``outputs`` in upload memory (host-visible: on lavapipe
every buffer is host memory, so neither crosses a bus). ``capacity`` (rows) starts at a quarter
of the pixels and grows to 1.25 · M when a frame has more masked pixels (that frame gathers twice).

Step times (:meth:`NativeInfer.step_timings`, ms): ``gather`` and ``decode`` are device
timestamps around their dispatches; ``mlp`` is host wall time from the gather's completion to
the outputs' upload (read-back, native MLP, upload).
"""

from __future__ import annotations

import time

import numpy as np

from ...backends.cuda import CudaBackend
from ...backends.native_cpu import NativeCpuBackend, native_import_error
from ...backends.slang import mlp_kernel
from ...device import describe
from ...quant import Int8MLP
from .base import RenderContext

SHADER = "infer_native.slang"
AUTO = "auto"
"""Backend request: the fastest for the device (module docstring)."""
NATIVE = "native"
SLANG = "slang"
CUDA = "cuda"
INFER_BACKEND_NAMES = (AUTO, SLANG, NATIVE, CUDA)
"""Every name a request may use (a material kind supports a subset besides ``auto``)."""
INFER_BACKEND_HELP = ("Where the infer pass's MLP runs: slang (in its kernel on the render device), native (the "
                      "C++ CPU INT8 MLP between a gather and a decode kernel; int8 only, same image to the bit), cuda "
                      "(the same split around the dp4a CUDA MLP on a CUDA render device's buffers, --device cuda) or "
                      "auto (native on a software rasterizer such as lavapipe when the extension is built, else slang).")
"""``--infer-backend`` help of the commands that render."""
MEASURED_FASTEST: dict[str, str] = {}
"""Device type (``vulkan`` / ``cuda``) -> the infer backend ``neumat bench frames --infer-backend
slang --infer-backend cuda`` measured fastest at INT8 on a hardware GPU of that type
(``scripts/gpu_check.sh``), which ``auto`` takes there. Empty until such a measurement is
recorded here: ``auto`` takes ``slang`` on hardware devices."""
FIRST_CAPACITY = 0.25
"""Rows the exchange buffers first hold, as a fraction of the frame's pixels."""
GROWTH = 1.25
"""Capacity after an overflow, as a multiple of the masked pixels counted."""


class InferBackendError(ValueError):
    """An infer backend that cannot run the requested pass; the message says what to use or build."""


def refusal(backend: str, device, precision: str) -> str | None:
    """Why ``backend`` (``native`` / ``cuda``; ``slang`` runs everywhere) cannot run the pass at
    the MLP ``precision`` on ``device`` (slangpy), or None when it can."""
    if backend == SLANG:
        return None
    if precision != "int8":
        return (f"the {backend} infer backend runs the INT8 MLP only, got precision {precision!r}; "
                "use infer backend 'slang' (or 'auto')")
    if backend == CUDA:
        desc = describe(device)
        if desc.api != "cuda":
            return (f"infer backend 'cuda' evaluates the MLP in the render device's own buffers, so it needs a CUDA "
                    f"render device (--device cuda or NEUMAT_DEVICE=cuda); this one is {desc} (sharing Vulkan "
                    "buffers with CUDA is not implemented); use 'slang' or 'native' here")
        reason = CudaBackend.unavailable_reason()
        return None if reason is None else f"infer backend 'cuda': {reason}"
    reason = native_import_error()
    return None if reason is None else f"infer backend 'native': {reason}"


def resolve_backend(requested: str, device, precision: str, supported: tuple[str, ...]) -> str:
    """The backend a pass runs: ``requested`` (``"auto"`` or one of ``supported``, the material
    kind's :attr:`~neumat.material.kinds.MaterialKind.infer_backends`) resolved for ``device``
    (slangpy) and the MLP ``precision`` (``auto``: the module docstring's rule).

    Raises:
        InferBackendError: an unknown or unsupported backend, or one that cannot run here
            (:func:`refusal`: a float precision with native/cuda, native without the C++
            extension, cuda off a CUDA render device or without a CUDA build).
    """
    if requested not in (AUTO, *supported):
        raise InferBackendError(f"infer backend must be one of {[AUTO, *supported]} for this material, "
                                f"got {requested!r}")
    if requested == AUTO:
        desc = describe(device)
        pick = NATIVE if desc.software else MEASURED_FASTEST.get(desc.api, SLANG)
        return pick if pick in supported and refusal(pick, device, precision) is None else supported[0]
    reason = refusal(requested, device, precision)
    if reason is not None:
        raise InferBackendError(reason)
    return requested


class NativeInfer:
    """Gather → native INT8 MLP → decode for one infer pass (module docstring).

    Args:
        device: the pass's slangpy device.
        mlp: the bundle's ``rgb`` network.
        unroll_dots: ``MLP_UNROLL_DOTS`` of the pass's kernels (linked constant).
    """

    def __init__(self, device, mlp: Int8MLP, unroll_dots: int) -> None:
        import slangpy as spy

        self.device, self.mlp = device, mlp
        self.network = self._make_network()
        self.gather = mlp_kernel(device, SHADER, "infer_gather", (), unroll_dots)
        self.decode = mlp_kernel(device, SHADER, "infer_decode", (), unroll_dots)
        usage = spy.BufferUsage
        self._counter = device.create_buffer(size=4, usage=usage.unordered_access | usage.shader_resource,
                                             memory_type=spy.MemoryType.read_back, label="infer.native.counter")
        self._pool = device.create_query_pool(type=spy.QueryType.timestamp, count=4)
        self._rows = None
        self._pixels = 0
        self._shape = (0, 0)
        """(capacity rows, lights) the exchange buffers hold."""
        self._inputs = self._outputs = None
        self._mlp_ms: float | None = None

    def _make_network(self):
        """The MLP backend of :meth:`_evaluate` (the C++ CPU one)."""
        return NativeCpuBackend(self.mlp)

    def _memory_types(self) -> tuple:
        """slangpy memory types of ``inputs`` and ``outputs``: host-visible (read-back, upload)."""
        import slangpy as spy

        return spy.MemoryType.read_back, spy.MemoryType.upload

    def _evaluate(self, rows: int) -> None:
        """``outputs[:rows] = MLP(inputs[:rows])`` after gather finished: read back, native MLP, upload."""
        x = self._inputs.to_numpy().view(np.float32)[: rows * self.mlp.n_inputs].reshape(rows, self.mlp.n_inputs)
        self._outputs.copy_from_numpy(self.network(x).ravel())

    def _exchange(self, pixels: int, capacity: int, lights: int) -> None:
        """(Re)allocate the buffers for ``pixels`` pixels and ``capacity`` rows of ``lights``."""
        import slangpy as spy

        usage = spy.BufferUsage
        if pixels != self._pixels:
            self._rows = self.device.create_buffer(size=4 * pixels, usage=usage.unordered_access | usage.shader_resource,
                                                   label="infer.native.rows")
            self._pixels = pixels
        if (capacity, lights) != self._shape:
            rows = max(capacity * lights, 1)
            inputs, outputs = self._memory_types()
            self._inputs = self.device.create_buffer(
                size=4 * rows * self.mlp.n_inputs, usage=usage.unordered_access | usage.shader_resource,
                memory_type=inputs, label="infer.native.inputs")
            self._outputs = self.device.create_buffer(size=4 * rows * 3, usage=usage.shader_resource,
                                                      memory_type=outputs, label="infer.native.outputs")
            self._shape = (capacity, lights)

    def _host_io(self) -> dict:
        capacity, lights = self._shape
        return {"counter": self._counter, "rows": self._rows, "inputs": self._inputs, "outputs": self._outputs,
                "capacity": capacity, "lightCount": lights}

    def _gather(self, ctx: RenderContext, params: dict) -> int:
        """Dispatch gather and wait; returns the masked pixels counted (rows used)."""
        encoder = self.device.create_command_encoder()
        encoder.clear_buffer(self._counter)
        self.gather.dispatch(command_encoder=encoder,
                             query_pool=self._pool, query_index_before=0, query_index_after=1,
                             hostIo=self._host_io(), **params)
        self.device.submit_command_buffer(encoder.finish())
        self.device.wait()
        return int(self._counter.to_numpy().view(np.uint32)[0])

    def execute(self, ctx: RenderContext, params: dict, use_shadow: int, lights: int) -> None:
        """Run the pass: ``params`` are the kernels' shared arguments (``thread_count`` and the
        uniforms ``frame``, ``planes``, ``lights``, ``io``, ``tiles``: the ``InferFrame`` /
        ``FeaturePlanes`` / ``LightList`` / ``InferBuffers`` / ``TileList`` of the slang path),
        ``lights`` = L."""
        pixels = ctx.width * ctx.height
        capacity = self._shape[0] if pixels == self._pixels else 0
        self._exchange(pixels, capacity or max(1, int(FIRST_CAPACITY * pixels)), lights)
        count = self._gather(ctx, params)
        if count > self._shape[0]:
            self._exchange(pixels, min(pixels, int(np.ceil(GROWTH * count))), lights)
            count = self._gather(ctx, params)
        start = time.perf_counter()
        if count:
            self._evaluate(count * lights)
        self._mlp_ms = 1e3 * (time.perf_counter() - start)
        self.decode.dispatch(query_pool=self._pool, query_index_before=2,
                             query_index_after=3, useShadow=use_shadow, hostIo=self._host_io(), **params)

    def step_timings(self) -> dict[str, float]:
        """``{"gather", "mlp", "decode": ms}`` of the last :meth:`execute` (module docstring);
        call after the device finished it (the render graph does)."""
        if self._mlp_ms is None:
            return {}
        stamps = self._pool.get_timestamp_results(0, 4)  # seconds
        return {"gather": 1e3 * (stamps[1] - stamps[0]), "mlp": self._mlp_ms, "decode": 1e3 * (stamps[3] - stamps[2])}
