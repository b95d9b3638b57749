"""The neumat INT8 MLP contract: layout, scales and every rounding, fixed once.

Every backend (numpy reference, C++ ``neumat._native``, Slang ``shaders/mlp_int8.slang``,
CUDA ``cuda/mlp_dp4a.cu``) implements exactly this and is tested bit-exact against
:func:`neumat.quant.reference.forward`.

Network
-------
``L`` bias-free linear layers with widths ``widths = (n_0, n_1, ..., n_L)``; layer ``l`` maps
``n_l -> n_{l+1}``; ReLU between layers; the output is linear RGB (or any value in [0, 1]).
Every width is in ``[1, MAX_WIDTH]`` and ``1 <= L <= MAX_LAYERS``.

Weights
-------
Layer ``l`` holds int8 weights ``W_l[j, k]`` (``j`` output, ``k`` input), symmetric, values
in ``[-127, 127]`` (``-128`` is never stored). They are *packed* row-major: row ``j`` holds
``ceil4(n_l) / 4`` little-endian uint32 words; word ``w`` holds ``W_l[j, 4w + b]`` in byte
``b`` (first element in the low byte). Padding columns (``k >= n_l``) are zero. The flat
weight stream is layer 0's rows, then layer 1's, ... (see :func:`layer_word_offsets`).

Scales
------
Stored per layer as float32, in the order ``[sa_0, sw_0, sa_1, sw_1, ...]``: ``sa_l`` is the
scale of layer ``l``'s input activations, ``sw_l`` the scale of its weights (real value =
scale * integer). All scales are finite and > 0.

Requantization multipliers (derived once)
-----------------------------------------
From the scales, ``L + 1`` float32 multipliers are derived **in float64 and rounded once to
float32** (:func:`requant_multipliers`); every backend receives these same float32 values
and never derives its own:

* ``m_0 = f32(1 / sa_0)``                             input quantization,
* ``m_{l+1} = f32(sa_l * sw_l / sa_{l+1})``  for ``l < L-1``   hidden requantization,
* ``m_L = f32(sa_{L-1} * sw_{L-1})``                   output dequantization.

Forward pass (all float arithmetic is IEEE float32, each operation rounded to nearest even)
------------------------------------------------------------------------------------------
1. Input: ``q_0[k] = rne(clamp(f32(x[k]) * m_0, -127, 127))`` (signed int8).
2. Layer ``l``: ``acc[j] = sum_k W_l[j, k] * q_l[k]`` in int32. It is exact and, because
   ``|acc| <= 127 * 127 * MAX_WIDTH < 2**24``, its float32 conversion ``f32(acc)`` is exact too.
3. Hidden layers (``l < L-1``): ``q_{l+1}[j] = rne(clamp(f32(acc[j]) * m_{l+1}, 0, 127))``.
   The lower bound 0 *is* the ReLU; activations after the first layer are in ``[0, 127]``.
4. Last layer: ``y[j] = clamp(f32(acc[j]) * m_L, 0, 1)`` (float32).

``rne`` is round-half-to-even (``0.5 -> 0``, ``1.5 -> 2``, ``-2.5 -> -2``). ``clamp`` happens
before rounding; with integer bounds that equals clamping after, and keeps out-of-range values
away from float->int conversion. Each step has a single multiply and no add, so there is no
FMA contraction to forbid; backends must still compile this code without fast-math
(no reciprocal or reassociation rewrites). ``±inf`` inputs saturate; NaN inputs are undefined
(callers pass finite features).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_WIDTH = 128
"""Largest layer width (inputs, hidden or outputs) any backend accepts; keeps f32(acc) exact."""
MAX_LAYERS = 8
"""Most linear layers in one MLP (the GPU kernels size their local arrays by it)."""
QMAX = 127
"""Largest int8 magnitude used; -128 is never produced or stored."""


class QuantSpecError(ValueError):
    """An INT8 MLP (weights, widths or scales) breaks the contract in this module."""


def ceil4(n: int) -> int:
    """Round ``n`` up to a multiple of 4 (the packed input width of a layer)."""
    return (int(n) + 3) // 4 * 4


def pack_int8(weights: np.ndarray) -> np.ndarray:
    """Pack int8 weights ``[out, in]`` into uint32 words ``[out, ceil4(in) // 4]``.

    Byte ``b`` of word ``w`` in row ``j`` holds ``weights[j, 4w + b]``; padding bytes are zero.
    """
    w = np.asarray(weights)
    if w.ndim != 2 or w.dtype != np.int8:
        raise QuantSpecError(f"pack_int8 expects an int8 [out, in] array, got {w.dtype} {w.shape}")
    out, n_in = w.shape
    padded = np.zeros((out, ceil4(n_in)), dtype=np.int8)
    padded[:, :n_in] = w
    return np.ascontiguousarray(padded).view("<u4").astype(np.uint32).reshape(out, -1)


def unpack_int8(packed: np.ndarray, n_in: int) -> np.ndarray:
    """Inverse of :func:`pack_int8`: uint32 ``[out, ceil4(n_in) // 4]`` -> int8 ``[out, n_in]``."""
    p = np.ascontiguousarray(packed, dtype="<u4")
    return p.view(np.int8).reshape(p.shape[0], -1)[:, :n_in].copy()


def requant_multipliers(scales: np.ndarray) -> np.ndarray:
    """Derive the ``L + 1`` float32 multipliers from stored scales ``[sa_0, sw_0, ...]``.

    Computed in float64 and rounded once to float32 (see the module docstring). This is the
    only place multipliers are derived; every backend receives its result.
    """
    s = np.asarray(scales, dtype=np.float32).astype(np.float64)
    sa, sw = s[0::2], s[1::2]
    n_layers = sa.size
    m = np.empty(n_layers + 1, dtype=np.float64)
    m[0] = 1.0 / sa[0]
    for l in range(n_layers - 1):
        m[l + 1] = sa[l] * sw[l] / sa[l + 1]
    m[n_layers] = sa[-1] * sw[-1]
    return m.astype(np.float32)


def quantize_symmetric(values: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """Quantize a float tensor symmetrically per tensor: ``scale = max|v| / 127``.

    Returns ``(int8 values, float32 scale)`` with ``q = rne(clamp(v / scale, -127, 127))``.
    An all-zero tensor gets scale 1 so that it stays valid (> 0).
    """
    v = np.asarray(values, dtype=np.float64)
    amax = float(np.max(np.abs(v))) if v.size else 0.0
    scale = np.float32(amax / QMAX if amax > 0 else 1.0)
    q = np.rint(np.clip(v / np.float64(scale), -QMAX, QMAX)).astype(np.int8)
    return q, scale


@dataclass(frozen=True, eq=False)
class Int8MLP:
    """A quantized MLP in the contract's form: packed int8 weights plus float32 scales.

    Attributes:
        widths: ``(n_0, ..., n_L)`` layer widths; ``n_0`` inputs, ``n_L`` outputs.
        packed: per layer, uint32 ``[n_{l+1}, ceil4(n_l) // 4]`` (see :func:`pack_int8`).
        scales: float32 ``[2L]`` = ``[sa_0, sw_0, sa_1, sw_1, ...]``.
    """

    widths: tuple[int, ...]
    packed: tuple[np.ndarray, ...]
    scales: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(
            self, "packed", tuple(np.ascontiguousarray(p, dtype=np.uint32) for p in self.packed)
        )
        object.__setattr__(self, "scales", np.ascontiguousarray(self.scales, dtype=np.float32))
        self.validate()

    @classmethod
    def from_int8(cls, weights: list[np.ndarray], scales: np.ndarray) -> Int8MLP:
        """Build from unpacked int8 weights ``[out, in]`` per layer and stored scales."""
        widths = [int(weights[0].shape[1])] + [int(w.shape[0]) for w in weights]
        return cls(tuple(widths), tuple(pack_int8(w) for w in weights), scales)

    @property
    def n_layers(self) -> int:
        """Number of linear layers ``L``."""
        return len(self.widths) - 1

    @property
    def n_inputs(self) -> int:
        """Input width ``n_0``."""
        return self.widths[0]

    @property
    def n_outputs(self) -> int:
        """Output width ``n_L``."""
        return self.widths[-1]

    def weights_int8(self, layer: int) -> np.ndarray:
        """Unpacked int8 weights ``[n_{l+1}, n_l]`` of ``layer``."""
        return unpack_int8(self.packed[layer], self.widths[layer])

    def multipliers(self) -> np.ndarray:
        """The float32 requantization multipliers ``[L + 1]`` (see :func:`requant_multipliers`)."""
        return requant_multipliers(self.scales)

    def flat_weights(self) -> np.ndarray:
        """All packed words, layer after layer, as one contiguous uint32 array."""
        return np.concatenate([p.reshape(-1) for p in self.packed]).astype(np.uint32)

    def validate(self) -> None:
        """Raise :class:`QuantSpecError` if anything breaks the contract."""
        w = self.widths
        n_layers = len(w) - 1
        if not 1 <= n_layers <= MAX_LAYERS:
            raise QuantSpecError(f"need 1..{MAX_LAYERS} layers, got {n_layers}")
        if any(not 1 <= x <= MAX_WIDTH for x in w):
            raise QuantSpecError(f"every width must be in [1, {MAX_WIDTH}], got {w}")
        if len(self.packed) != n_layers:
            raise QuantSpecError(f"{n_layers} layers but {len(self.packed)} weight matrices")
        for l, p in enumerate(self.packed):
            expect = (w[l + 1], ceil4(w[l]) // 4)
            if p.shape != expect:
                raise QuantSpecError(f"layer {l}: packed shape {p.shape}, expected {expect}")
            full = unpack_int8(p, ceil4(w[l]))
            if np.any(full[:, w[l]:] != 0):
                raise QuantSpecError(f"layer {l}: padding bytes must be zero")
            if np.any(full == -128):
                raise QuantSpecError(f"layer {l}: weight -128 is outside the symmetric range")
        if self.scales.shape != (2 * n_layers,):
            raise QuantSpecError(f"expected {2 * n_layers} scales, got shape {self.scales.shape}")
        if not np.all(np.isfinite(self.scales)) or np.any(self.scales <= 0):
            raise QuantSpecError("scales must be finite and > 0")
        m = requant_multipliers(self.scales)
        if not np.all(np.isfinite(m)) or np.any(m <= 0):
            raise QuantSpecError(f"scales give non-finite or zero multipliers: {m}")


def layer_word_offsets(widths: tuple[int, ...]) -> np.ndarray:
    """Start of each layer in :meth:`Int8MLP.flat_weights` (uint32 words), plus the total.

    Returns int64 ``[L + 1]``: ``offsets[l]`` is where layer ``l`` begins; ``offsets[L]`` is
    the total word count.
    """
    sizes = [widths[l + 1] * (ceil4(widths[l]) // 4) for l in range(len(widths) - 1)]
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
