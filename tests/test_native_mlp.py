"""The C++ CPU INT8 backend (neumat._native): bit-exact on every ISA path this CPU runs,
batch-tail and threading invariance, and argument validation at the binding."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neumat.backends.native_cpu import NativeCpuBackend, native_import_error
from neumat.quant import forward
from neumat.quant.testvectors import SHAPES, check_cases, count_mismatches, random_inputs, random_mlp

try:
    from neumat import _native
except ImportError:  # every test fails with the build hint (the extension is always built)
    _native = None


@pytest.fixture(autouse=True)
def _require_extension():
    if _native is None:
        pytest.fail(native_import_error())

ALL_ISAS = ("avx512vnni", "avxvnni", "avx2", "scalar")


def _isa_or_skip(isa: str) -> str:
    supported = list(_native.cpu_supported_isas())
    if isa not in supported:
        built = _native.build_info["cpu_isas_compiled"]
        where = "this build" if isa not in built else "this CPU"
        pytest.skip(f"ISA path '{isa}' is not supported by {where} (supported: {supported})")
    return isa


@pytest.fixture(params=ALL_ISAS)
def isa(request) -> str:
    return _isa_or_skip(request.param)


def _run(mlp, x, isa="auto", threads=0):
    return _native.mlp_int8_forward(
        x, mlp.flat_weights(), np.asarray(mlp.widths, np.int32), mlp.multipliers(), isa=isa, threads=threads
    )


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


@pytest.fixture(scope="module")
def cases():
    return check_cases(np.random.default_rng(20240611), 100_000)


def test_extension_builds_and_reports_isas():
    assert native_import_error() is None
    supported = list(_native.cpu_supported_isas())
    assert supported[-1] == "scalar"
    assert set(supported) <= set(ALL_ISAS)
    assert _native.cpu_isa() == supported[0]
    assert tuple(_native.CPU_ISAS) == ALL_ISAS


def test_bit_exact_on_check_cases(isa, cases):
    mismatches = count_mismatches(lambda mlp, x: _run(mlp, x, isa=isa), cases)
    assert mismatches == {name: 0 for name, _, _ in cases}


def test_backend_class_bit_exact_and_describes_isa(isa, cases):
    for name, mlp, x in cases[:3]:
        backend = NativeCpuBackend(mlp, isa=isa, threads=2)
        assert isa in backend.describe()
        np.testing.assert_array_equal(_bits(backend(x[:5000])), _bits(forward(mlp, x[:5000])), err_msg=name)


@pytest.mark.parametrize("n", [0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 4099])
@pytest.mark.parametrize("shape", ["triple_plane", "odd_widths", "widest"])
def test_batch_tails(isa, shape, n):
    rng = np.random.default_rng(n)
    mlp = random_mlp(SHAPES[shape], rng)
    x = random_inputs(mlp, n, rng)
    y = _run(mlp, x, isa=isa)
    assert y.shape == (n, mlp.n_outputs) and y.dtype == np.float32
    np.testing.assert_array_equal(_bits(y), _bits(forward(mlp, x)))


def test_thread_count_does_not_change_results(isa):
    rng = np.random.default_rng(7)
    mlp = random_mlp(SHAPES["neumip_rgb"], rng)
    x = random_inputs(mlp, 50_001, rng)
    one = _run(mlp, x, isa=isa, threads=1)
    for threads in (2, 3, 8, 0):
        np.testing.assert_array_equal(_bits(_run(mlp, x, isa=isa, threads=threads)), _bits(one))
    np.testing.assert_array_equal(_bits(one), _bits(forward(mlp, x)))


def test_concurrent_python_threads_share_the_extension():
    """The GIL is released inside; concurrent calls from Python threads stay correct."""
    rng = np.random.default_rng(3)
    mlp = random_mlp(SHAPES["triple_plane"], rng)
    xs = [random_inputs(mlp, 20_000 + i, rng) for i in range(4)]
    out: list[np.ndarray | None] = [None] * len(xs)

    def work(i):
        out[i] = _run(mlp, xs[i], threads=1)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for x, y in zip(xs, out):
        np.testing.assert_array_equal(_bits(y), _bits(forward(mlp, x)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    widths=st.lists(st.integers(1, 128), min_size=2, max_size=9),
    n=st.integers(0, 70),
    seed=st.integers(0, 2**32 - 1),
    pow2=st.booleans(),
)
def test_random_shapes_match_reference_on_every_isa(widths, n, seed, pow2):
    rng = np.random.default_rng(seed)
    mlp = random_mlp(tuple(widths), rng, pow2_scales=pow2)
    x = random_inputs(mlp, n, rng)
    expect = _bits(forward(mlp, x))
    for isa in _native.cpu_supported_isas():
        np.testing.assert_array_equal(_bits(_run(mlp, x, isa=isa)), expect, err_msg=isa)


# ---- argument validation at the binding ------------------------------------------------


@pytest.fixture(scope="module")
def net():
    mlp = random_mlp(SHAPES["triple_plane"], np.random.default_rng(1))
    args = dict(
        weights=mlp.flat_weights(),
        widths=np.asarray(mlp.widths, np.int32),
        multipliers=mlp.multipliers(),
    )
    x = random_inputs(mlp, 40, np.random.default_rng(2))
    return mlp, x, args


def _call(x, **args):
    return _native.mlp_int8_forward(x, args["weights"], args["widths"], args["multipliers"])


@pytest.mark.parametrize(
    "make_x, message",
    [
        (lambda x: x.astype(np.float64), r"x must have dtype float32, got float64"),
        (lambda x: x.astype(np.float16), r"x must have dtype float32, got float16"),
        (lambda x: x.reshape(-1), r"x must be 2-D, got shape \(960,\)"),
        (lambda x: x[None], r"x must be 2-D, got shape \(1, 40, 24\)"),
        (lambda x: x[:, :12], r"x must be C-contiguous"),
        (lambda x: np.asfortranarray(x), r"x must be C-contiguous"),
        (lambda x: x[::2], r"x must be C-contiguous"),
        (lambda x: x[:, :20].copy(), r"x must have shape \[N, 24\] \(n_0 = widths\[0\]\), got \(40, 20\)"),
        (lambda x: x.astype(">f4"), r"x must have dtype float32"),
    ],
)
def test_bad_inputs_raise_value_error(net, make_x, message):
    _, x, args = net
    with pytest.raises(ValueError, match=message):
        _call(make_x(x), **args)


def test_non_array_input_raises_type_error(net):
    _, x, args = net
    with pytest.raises(TypeError, match="x must be a numpy array"):
        _call(x.tolist(), **args)


def test_bad_network_arguments_raise_value_error(net):
    mlp, x, args = net
    w, n, m = args["weights"], args["widths"], args["multipliers"]

    def mult_with(i, value):
        return np.where(np.arange(5) == i, value, m).astype(np.float32)

    bad = [
        (dict(weights=w.astype(np.int32)), "weights must have dtype uint32, got int32"),
        (
            dict(weights=w[:-1]),
            r"weights must hold 728 packed uint32 words for widths \(24, 32, 32, 32, 3\), got 727",
        ),
        (dict(weights=w.reshape(8, -1)), "weights must be 1-D"),
        (dict(widths=n.astype(np.int64)), "widths must have dtype int32, got int64"),
        (dict(widths=np.array([24], np.int32)), r"widths must hold 2..9 entries"),
        (dict(widths=np.full(10, 4, np.int32)), r"widths must hold 2..9 entries .*got 10"),
        (dict(widths=np.array([24, 0, 3], np.int32)), r"every width must be in \[1, 128\], got \(24, 0, 3\)"),
        (dict(widths=np.array([24, 129, 3], np.int32)), r"every width must be in \[1, 128\]"),
        (dict(multipliers=m[:-1]), r"multipliers must hold L \+ 1 = 5 float32 values, got 4"),
        (dict(multipliers=m.astype(np.float64)), "multipliers must have dtype float32"),
        (dict(multipliers=mult_with(1, 0)), "multiplier 1 must be finite and > 0"),
        (dict(multipliers=mult_with(2, np.nan)), "multiplier 2 must be finite"),
        (dict(multipliers=mult_with(4, -1)), "multiplier 4 must be finite and > 0"),
    ]
    for change, message in bad:
        with pytest.raises(ValueError, match=message):
            _call(x, **{**args, **change})


def test_nonzero_weight_padding_is_rejected():
    mlp = random_mlp(SHAPES["odd_widths"], np.random.default_rng(5))  # 7 inputs: 1 padding byte
    w = mlp.flat_weights().copy()
    w[1] |= np.uint32(0x01000000)  # row 0, word 1, byte 3 = column 7: padding
    x = random_inputs(mlp, 3, np.random.default_rng(0))
    widths = np.asarray(mlp.widths, np.int32)
    with pytest.raises(ValueError, match="layer 0 row 0: padding bytes of the packed weights must be zero"):
        _native.mlp_int8_forward(x, w, widths, mlp.multipliers())


def test_isa_selection_errors(net):
    mlp, x, args = net
    valid = "auto, avx512vnni, avxvnni, avx2, scalar"
    with pytest.raises(ValueError, match=rf"unknown isa 'sse9'; valid: {valid}"):
        _native.mlp_int8_forward(x, **args, isa="sse9")
    with pytest.raises(ValueError, match="isa 'sse9' is not supported"):
        NativeCpuBackend(mlp, isa="sse9")
    with pytest.raises(ValueError, match="threads must be >= 0"):
        NativeCpuBackend(mlp, threads=-1)
    unsupported = [i for i in ALL_ISAS if i not in _native.cpu_supported_isas()]
    for name in unsupported:
        with pytest.raises(ValueError, match=f"isa '{name}' is not supported by this CPU or build"):
            _native.mlp_int8_forward(x, **args, isa=name)


def test_readonly_and_unaligned_inputs(net):
    mlp, x, args = net
    ro = x.copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(_bits(_call(ro, **args)), _bits(forward(mlp, x)))
    raw = np.zeros(x.nbytes + 1, np.uint8)
    unaligned = raw[1:].view(np.float32).reshape(x.shape)
    unaligned[...] = x
    assert not unaligned.flags.aligned
    with pytest.raises(ValueError, match="x must be aligned"):
        _call(unaligned, **args)
