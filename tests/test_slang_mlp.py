"""The Slang INT8 MLP (shaders/mlp_int8.slang via neumat.backends.slang) is bit-exact with the
numpy reference on every test vector, halfway case and batch size.

Runs on whatever device neumat.device picks (llvmpipe on CPU-only machines, ~1-5
Msamples/s there); skipped with the reason when no device can be created.
"""

from __future__ import annotations

import numpy as np
import pytest

from neumat.backends import require_backend
from neumat.backends import slang as slang_backend
from neumat.backends.slang import SlangBackend, slang_mlp_type
from neumat.quant import Int8MLP, forward
from neumat.quant.testvectors import check_cases, count_mismatches, edge_mlps, random_inputs, random_mlp


@pytest.fixture(scope="module", autouse=True)
def _needs_device():
    reason = SlangBackend.unavailable_reason()
    if reason is not None:
        pytest.skip(f"no slangpy device: {reason}")


_backends: dict[int, SlangBackend] = {}


def _evaluate(mlp: Int8MLP, x: np.ndarray) -> np.ndarray:
    """count_mismatches' evaluator: one backend (one weight upload) per network."""
    if id(mlp) not in _backends:
        _backends[id(mlp)] = SlangBackend(mlp)
    return _backends[id(mlp)](x)


def _bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def test01_registry_finds_slang():
    assert require_backend("slang") is SlangBackend
    assert SlangBackend.unavailable_reason() is None


def test02_type_name():
    assert slang_mlp_type((24, 32, 32, 32, 3)) == "Int8Mlp<24, 32, 32, 32, 3, 0, 0, 0, 0>"
    with pytest.raises(ValueError):
        slang_mlp_type((24,))


def test03_all_check_cases_bit_exact():
    cases = check_cases(np.random.default_rng(20240611), 100_000)
    counts = count_mismatches(_evaluate, cases)
    _backends.clear()
    assert all(n == 0 for n in counts.values()), f"mismatching output elements per case: {counts}"


def _halfway_mlp() -> Int8MLP:
    """4 -> 4 -> 4 identity network with power-of-two scales: m0 = 8, m1 = 1/2, m2 = 2^-7."""
    eye = np.eye(4, dtype=np.int8)
    scales = np.array([2.0**-3, 1.0, 2.0**-2, 2.0**-5], dtype=np.float32)  # sa0 sw0 sa1 sw1
    mlp = Int8MLP.from_int8([eye, eye], scales)
    assert mlp.multipliers().tolist() == [8.0, 0.5, 2.0**-7]
    return mlp


def test04_halfway_cases_round_to_even():
    """Inputs with x * m0 = k + 0.5 exactly, hidden values q0 / 2 = j + 0.5 exactly."""
    mlp = _halfway_mlp()
    k = np.arange(-130, 130, dtype=np.float64)  # also beyond +-127: saturation
    x = ((k + 0.5) / 8.0).astype(np.float32).reshape(-1, 4)

    def rne(v):
        """Round half to even, written out without np.rint."""
        f = np.floor(v)
        frac = v - f
        return f + ((frac > 0.5) | ((frac == 0.5) & (f % 2 == 1)))

    q0 = rne(np.clip(k + 0.5, -127, 127))
    q1 = rne(np.clip(q0 * 0.5, 0, 127))
    expect = (q1 / 128.0).astype(np.float32).reshape(-1, 4)
    assert rne(np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5])).tolist() == [0, 2, 2, 0, -2, -2]
    assert _bits_equal(forward(mlp, x), expect)
    assert _bits_equal(SlangBackend(mlp)(x), expect)


@pytest.mark.parametrize("n", [0, 1, 2, 63, 64, 65, 64 * 7 + 13])
def test05_batch_sizes(n):
    rng = np.random.default_rng(n)
    mlp = random_mlp((24, 32, 32, 32, 3), rng)
    x = random_inputs(mlp, n, rng)
    got = _evaluate(mlp, x)
    assert got.shape == (n, 3) and got.dtype == np.float32
    assert _bits_equal(got, forward(mlp, x))


def test06_split_dispatches(monkeypatch):
    """Batches larger than one dispatch are split; results do not depend on the split."""
    rng = np.random.default_rng(6)
    mlp = random_mlp((7, 13, 5, 3), rng)
    x = random_inputs(mlp, 1000, rng)
    backend = SlangBackend(mlp)
    monkeypatch.setattr(slang_backend, "MAX_ROWS_PER_DISPATCH", 97)
    assert _bits_equal(backend(x), forward(mlp, x))


@pytest.mark.parametrize("options", [{"weights_in": "groupshared"}, {"unroll_dots": 0}])
def test07_code_variants_bit_exact(options):
    """Groupshared weights (the GPU default) and fully rolled loops, on small networks
    (llvmpipe JIT-compiles groupshared code slowly)."""
    rng = np.random.default_rng(7)
    nets = {"odd_widths": random_mlp((7, 13, 5, 3), rng), **edge_mlps(rng)}
    if "weights_in" in options:
        nets.pop("pow2_halfway")  # (21, 32, 17, 3): ~7 s of llvmpipe JIT for groupshared
    cases = [(name, m, random_inputs(m, 3000, rng)) for name, m in nets.items()]
    counts = count_mismatches(lambda m, x: SlangBackend(m, **options)(x), cases)
    assert all(v == 0 for v in counts.values()), f"mismatches per case with {options}: {counts}"


def test08_rejects_bad_inputs():
    rng = np.random.default_rng(8)
    mlp = random_mlp((6, 3), rng)
    backend = SlangBackend(mlp)
    with pytest.raises(ValueError, match=r"\[N, 6\]"):
        backend(np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match="weights_in"):
        SlangBackend(mlp, weights_in="texture")
    wide = random_mlp((128, 128, 128), rng)
    with pytest.raises(ValueError, match="groupshared capacity"):
        SlangBackend(wide, weights_in="groupshared")
    assert str(backend.description) in backend.describe()
