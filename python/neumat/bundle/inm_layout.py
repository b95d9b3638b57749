"""Array conversions between a bundle and the InstantNeuralMaterial (INM) layout (no file I/O).

What INM's Falcor code (Starry316/InstantNeuralMaterial, ``Source/Falcor/Utils/Neural``) does
with the data, as read from its sources:

* Planes are square ``RGBA32Float`` texture arrays (``createTexture2D(res, res, RGBA32Float,
  layers, ...)``) initialized from a float32 buffer ``[layer][row][col][rgba]``; texture
  ``x`` = column. So channel ``c`` lives in layer ``c // 4``, component ``c % 4``; a channel
  count that is not a multiple of 4 is zero-padded (:func:`plane_to_layers`).
* The MLP input is the concatenation of every layer of **H, then U, then D** (``NBTF.slang``
  ``evalDebug`` and ``cuda/Inference.cu`` agree), 4 channels per layer. A bundle may read the
  planes in another order; the first layer's weight columns are permuted (and zero columns
  inserted for padded channels) so the INM-ordered network computes the same function
  (:func:`inm_columns`, :func:`to_inm_mlp`).
* INT8 weights (``MLPCuda::loadInt8``): a float32 file of integer values; every 4
  consecutive values are packed into one int32, first value in the low byte. That is exactly
  :meth:`Int8MLP.flat_weights` read as bytes (rows padded to a multiple of 4 inputs, layer
  after layer), so :func:`int8_stream` is that byte stream as float32. The CUDA kernel
  (24 -> 32 -> 32 -> 32 -> 3, layer words at 0/192/448/704) stages 768 words into shared
  memory unconditionally, so the stream is zero-padded to at least 768 words.
* The CUDA kernel takes 8 floats (``ModelInfo::scales`` hard-coded in
  ``NeuralMatRendering.h``, no file): ``[1/sa_0, sa_0*sw_0, 1/sa_1, sa_1*sw_1, ...]`` — input
  quantization multiplier, then the dequantization of that layer's int32 accumulators, per
  layer (:func:`inm_cuda_scales`). INM requantizes with two float multiplies
  (``acc * sa_l*sw_l * 1/sa_{l+1}``) where the neumat spec uses one precomputed multiplier,
  and ReLUs the output instead of clamping it to [0, 1], so INM's results can differ from
  :func:`neumat.quant.forward` in the last bit and above 1.
* The Slang float path (``MLP.cpp``/``MLP.slang``) reads ``ModelInfo = [L, in_0, out_0, ...]``,
  float weights as 4x4 blocks (input block ``j`` outer, output block ``k`` inner, each block
  row-major ``B[r][c] = W[4k + r, 4j + c]``, applied as ``mul(B, x_j)``) and float4 biases; it
  needs every width to be a multiple of 4, so :func:`model_info_values` and
  :func:`float_weight_blocks` pad to ``ceil4`` (zero rows/columns, zero biases) with the
  dequantized weights ``sw_l * W_l``.
"""

from __future__ import annotations

import numpy as np

from ..quant import Int8MLP, QuantSpecError, ceil4, layer_word_offsets
from .errors import BundleError

INM_INPUT_ORDER = ("H", "U", "D")
"""Order in which INM concatenates the planes' channels into the MLP input."""
INM_CUDA_WIDTHS = (24, 32, 32, 32, 3)
"""The only network shape INM's CUDA INT8 kernel evaluates."""
INM_CUDA_STAGED_WORDS = 768
"""Words INM's CUDA kernel copies into shared memory, whatever the network size."""
RGBA = 4


def plane_to_layers(plane: np.ndarray) -> np.ndarray:
    """Plane ``[rows, cols, C]`` -> float32 ``[ceil4(C)/4, rows, cols, 4]`` (zero-padded channels)."""
    rows, cols, channels = plane.shape
    padded = np.zeros((rows, cols, ceil4(channels)), dtype=np.float32)
    padded[..., :channels] = plane
    return np.ascontiguousarray(padded.reshape(rows, cols, -1, RGBA).transpose(2, 0, 1, 3))


