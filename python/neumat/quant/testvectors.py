"""Random and adversarial INT8 MLPs and inputs for bit-exactness checks of every backend.

Used by the test-suite and by ``neumat doctor``'s self-check. Edge cases covered: exact
half-way products (power-of-two multipliers with odd accumulators), saturation at +-127,
all-zero and maximum-magnitude inputs and weights, and widths that are not multiples of 4.
"""

from __future__ import annotations

import numpy as np

from .spec import QMAX, Int8MLP

SHAPES: dict[str, tuple[int, ...]] = {
    "triple_plane": (24, 32, 32, 32, 3),
    "odd_widths": (7, 13, 5, 3),
    "single_layer": (6, 3),
    "neumip_rgb": (30, 64, 64, 64, 64, 3),
    "widest": (128, 128, 128),
}
"""Layer shapes every backend is tested on (name -> widths)."""


def random_mlp(widths: tuple[int, ...], rng: np.random.Generator, pow2_scales: bool = False) -> Int8MLP:
    """A random Int8MLP of the given widths.

    With ``pow2_scales`` every scale is a power of two, so the multipliers are exact powers
    of two and products land exactly on ``k + 0.5`` — the half-way cases of round-to-even.
    Otherwise scales are chosen so hidden activations neither all saturate nor all vanish.
    """
    weights = [
        rng.integers(-QMAX, QMAX + 1, size=(widths[i + 1], widths[i]), dtype=np.int64).astype(np.int8)
        for i in range(len(widths) - 1)
    ]
    n_layers = len(widths) - 1
    if pow2_scales:
        sa = 2.0 ** rng.integers(-8, 1, size=n_layers)
        sw = 2.0 ** rng.integers(-9, -3, size=n_layers)
    else:
        # Aim each layer's pre-rounding values at a useful spread: hidden ~ +-60 of 127,
        # outputs ~ +-0.5, so most values are neither saturated nor zero.
        sa = rng.uniform(0.005, 0.05, size=n_layers)
        sw = np.empty(n_layers)
        for i in range(n_layers):
            acc_std = 73.0 * 73.0 * np.sqrt(widths[i])
            target = (60.0 if i < n_layers - 1 else 2.0) * rng.uniform(0.5, 2.0) / acc_std
            next_sa = sa[i + 1] if i < n_layers - 1 else 1.0
            sw[i] = target * next_sa / sa[i]
    scales = np.stack([sa, sw], axis=1).reshape(-1)
    return Int8MLP.from_int8(weights, np.asarray(scales, dtype=np.float32))


def random_inputs(mlp: Int8MLP, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` float32 input vectors spanning the quantization range, ~10% beyond it (saturating)."""
    limit = 1.1 * QMAX / float(mlp.multipliers()[0])
    return rng.uniform(-limit, limit, size=(n, mlp.n_inputs)).astype(np.float32)


def edge_inputs(mlp: Int8MLP, rng: np.random.Generator) -> np.ndarray:
    """Adversarial inputs: zeros, +-max magnitude, +-inf, exact half-way values, tiny values."""
    sa = 1.0 / float(mlp.multipliers()[0])
    n = mlp.n_inputs
    rows = [
        np.zeros(n),
        np.full(n, QMAX * sa),
        np.full(n, -QMAX * sa),
        np.full(n, 1e30),
        np.full(n, -1e30),
        np.full(n, np.inf),
        np.full(n, -np.inf),
        np.full(n, np.finfo(np.float32).tiny),
        np.where(np.arange(n) % 2 == 0, QMAX * sa, -QMAX * sa),
    ]
    halves = (rng.integers(-QMAX, QMAX, size=(64, n)) + 0.5) * sa
    return np.vstack([np.asarray(rows), halves]).astype(np.float32)


def edge_mlps(rng: np.random.Generator) -> dict[str, Int8MLP]:
    """MLPs with extreme weights: all +-127, all zero, alternating signs, power-of-two scales."""
    out: dict[str, Int8MLP] = {}
    widths = (13, 16, 9, 3)
    shapes = [(widths[i + 1], widths[i]) for i in range(len(widths) - 1)]
    pow2 = np.asarray([2.0**-4, 2.0**-6] * (len(widths) - 1), dtype=np.float32)
    out["max_weights"] = Int8MLP.from_int8([np.full(s, QMAX, np.int8) for s in shapes], pow2)
    out["min_weights"] = Int8MLP.from_int8([np.full(s, -QMAX, np.int8) for s in shapes], pow2)
    out["zero_weights"] = Int8MLP.from_int8([np.zeros(s, np.int8) for s in shapes], pow2)
    alt = [((np.indices(s).sum(0) % 2) * 2 - 1).astype(np.int8) * QMAX for s in shapes]
    out["alternating"] = Int8MLP.from_int8(alt, pow2)
    out["pow2_halfway"] = random_mlp((21, 32, 17, 3), rng, pow2_scales=True)
    return out


def check_cases(rng: np.random.Generator, n_random: int) -> list[tuple[str, Int8MLP, np.ndarray]]:
    """Every (name, mlp, inputs) case a backend must reproduce bit-exactly.

    Each shape in :data:`SHAPES` gets ``n_random`` random vectors plus the edge inputs; each
    edge MLP gets random and edge inputs too.
    """
    cases = []
    for name, widths in SHAPES.items():
        mlp = random_mlp(widths, rng)
        x = np.vstack([random_inputs(mlp, n_random, rng), edge_inputs(mlp, rng)])
        cases.append((name, mlp, x))
    for name, mlp in edge_mlps(rng).items():
        x = np.vstack([random_inputs(mlp, max(n_random // 10, 16), rng), edge_inputs(mlp, rng)])
        cases.append((name, mlp, x))
    return cases


def count_mismatches(evaluate, cases: list[tuple[str, Int8MLP, np.ndarray]]) -> dict[str, int]:
    """Run ``evaluate(mlp, x)`` on every case; count output elements not bit-identical to the
    numpy reference (float32 compared as raw bits, so -0.0 != 0.0 would count too)."""
    from .reference import forward

    result = {}
    for name, mlp, x in cases:
        expect = forward(mlp, x)
        got = np.ascontiguousarray(evaluate(mlp, x), dtype=np.float32)
        if got.shape != expect.shape:
            raise ValueError(f"{name}: backend returned shape {got.shape}, expected {expect.shape}")
        result[name] = int(np.count_nonzero(got.view(np.uint32) != expect.view(np.uint32)))
    return result
