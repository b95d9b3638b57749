"""The CUDA INT8 backend (cuda/mlp_dp4a.cu through neumat._native).

Without a GPU: the extension still imports (static CUDA runtime), reports whether CUDA was
compiled, and fails cleanly with "no CUDA device: ..." when used; the kernel's per-sample code
(cuda/mlp_dp4a_kernel.cuh) is compiled for the host through cuda/host_emulation.cpp and checked
bit-exact. With a GPU (tests marked `gpu`): bit-exact through numpy, cupy and torch arrays.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from cuda_emulation import build_emulation, emulated_forward

from neumat.backends import BackendUnavailable
from neumat.backends.cuda import CudaBackend
from neumat.backends.native_cpu import native_import_error
from neumat.quant import forward
from neumat.quant.testvectors import SHAPES, check_cases, count_mismatches, random_inputs, random_mlp

try:
    from neumat import _native
except ImportError:
    _native = None

CUDA_REASON = CudaBackend.unavailable_reason()
needs_device = pytest.mark.skipif(CUDA_REASON is not None, reason=f"CUDA backend unavailable: {CUDA_REASON}")


def _bits(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def _mlp(shape="triple_plane", seed=0):
    return random_mlp(SHAPES[shape], np.random.default_rng(seed))


def _args(mlp):
    return mlp.flat_weights(), np.asarray(mlp.widths, np.int32), mlp.multipliers()


# ---- everywhere (no GPU needed) -----------------------------------------------------------


def test_build_reports_cuda_status():
    assert _native is not None, native_import_error()
    info = _native.build_info
    assert info["cuda_option"] in ("AUTO", "ON", "OFF")
    assert info["cuda_compiled"] is _native.cuda_compiled
    if info["cuda_option"] == "OFF":
        assert not _native.cuda_compiled
        assert "NEUMAT_CUDA=OFF" in _native.cuda_unavailable_reason()
    elif info["cuda_option"] == "ON":
        assert _native.cuda_compiled
    elif shutil.which("nvcc"):  # AUTO with a toolkit on PATH (as at build time here)
        assert _native.cuda_compiled, "nvcc is on PATH but the extension was built without CUDA"
    # NEUMAT_CUDA_DEBUG builds synchronize after every launch: never the default.
    assert _native.cuda_debug_checks is False
    if _native.cuda_compiled:
        assert info["cuda_runtime"] == "static"
        assert "90" in info["cuda_architectures"]
        assert _native.cuda_runtime_version().count(".") == 1
    else:
        assert _native.cuda_device_count() == 0
        assert "built without CUDA" in _native.cuda_unavailable_reason()
        assert CUDA_REASON == _native.cuda_unavailable_reason()


def test_no_device_fails_cleanly():
    if _native is None or not _native.cuda_compiled:
        pytest.skip("neumat._native was built without CUDA")
    if _native.cuda_device_count() > 0:
        pytest.skip("a CUDA device is present")
    reason = _native.cuda_unavailable_reason()
    assert reason.startswith("no CUDA device: ") and len(reason) > len("no CUDA device: ")
    assert CUDA_REASON == reason
    mlp = _mlp()
    with pytest.raises(RuntimeError, match="^no CUDA device: "):
        _native.CudaMlp(*_args(mlp))
    with pytest.raises(BackendUnavailable, match="INT8 backend 'cuda' is unavailable: no CUDA device: "):
        CudaBackend(mlp)
    # The module keeps working after the failed CUDA calls.
    x = random_inputs(mlp, 10, np.random.default_rng(0))
    np.testing.assert_array_equal(_bits(_native.mlp_int8_forward(x, *_args(mlp))), _bits(forward(mlp, x)))


def test_cuda_mlp_validates_network_before_touching_the_device():
    if _native is None or not _native.cuda_compiled:
        pytest.skip("neumat._native was built without CUDA")
    w, n, m = _args(_mlp())
    with pytest.raises(ValueError, match=r"every width must be in \[1, 128\]"):
        _native.CudaMlp(w, np.array([24, 300, 3], np.int32), m[:3])
    with pytest.raises(ValueError, match="weights must have dtype uint32"):
        _native.CudaMlp(w.astype(np.int64), n, m)


@pytest.fixture(scope="module")
def emulation(tmp_path_factory):
    """cuda/host_emulation.cpp built with the host C++ compiler (tests/cuda_emulation.py)."""
    return build_emulation(tmp_path_factory.mktemp("emu"))


def test_kernel_code_bit_exact_in_host_emulation(emulation):
    """The device code's arithmetic, packing and tile staging (every MW instantiation), without
    a GPU: one block per 256-sample tile, as the launcher runs batches below the resident size."""
    used = set()

    def run(mlp, x):
        y, mw = emulated_forward(emulation, mlp, x)
        used.add(mw)
        return y

    cases = check_cases(np.random.default_rng(11), 100_000)
    assert count_mismatches(run, cases) == {name: 0 for name, _, _ in cases}
    assert used == {8, 16, 32}


# ---- on a CUDA device ---------------------------------------------------------------------


@pytest.mark.gpu
@needs_device
def test_bit_exact_numpy_path():
    cases = check_cases(np.random.default_rng(99), 100_000)
    mismatches = count_mismatches(lambda mlp, x: CudaBackend(mlp)(x), cases)
    assert mismatches == {name: 0 for name, _, _ in cases}
    assert CudaBackend(cases[0][1]).describe().startswith("CUDA dp4a on device 0")


@pytest.mark.gpu
@needs_device
@pytest.mark.parametrize("n", [0, 1, 17, 255, 256, 257, 100_003])
def test_batch_sizes(n):
    mlp = _mlp("odd_widths", seed=n)
    x = random_inputs(mlp, n, np.random.default_rng(n))
    y = CudaBackend(mlp)(x)
    assert y.shape == (n, mlp.n_outputs)
    np.testing.assert_array_equal(_bits(y), _bits(forward(mlp, x)))


@pytest.mark.gpu
@needs_device
def test_bit_exact_torch_device_tensors():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device (CPU build of torch?)")
    cases = check_cases(np.random.default_rng(5), 100_000)

    def run(mlp, x):
        b = CudaBackend(mlp)
        xd = torch.from_numpy(x).cuda()
        y = b.forward_device(xd)
        assert y.device == xd.device and y.dtype == torch.float32
        return y.cpu().numpy()

    assert count_mismatches(run, cases) == {name: 0 for name, _, _ in cases}
    # An explicit side stream and a preallocated output.
    mlp, x = cases[0][1], cases[0][2]
    b = CudaBackend(mlp)
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        xd = torch.from_numpy(x).cuda()
        out = torch.empty((x.shape[0], mlp.n_outputs), dtype=torch.float32, device="cuda")
        b.forward_device(xd, out, stream=side.cuda_stream)
    side.synchronize()
    np.testing.assert_array_equal(_bits(out.cpu().numpy()), _bits(forward(mlp, x)))
    with pytest.raises(ValueError, match="x must have dtype float32"):
        b.forward_device(xd.double())
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        b.forward_device(torch.zeros((mlp.n_inputs, 10), device="cuda").t())
    with pytest.raises(ValueError, match=r"y must have shape"):
        b.forward_device(xd, torch.empty((3, 3), device="cuda"))
    with pytest.raises(ValueError, match="not CUDA device memory"):
        b._impl.forward_device(xd, _HostCai(out.shape), None)


@pytest.mark.gpu
@needs_device
def test_bit_exact_cupy_device_arrays():
    cupy = pytest.importorskip("cupy")
    cases = check_cases(np.random.default_rng(6), 100_000)

    def run(mlp, x):
        y = CudaBackend(mlp).forward_device(cupy.asarray(x))
        return cupy.asnumpy(y)

    assert count_mismatches(run, cases) == {name: 0 for name, _, _ in cases}
    mlp, x = cases[1][1], cases[1][2][:0]
    y = CudaBackend(mlp).forward_device(cupy.asarray(x))  # N == 0 launches nothing
    assert y.shape == (0, mlp.n_outputs)


class _HostCai:
    """A fake device array whose pointer is host memory (the launcher must refuse it)."""

    def __init__(self, shape):
        self._buf = np.zeros(shape, np.float32)
        self.shape = shape

    @property
    def __cuda_array_interface__(self):
        return {
            "shape": self.shape,
            "typestr": "<f4",
            "data": (self._buf.ctypes.data, False),
            "version": 3,
            "strides": None,
            "stream": None,
        }