def plane_from_layers(layers: np.ndarray, channels: int, dtype: np.dtype) -> np.ndarray:
    """Inverse of :func:`plane_to_layers`; the padding channels must be zero."""
    n_layers, rows, cols, _ = layers.shape
    flat = layers.transpose(1, 2, 0, 3).reshape(rows, cols, n_layers * RGBA)
    if np.any(flat[..., channels:] != 0):
        raise BundleError(f"padding channels {channels}..{n_layers * RGBA - 1} of an INM plane are not zero")
    plane = flat[..., :channels]
    if not np.all(np.isfinite(plane)):
        raise BundleError("an INM plane holds NaN/inf values; fix the training run or its export")
    with np.errstate(over="ignore"):
        out = plane.astype(dtype)
    if not np.array_equal(out.astype(np.float32), plane):
        raise BundleError(
            f"INM plane values are not representable as {np.dtype(dtype).name}, as its metadata says"
        )
    return np.ascontiguousarray(out)


def inm_columns(segments: tuple[tuple[str, int], ...]) -> np.ndarray:
    """For each INM input column, the bundle input column it reads, or -1 for a zero pad.

    Args:
        segments: the bundle's ordered inputs, e.g. ``(("U", 8), ("H", 8), ("D", 8))``.

    Returns:
        int64 ``[sum ceil4(C_p)]`` in INM order (H, U, D; 4 channels per layer).
    """
    offsets, pos = {}, 0
    for source, width in segments:
        offsets[source] = (pos, int(width))
        pos += int(width)
    cols = []
    for p in INM_INPUT_ORDER:
        start, width = offsets[p]
        cols += [start + k if k < width else -1 for k in range(ceil4(width))]
    return np.asarray(cols, dtype=np.int64)


