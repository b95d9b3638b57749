"""The numpy INT8 MLP reference: the executable definition of :mod:`neumat.quant.spec`."""

from __future__ import annotations

import numpy as np

from .spec import QMAX, Int8MLP


def quantize_input(x: np.ndarray, m0: np.float32) -> np.ndarray:
    """Step 1 of the spec: float32 features ``[N, n_0]`` -> int32 values in [-127, 127]."""
    v = np.asarray(x, dtype=np.float32) * np.float32(m0)
    return np.rint(np.clip(v, -QMAX, QMAX)).astype(np.int32)


def forward(mlp: Int8MLP, x: np.ndarray) -> np.ndarray:
    """Evaluate the INT8 MLP exactly as the spec defines it.

    Args:
        mlp: the quantized network.
        x: float32 ``[N, n_0]`` input features (finite).

    Returns:
        float32 ``[N, n_L]`` outputs in [0, 1] (linear RGB for a material).
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != mlp.n_inputs:
        raise ValueError(f"expected inputs [N, {mlp.n_inputs}], got {x.shape}")
    m = mlp.multipliers()
    q = quantize_input(x, m[0]).astype(np.int64)
    last = mlp.n_layers - 1
    for layer in range(mlp.n_layers):
        acc = (q @ mlp.weights_int8(layer).T.astype(np.int64)).astype(np.float32)
        v = acc * m[layer + 1]
        if layer < last:
            q = np.rint(np.clip(v, 0, QMAX)).astype(np.int64)
        else:
            return np.clip(v, 0, 1).astype(np.float32)
    raise AssertionError("unreachable: an Int8MLP has at least one layer")
