"""The INT8 contract itself: packing, multipliers, rounding — checked against hand-computed values."""

import numpy as np
import pytest

from neumat.quant import (
    Int8MLP,
    QuantSpecError,
    ceil4,
    forward,
    layer_word_offsets,
    pack_int8,
    quantize_symmetric,
    requant_multipliers,
    unpack_int8,
)
from neumat.quant.testvectors import check_cases, count_mismatches


def test01_pack_layout_first_element_in_low_byte():
    w = np.array([[1, -1, 2, -128 + 1, 5]], dtype=np.int8)
    p = pack_int8(w)
    assert p.shape == (1, 2) and p.dtype == np.uint32
    assert p[0, 0] == (1 | (0xFF << 8) | (2 << 16) | (0x81 << 24))
    assert p[0, 1] == 5  # padding bytes are zero
    np.testing.assert_array_equal(unpack_int8(p, 5), w)


def test02_ceil4_and_offsets():
    assert [ceil4(n) for n in (1, 4, 5, 8, 127)] == [4, 4, 8, 8, 128]
    np.testing.assert_array_equal(layer_word_offsets((5, 3, 2)), [0, 3 * 2, 3 * 2 + 2 * 1])


def test03_multipliers_derived_in_float64_rounded_once():
    scales = np.array([0.1, 0.3, 0.7, 0.011], dtype=np.float32)
    s = scales.astype(np.float64)
    m = requant_multipliers(scales)
    assert m.dtype == np.float32 and m.shape == (3,)
    assert m[0] == np.float32(1.0 / s[0])
    assert m[1] == np.float32(s[0] * s[1] / s[2])
    assert m[2] == np.float32(s[2] * s[3])
    # float32 chained arithmetic would differ in the last bit for these scales


def test04_forward_hand_computed():
    # 1 input -> 2 hidden -> 1 output; power-of-two scales make every value exact.
    w0 = np.array([[3], [-2]], dtype=np.int8)
    w1 = np.array([[5, 7]], dtype=np.int8)
    scales = np.array([0.5, 0.25, 1.0, 2.0**-10], dtype=np.float32)  # m = [2, 0.125, 2^-10]
    mlp = Int8MLP.from_int8([w0, w1], scales)
    np.testing.assert_array_equal(mlp.multipliers(), np.float32([2.0, 0.125, 2.0**-10]))
    x = np.array([[1.25], [-1.25], [100.0], [0.0]], dtype=np.float32)
    # x=1.25 -> 2.5 -> rne 2; acc=[6,-4] -> *0.125 = [0.75,-0.5] -> [1, 0]; acc=5 -> 5/1024
    # x=-1.25 -> -2.5 -> -2; acc=[-6,4] -> [-0.75,0.5] -> [0, 0] (0.5 rounds to even 0); 0
    # x=100 -> 200 -> clamp 127; acc=[381,-254] -> [47.625,..] -> [48, 0]; 240/1024
    expect = np.float32([[5 / 1024], [0.0], [240 / 1024], [0.0]])
    np.testing.assert_array_equal(forward(mlp, x), expect)


def test05_output_clamped_to_unit_interval():
    mlp = Int8MLP.from_int8([np.full((2, 4), 127, np.int8)], np.float32([1 / 127, 1.0]))
    y = forward(mlp, np.float32([[1, 1, 1, 1], [-1, -1, -1, -1]]))
    np.testing.assert_array_equal(y, [[1, 1], [0, 0]])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(widths=(4, 2), packed=(np.zeros((2, 2), np.uint32),), scales=np.ones(2)), "packed shape"),
        (dict(widths=(4, 2), packed=(np.zeros((2, 1), np.uint32),), scales=np.ones(3)), "scales"),
        (dict(widths=(4, 2), packed=(np.zeros((2, 1), np.uint32),), scales=np.float32([1, np.nan])), "finite"),
        (dict(widths=(4, 2), packed=(np.zeros((2, 1), np.uint32),), scales=np.float32([1, -1])), "> 0"),
        (dict(widths=(3, 2), packed=(np.full((2, 1), 0xFF000000, np.uint32),), scales=np.ones(2)), "padding"),
        (dict(widths=(4, 2), packed=(np.full((2, 1), 0x80, np.uint32),), scales=np.ones(2)), "-128"),
        (dict(widths=(200, 2), packed=(np.zeros((2, 50), np.uint32),), scales=np.ones(2)), "width"),
        (dict(widths=(4,), packed=(), scales=np.ones(0)), "layers"),
    ],
)
def test06_contract_violations_raise(kwargs, message):
    with pytest.raises(QuantSpecError, match=message):
        Int8MLP(**kwargs)


def test07_quantize_symmetric():
    q, s = quantize_symmetric(np.array([0.5, -1.0, 0.25]))
    assert s == np.float32(1 / 127)
    np.testing.assert_array_equal(q, [64, -127, 32])  # 63.5 -> 64 (even), 31.75 -> 32
    q0, s0 = quantize_symmetric(np.zeros(3))
    assert s0 == 1.0 and not q0.any()


def test08_reference_matches_independent_scalar_evaluation():
    """A plain-Python evaluation of the spec (Python floats rounded to float32 after each op)."""
    rng = np.random.default_rng(3)
    (_, mlp, x), *_ = check_cases(rng, 50)

    def scalar_forward(mlp, x):
        m = [np.float32(v) for v in mlp.multipliers()]
        out = []
        for row in x:
            q = [int(np.rint(min(max(np.float32(v) * m[0], -127), 127))) for v in row]
            for l in range(mlp.n_layers):
                w = mlp.weights_int8(l).astype(int)
                acc = [int(sum(int(a) * b for a, b in zip(wr, q))) for wr in w]
                vals = [np.float32(a) * m[l + 1] for a in acc]
                if l < mlp.n_layers - 1:
                    q = [int(np.rint(min(max(v, 0), 127))) for v in vals]
                else:
                    out.append([min(max(v, np.float32(0)), np.float32(1)) for v in vals])
        return np.asarray(out, dtype=np.float32)

    counts = count_mismatches(scalar_forward, [("scalar", mlp, x[:200])])
    assert counts == {"scalar": 0}