def to_inm_features(x: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Bundle-ordered features ``[N, n_0]`` -> INM-ordered float32 ``[N, len(columns)]``."""
    out = np.zeros((x.shape[0], columns.size), dtype=np.float32)
    valid = columns >= 0
    out[:, valid] = x[:, columns[valid]]
    return out


def to_inm_mlp(mlp: Int8MLP, columns: np.ndarray) -> Int8MLP:
    """The same network with its first layer's columns in INM order (zero columns at pads)."""
    w0 = mlp.weights_int8(0)
    w0_inm = np.zeros((w0.shape[0], columns.size), dtype=np.int8)
    valid = columns >= 0
    w0_inm[:, valid] = w0[:, columns[valid]]
    rest = [mlp.weights_int8(layer) for layer in range(1, mlp.n_layers)]
    return Int8MLP.from_int8([w0_inm, *rest], mlp.scales)


def from_inm_mlp(mlp_inm: Int8MLP, columns: np.ndarray, n_inputs: int) -> Int8MLP:
    """Inverse of :func:`to_inm_mlp`; weights on pad columns must be zero."""
    w0_inm = mlp_inm.weights_int8(0)
    valid = columns >= 0
    if np.any(w0_inm[:, ~valid] != 0):
        raise BundleError("INM first-layer weights on zero-padded input channels are not zero")
    w0 = np.zeros((w0_inm.shape[0], n_inputs), dtype=np.int8)
    w0[:, columns[valid]] = w0_inm[:, valid]
    rest = [mlp_inm.weights_int8(layer) for layer in range(1, mlp_inm.n_layers)]
    return Int8MLP.from_int8([w0, *rest], mlp_inm.scales)


def int8_stream(mlp: Int8MLP) -> np.ndarray:
    """``Weight_int8`` content: float32 integers, the packed bytes of every layer in order,
    zero-padded to at least :data:`INM_CUDA_STAGED_WORDS` words (4 values per word)."""
    values = mlp.flat_weights().astype("<u4").view(np.int8).astype(np.float32)
    n_words = max(values.size // RGBA, INM_CUDA_STAGED_WORDS)
    out = np.zeros(n_words * RGBA, dtype=np.float32)
    out[: values.size] = values
    return out


def int8_stream_sizes(widths: tuple[int, ...]) -> tuple[int, int]:
    """``(values holding weights, values in the file)`` of :func:`int8_stream` for ``widths``."""
    words = int(layer_word_offsets(widths)[-1])
    return words * RGBA, max(words, INM_CUDA_STAGED_WORDS) * RGBA


def mlp_from_int8_stream(values: np.ndarray, widths: tuple[int, ...], scales: np.ndarray) -> Int8MLP:
    """Inverse of :func:`int8_stream`: rebuild the :class:`Int8MLP` (validated)."""
    used, _ = int8_stream_sizes(widths)
    if not np.all(np.isfinite(values)) or np.any(values != np.rint(values)) or np.any(np.abs(values) > 127):
        raise BundleError("INM int8 weight file holds values that are not integers in [-127, 127]")
    if np.any(values[used:] != 0):
        raise BundleError("INM int8 weight file has non-zero values after the last layer")
    raw = values[:used].astype(np.int8)
    offsets = layer_word_offsets(widths) * RGBA
    packed = []
    for layer in range(len(widths) - 1):
        block = np.ascontiguousarray(raw[offsets[layer] : offsets[layer + 1]])
        packed.append(block.view("<u4").astype(np.uint32).reshape(widths[layer + 1], -1))
    try:
        return Int8MLP(tuple(widths), tuple(packed), scales)
    except QuantSpecError as e:
        raise BundleError(f"INM network breaks the INT8 MLP contract (neumat.quant.spec): {e}") from e


def inm_cuda_scales(scales: np.ndarray) -> np.ndarray:
    """The CUDA kernel's scale array ``[1/sa_0, sa_0*sw_0, 1/sa_1, sa_1*sw_1, ...]`` (float32).

    Computed in float64 and rounded once to float32 from the stored ``[sa_0, sw_0, ...]``.
    """
    s = np.asarray(scales, dtype=np.float32).astype(np.float64)
    out = np.empty_like(s)
    out[0::2] = 1.0 / s[0::2]
    out[1::2] = s[0::2] * s[1::2]
    return out.astype(np.float32)


def model_info_values(widths: tuple[int, ...]) -> np.ndarray:
    """``ModelInfo`` float32 ``[L, ceil4(n_0), ceil4(n_1), ceil4(n_1), ceil4(n_2), ...]``."""
    pairs = [(ceil4(widths[i]), ceil4(widths[i + 1])) for i in range(len(widths) - 1)]
    return np.asarray([len(pairs), *[v for p in pairs for v in p]], dtype=np.float32)


def float_weight_blocks(mlp: Int8MLP) -> tuple[np.ndarray, np.ndarray]:
    """``(Weight, Bias)`` float32 streams of INM's Slang float MLP (dequantized, zero bias).

    Per layer ``l``: ``W = f32(sw_l * W_l)`` zero-padded to ``[ceil4(out), ceil4(in)]`` and cut
    into 4x4 blocks ordered ``[in block j][out block k][r][c] = W[4k + r, 4j + c]``; biases are
    ``ceil4(out)`` zeros.
    """
    weights, biases = [], []
    for layer in range(mlp.n_layers):
        w = mlp.weights_int8(layer).astype(np.float64) * float(mlp.scales[2 * layer + 1])
        out_p, in_p = ceil4(w.shape[0]), ceil4(w.shape[1])
        padded = np.zeros((out_p, in_p), dtype=np.float32)
        padded[: w.shape[0], : w.shape[1]] = w
        blocks = padded.reshape(out_p // RGBA, RGBA, in_p // RGBA, RGBA).transpose(2, 0, 1, 3)
        weights.append(blocks.reshape(-1))
        biases.append(np.zeros(out_p, dtype=np.float32))
    return np.concatenate(weights), np.concatenate(biases)
