"""The Slang INT8 MLP backend: ``shaders/mlp_int8.slang`` dispatched through slangpy.

Runs on the device of :func:`neumat.device.default_device` (a GPU through Vulkan or
CUDA, else Vulkan on Mesa lavapipe), bit-exact with :func:`neumat.quant.forward`. Weights and
multipliers are uploaded once per backend; each call uploads the inputs, dispatches one thread
per vector and reads the outputs back.

Kernel specialization (see the header of ``mlp_int8.slang``): the network shape is the generic
type :func:`slang_mlp_type`; two link-time constants pick code shape per device:
``MLP_UNROLL_DOTS`` (largest fully unrolled layer, in packed int8x4 products) and
``MLP_GROUPSHARED_WORDS`` (size of the groupshared weight copy).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ..quant import MAX_LAYERS, Int8MLP
from ..slang_kernels import compute_kernel
from .base import BackendUnavailable, Int8Backend

if TYPE_CHECKING:
    import slangpy as spy

SHADER = "mlp_int8.slang"
"""The Slang module (in :func:`neumat.slang_kernels.shader_dir`)."""
GROUPSHARED_MAX_WORDS = 4096
"""Largest weight stream copied to groupshared memory (16 KiB, the Vulkan minimum)."""
UNROLL_DOTS = {"software": 256, "hardware": 1024}
"""MLP_UNROLL_DOTS per device kind: on llvmpipe, unrolling each 32x32 layer (256 products)
gains ~2.5x over rolled rows but 64x64 layers would take minutes to JIT; GPU compilers unroll
64x64 layers (1024) quickly. The hardware value is a design choice, not measured here."""
MAX_ROWS_PER_DISPATCH = 1 << 21
"""Vectors per dispatch (2M rows = 32768 workgroups of MLP_BATCH_GROUP_SIZE = 64 threads,
under the 65535 group limit)."""
MAX_INPUT_BYTES = 128 << 20
"""Input bytes per dispatch; bigger batches are split so device buffers stay bounded."""
WEIGHTS_IN = ("auto", "buffer", "groupshared")
"""Where the kernel reads weights: device buffer, or a per-workgroup groupshared copy.
``auto`` = buffer on software devices (measured 2x faster on llvmpipe), groupshared on GPUs
when the stream fits :data:`GROUPSHARED_MAX_WORDS`."""


def slang_mlp_type(widths: tuple[int, ...]) -> str:
    """The Slang type naming a network shape, e.g. ``Int8Mlp<24, 32, 32, 32, 3, 0, 0, 0, 0>``.

    Args:
        widths: ``(n_0, ..., n_L)`` as validated by :class:`neumat.quant.Int8MLP`.
    """
    if not 2 <= len(widths) <= MAX_LAYERS + 1:
        raise ValueError(f"an INT8 MLP has 2..{MAX_LAYERS + 1} widths, got {widths}")
    padded = [int(w) for w in widths] + [0] * (MAX_LAYERS + 1 - len(widths))
    return f"Int8Mlp<{', '.join(str(w) for w in padded)}>"


def link_constants(unroll_dots: int, groupshared_words: int) -> str:
    """Slang source exporting the link-time constants of ``mlp_int8.slang``."""
    return (
        f"export static const int MLP_UNROLL_DOTS = {int(unroll_dots)};\n"
        f"export static const int MLP_GROUPSHARED_WORDS = {max(1, int(groupshared_words))};\n"
    )


def mlp_kernel(device: spy.Device, shader: str, entry: str, networks: tuple[tuple[int, ...], ...],
               unroll_dots: int, groupshared_words: int = 1) -> spy.ComputeKernel:
    """The compute kernel ``entry`` of ``shader`` specialized to INT8 networks of widths
    ``networks`` (one ``Int8Mlp<...>`` type argument per network, :func:`slang_mlp_type`; none
    for a float entry point) and linked with ``mlp_int8.slang``'s constants
    (:func:`link_constants`); compiled once (:func:`neumat.slang_kernels.compute_kernel`)."""
    words = max(1, int(groupshared_words))
    config = (f"neumat_mlp_int8_config_u{int(unroll_dots)}_g{words}", link_constants(unroll_dots, words))
    return compute_kernel(device, shader, entry, tuple(slang_mlp_type(n) for n in networks), config)


def int8_weight_buffers(device: spy.Device, mlp: Int8MLP, label: str) -> dict[str, spy.Buffer]:
    """The parameter block of an ``Int8Mlp`` (``mlp_int8.slang``): read-only device buffers of
    the packed weight words (``weights``) and the per-layer requantization multipliers
    (``multipliers``), uploaded once; ``label`` prefixes their debug names."""
    import slangpy as spy

    usage = spy.BufferUsage.shader_resource
    return {"weights": device.create_buffer(usage=usage, data=mlp.flat_weights(), label=f"{label}.w8"),
            "multipliers": device.create_buffer(usage=usage, data=mlp.multipliers(), label=f"{label}.m")}


def build_kernel(
    device: spy.Device, widths: tuple[int, ...], groupshared: bool, unroll_dots: int
) -> spy.ComputeKernel:
    """The batch kernel of ``mlp_int8.slang`` for one network shape (:func:`mlp_kernel`).

    Args:
        device: a slangpy device whose include paths contain :func:`neumat.slang_kernels.shader_dir`.
        widths: network widths ``(n_0, ..., n_L)``.
        groupshared: use ``mlp_int8_batch_groupshared`` (weights copied per workgroup).
        unroll_dots: ``MLP_UNROLL_DOTS`` (see :data:`UNROLL_DOTS`).
    """
    words = int(sum(widths[l + 1] * ((widths[l] + 3) // 4) for l in range(len(widths) - 1)))
    entry = "mlp_int8_batch_groupshared" if groupshared else "mlp_int8_batch"
    return mlp_kernel(device, SHADER, entry, (tuple(widths),), unroll_dots, words if groupshared else 1)


@lru_cache(maxsize=1)
def _device_or_reason() -> tuple[object | None, str | None]:
    """(default device, None) or (None, why there is none); tried once per process."""
    try:
        from ..device import DeviceError, default_device
    except ImportError as e:  # pragma: no cover - the package itself is broken
        return None, f"neumat.render could not be imported ({e})"
    try:
        return default_device(), None
    except DeviceError as e:
        return None, str(e)
    except ImportError as e:
        return None, f"slangpy is not importable ({e}); pip install slangpy==0.43.1"


class SlangBackend(Int8Backend):
    """Evaluates the INT8 MLP with ``shaders/mlp_int8.slang`` on a slangpy device.

    Args:
        mlp: the quantized network (weights uploaded once, here).
        device: the slangpy device; default :func:`neumat.device.default_device`.
        weights_in: one of :data:`WEIGHTS_IN`.
        unroll_dots: override ``MLP_UNROLL_DOTS`` (default from :data:`UNROLL_DOTS`).
    """

    name: ClassVar[str] = "slang"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return _device_or_reason()[1]

    def __init__(
        self,
        mlp: Int8MLP,
        device: spy.Device | None = None,
        weights_in: str = "auto",
        unroll_dots: int | None = None,
    ) -> None:
        if device is None:
            device, reason = _device_or_reason()
            if reason is not None:
                raise BackendUnavailable(f"INT8 backend 'slang' is unavailable: {reason}")
        self.mlp = mlp
        import slangpy as spy

        from ..device import describe

        if weights_in not in WEIGHTS_IN:
            raise ValueError(f"weights_in must be one of {WEIGHTS_IN}, got {weights_in!r}")
        self.device = device
        self.description = describe(device)
        words = mlp.flat_weights()
        fits = words.size <= GROUPSHARED_MAX_WORDS
        if weights_in == "groupshared" and not fits:
            raise ValueError(
                f"{words.size} weight words exceed the groupshared capacity "
                f"{GROUPSHARED_MAX_WORDS}; use weights_in='buffer'"
            )
        self.groupshared = weights_in == "groupshared" or (
            weights_in == "auto" and fits and not self.description.software
        )
        if unroll_dots is None:
            unroll_dots = UNROLL_DOTS["software" if self.description.software else "hardware"]
        self.unroll_dots = int(unroll_dots)
        self.kernel = build_kernel(device, mlp.widths, self.groupshared, self.unroll_dots)
        self._params = int8_weight_buffers(device, mlp, "mlp_int8")

    def describe(self) -> str:
        where = "groupshared" if self.groupshared else "buffer"
        return f"slang on {self.description} (weights in {where}, unroll {self.unroll_dots})"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = self._check_inputs(x)
        n, n_out = x.shape[0], self.mlp.n_outputs
        out = np.empty((n, n_out), dtype=np.float32)
        rows = max(1, min(MAX_ROWS_PER_DISPATCH, MAX_INPUT_BYTES // (4 * x.shape[1])))
        for start in range(0, n, rows):
            chunk = x[start : start + rows]
            out[start : start + chunk.shape[0]] = self._dispatch(chunk)
        return out

    def _dispatch(self, x: np.ndarray) -> np.ndarray:
        """One dispatch over float32 ``[n, n_0]`` rows (n <= MAX_ROWS_PER_DISPATCH)."""
        import slangpy as spy

        n, n_out = x.shape[0], self.mlp.n_outputs
        inputs = self.device.create_buffer(
            usage=spy.BufferUsage.shader_resource, data=x.reshape(-1)
        )
        outputs = self.device.create_buffer(
            usage=spy.BufferUsage.unordered_access, size=4 * n * n_out
        )
        # Entry-point uniforms are keyword arguments (``vars=`` binds only globals).
        self.kernel.dispatch(
            thread_count=[n, 1, 1], params=self._params, inputs=inputs, outputs=outputs, count=n
        )
        return outputs.to_numpy().view(np.float32).reshape(n, n_out)
