"""CUDA kernel hardening (issue 15, item 4): the coalesced tile layout and the grid-stride loop,
the launcher's stream plan (CUDA-array-interface streams honoured with an event wait) and its
refusal of overlapping x/y.

Without a GPU the kernel's phases and the launcher's CUDA-free decisions run on the host
(cuda/host_emulation.cpp through tests/cuda_emulation.py); the `gpu` tests check the same on a
device and skip elsewhere with the reason.
"""

from __future__ import annotations

import numpy as np
import pytest
from cuda_emulation import build_emulation, disjoint_error, emulated_forward, layout, plan_streams
from neumat.backends.cuda import CudaBackend
from neumat.quant import forward
from neumat.quant.testvectors import SHAPES, edge_inputs, random_inputs, random_mlp

CUDA_REASON = CudaBackend.unavailable_reason()
needs_device = pytest.mark.skipif(CUDA_REASON is not None, reason=f"CUDA backend unavailable: {CUDA_REASON}")

H100_OPTIN = 232_448  # cudaDevAttrMaxSharedMemoryPerBlockOptin on H100 / H200 (bytes)
TURING_OPTIN = 65_536
PASCAL_LIMIT = 49_152


def _bits(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def _mlp(shape: str, seed: int = 0):
    return random_mlp(SHAPES[shape], np.random.default_rng(seed))


def _inputs(mlp, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    edges = edge_inputs(mlp, rng)
    return np.vstack([edges, random_inputs(mlp, n - len(edges), rng)])


@pytest.fixture(scope="module")
def emulation(tmp_path_factory):
    return build_emulation(tmp_path_factory.mktemp("emu"))


# ---- host emulation (no GPU needed) -------------------------------------------------------


@pytest.mark.parametrize("shape", ["triple_plane", "odd_widths", "single_layer", "widest"])
@pytest.mark.parametrize(("threads", "blocks", "descending"), [(256, 2, False), (32, 3, True), (64, 1, False)])
def test01_grid_stride_over_tiles_bit_exact(emulation, shape, threads, blocks, descending):
    """A batch several times the grid's threads, ending in a partial tile: every block loops
    over tiles, re-staging inputs into shared memory that still holds the previous tile."""
    mlp = _mlp(shape, seed=threads + blocks)
    n = 3 * threads * blocks + 37
    x = _inputs(mlp, n, seed=n)
    y, _ = emulated_forward(emulation, mlp, x, threads=threads, blocks=blocks, descending=descending)
    assert not np.isnan(y).any(), "some outputs were never stored"
    np.testing.assert_array_equal(_bits(y), _bits(forward(mlp, x)))


def test02_tile_layout(emulation):
    """Row strides are odd (a warp's 32 rows start in 32 different banks), the tiles follow the
    weights, and the block size is the largest of 256..32 that fits the shared memory."""
    mlp = _mlp("triple_plane")  # 24 -> 32 -> 32 -> 32 -> 3
    weight_words = mlp.flat_weights().size
    t = layout(emulation, mlp, PASCAL_LIMIT)
    assert t == {
        "threads": 256, "in_words": 6, "in_stride": 7, "in_offset": weight_words, "out_stride": 3,
        "out_offset": weight_words + 256 * 7, "total_words": weight_words + 256 * (7 + 3),
    }
    odd = layout(emulation, _mlp("odd_widths"), PASCAL_LIMIT)  # 7 -> 13 -> 5 -> 3
    assert (odd["in_words"], odd["in_stride"], odd["out_stride"]) == (2, 3, 3)
    # 128 -> 128 -> 128: 32 KiB of weights, then 4 * (33 + 129) bytes per thread.
    widest = _mlp("widest")
    assert layout(emulation, widest, H100_OPTIN)["threads"] == 256
    assert layout(emulation, widest, TURING_OPTIN)["threads"] == 32
    assert layout(emulation, widest, PASCAL_LIMIT)["threads"] == 0  # refused with a clear error
    assert layout(emulation, widest, 4 * (8192 + 64 * 162))["threads"] == 64  # exact fit


@pytest.mark.parametrize(
    ("requested", "x", "y", "launch", "waits"),
    [
        (None, None, None, 1, []),  # legacy default stream
        (0, None, None, 1, []),  # handle 0 is the legacy default stream too
        (None, 0x100, None, 0x100, []),  # x's stream
        (None, None, 0x200, 0x200, []),  # else y's
        (None, 0x100, 0x200, 0x100, [0x200]),  # on x's, after y's pending work
        (0x300, 0x100, 0x200, 0x300, [0x100, 0x200]),  # explicit: waits for both
        (0x300, 0x100, 0x100, 0x300, [0x100]),  # one wait per stream
        (0x300, 0x300, None, 0x300, []),  # no wait on the launch stream itself
        (0, 1, 2, 1, [2]),  # CAI 1 = legacy = handle 0; 2 = per-thread default stream
    ],
)
def test03_stream_plan(emulation, requested, x, y, launch, waits):
    assert plan_streams(emulation, requested, x, y) == (launch, waits)


def test04_overlapping_x_y_refused(emulation):
    assert disjoint_error(emulation, 0x1000, 400, 0x1000 + 400, 12) is None  # adjacent
    assert disjoint_error(emulation, 0x2000, 400, 0x1000, 0x1000) is None  # y just before x
    assert disjoint_error(emulation, 0x1000, 0, 0x1000, 12) is None  # N == 0: nothing to overlap
    msg = disjoint_error(emulation, 0x1000, 400, 0x1000 + 396, 12)
    assert msg == ("x and y overlap in device memory (x: 400 bytes at 0x1000, y: 12 bytes at 0x118c); "
                   "in-place evaluation is not supported: pass a separate output array")
    assert disjoint_error(emulation, 0x1000, 400, 0x1000, 400) is not None  # in place


# ---- on a CUDA device ---------------------------------------------------------------------


@pytest.mark.gpu
@needs_device
def test05_batch_beyond_resident_threads_bit_exact():
    """N > the threads the grid holds at once: the grid-stride loop runs on the device."""
    mlp = _mlp("triple_plane", seed=5)
    b = CudaBackend(mlp)
    impl = b._impl
    assert impl.threads == 256
    weights = mlp.flat_weights().size
    assert impl.shared_bytes == 4 * (weights + 256 * (7 + 3))
    n = 2 * impl.resident_threads + 1234
    x = _inputs(mlp, n, seed=1)
    np.testing.assert_array_equal(_bits(b(x)), _bits(forward(mlp, x)))


_SPIN = r"""extern "C" __global__ void spin(long long cycles) {
  const long long t0 = clock64();
  while (clock64() - t0 < cycles) {}
}"""


class _Cai:
    """A device array re-exported with a chosen CAI v3 ``stream`` entry (None: no ordering)."""

    def __init__(self, array, stream):
        self.array, self.stream = array, stream
        self.shape = array.shape

    @property
    def __cuda_array_interface__(self):
        return {**self.array.__cuda_array_interface__, "version": 3, "stream": self.stream}


def _cupy_setup():
    cupy = pytest.importorskip("cupy")
    mlp = _mlp("triple_plane", seed=7)
    x = random_inputs(mlp, 8192, np.random.default_rng(7))
    spin = cupy.RawKernel(_SPIN, "spin")
    cycles = np.int64(500_000_000)  # ~0.25 s at 2 GHz: far longer than enqueueing the rest takes
    streams = cupy.cuda.Stream(non_blocking=True), cupy.cuda.Stream(non_blocking=True)
    return cupy, mlp, x, lambda: spin((1,), (1,), (cycles,)), streams


@pytest.mark.gpu
@needs_device
def test06_waits_for_x_producer_stream():
    """x is still being written on the producer stream; the kernel runs on another stream."""
    cupy, mlp, x, spin, (producer, consumer) = _cupy_setup()
    b = CudaBackend(mlp)
    source = cupy.asarray(x)
    xd = cupy.zeros_like(source)
    yd = cupy.zeros((x.shape[0], mlp.n_outputs), cupy.float32)
    cupy.cuda.Device().synchronize()
    with producer:
        spin()  # on the current stream: producer
        xd[...] = source  # pending on producer behind the spin
    b._impl.forward_device(_Cai(xd, producer.ptr), _Cai(yd, None), consumer.ptr)
    consumer.synchronize()
    np.testing.assert_array_equal(_bits(cupy.asnumpy(yd)), _bits(forward(mlp, x)))
    # Without an explicit stream it runs on x's exported stream, after the same pending work.
    yd[...] = 0
    cupy.cuda.Device().synchronize()
    with producer:
        spin()  # on the current stream: producer
        xd[...] = source
    b._impl.forward_device(_Cai(xd, producer.ptr), _Cai(yd, None), None)
    producer.synchronize()
    np.testing.assert_array_equal(_bits(cupy.asnumpy(yd)), _bits(forward(mlp, x)))


@pytest.mark.gpu
@needs_device
def test07_waits_for_y_producer_stream():
    """y still has a pending fill on the producer stream: the kernel's writes must come after."""
    cupy, mlp, x, spin, (producer, consumer) = _cupy_setup()
    b = CudaBackend(mlp)
    xd = cupy.asarray(x)
    yd = cupy.zeros((x.shape[0], mlp.n_outputs), cupy.float32)
    cupy.cuda.Device().synchronize()
    with producer:
        spin()  # on the current stream: producer
        yd.fill(0.5)  # pending on producer
    b._impl.forward_device(_Cai(xd, None), _Cai(yd, producer.ptr), consumer.ptr)
    consumer.synchronize()
    producer.synchronize()
    np.testing.assert_array_equal(_bits(cupy.asnumpy(yd)), _bits(forward(mlp, x)))


@pytest.mark.gpu
@needs_device
def test08_device_argument_errors():
    cupy = pytest.importorskip("cupy")
    mlp = _mlp("odd_widths")  # 7 inputs, 3 outputs
    b = CudaBackend(mlp)
    n = 100
    buf = cupy.zeros(n * 10 + 64, cupy.float32)
    x = buf[: n * 7].reshape(n, 7)
    x[...] = cupy.asarray(random_inputs(mlp, n, np.random.default_rng(8)))
    with pytest.raises(ValueError, match="x and y overlap in device memory"):
        b._impl.forward_device(x, buf[8 : 8 + n * 3].reshape(n, 3), None)
    with pytest.raises(ValueError, match="x and y overlap in device memory"):
        b._impl.forward_device(x, buf[n * 7 - 3 : n * 10 - 3].reshape(n, 3), None)
    y = buf[n * 7 : n * 7 + 3 * 20].reshape(20, 3)
    b._impl.forward_device(x[:20], y, None)  # y starts right after x's memory
    cupy.cuda.Device().synchronize()
    np.testing.assert_array_equal(_bits(cupy.asnumpy(y)), _bits(forward(mlp, cupy.asnumpy(x[:20]))))
    with pytest.raises(ValueError, match="exports stream 0, which the protocol"):
        b._impl.forward_device(_Cai(x, 0), cupy.zeros((n, 3), cupy.float32), None)
