"""The NeuMIP material kind: its contract and numpy reference (no torch).

A ``neumip`` bundle (:meth:`neumat.bundle.Bundle.neumip`) is evaluated at a texture coordinate
``u`` for an incident direction ωi and an outgoing direction ωo (unit vectors in the local
shading frame of :mod:`neumat.data.source`: +z = normal, +x = u, +y = v, both pointing away
from the surface) as (seed 000, §4.1, the Raghavan 2025 variant: no pyramid, universal MLPs)::

    o  = M_off(T_off[u] || enc(ωo))                    # INT8 MLP, 2 outputs in [0, 1]
    Δu = (2 o - 1) · max_offset                        # UV units, in [-max_offset, max_offset]^2
    f  = M_rgb(T_rgb[u + Δu] || enc(ωi) || enc(ωo)) · value_scale     # linear Rec.709 BTF value

* ``T_off``, ``T_rgb``: the bundle's ``"offset"`` / ``"rgb"`` planes ``[rows = v, cols = u, C]``,
  looked up bilinearly with **wrap** (:func:`~neumat.material.common.bilinear_lookup_np`, texel centres at
  ``(i + .5) / res``), float32 arithmetic; ``u + Δu`` is not wrapped by hand (the lookup wraps).
* ``enc(ω) = (ω.x, ω.y)`` (float32; ω.z = sqrt(1 - x² - y²) is implied), width
  :data:`DIRECTION_WIDTH`; the bundle's ``angle_param`` is :data:`DIRECTION_ENCODING`.
* Inputs are concatenated in the order of ``bundle.inputs[net]`` (segments ``"offset"``/``"rgb"``
  planes, ``"wi"``, ``"wo"``).
* ``max_offset`` (UV units) and ``value_scale`` live in the bundle's provenance under
  :data:`MAX_OFFSET_KEY` / :data:`neumat.output_encoding.VALUE_SCALE_KEY`.
* Δu is computed in float32 exactly as written: ``(o * 2 - 1) * max_offset`` (three roundings,
  no FMA), so every backend (numpy, Slang) gets the same shifted coordinate.

The BTF values include the incident cosine (as every data source's do); ``uv`` is in the
data's ``"reference"`` space (where the view ray crosses the top of the material), the space
NeuMIP's offsets are learned for.
"""

from __future__ import annotations

import numpy as np

from ..bundle import NEUMIP, Bundle
from ..quant import forward
from .common import EvalError, bilinear_lookup_np, bundle_value_scale, positive_provenance_number

DIRECTION_ENCODING = "local-xy-v1"
"""``angle_param`` of NeuMIP bundles: a direction is encoded as its local (x, y)."""
DIRECTION_WIDTH = 2
"""Values per encoded direction."""
MAX_OFFSET_KEY = "max_offset"
"""Provenance key: the largest |Δu| per axis, UV units."""
OFFSET_OUTPUTS = 2
"""Output width of the offset network (Δu, Δv)."""


def encode_direction(w: np.ndarray) -> np.ndarray:
    """float32 ``[B, 2]``: the local (x, y) of unit directions ``w`` ``[B, 3]``."""
    return np.ascontiguousarray(np.asarray(w, dtype=np.float32)[:, :2])


def bundle_max_offset(bundle: Bundle) -> float:
    """The bundle's ``max_offset`` (UV units); :class:`EvalError` when missing or not > 0."""
    return positive_provenance_number(bundle, MAX_OFFSET_KEY)


def offsets_from_outputs(o: np.ndarray, max_offset: float) -> np.ndarray:
    """Δu float32 ``[B, 2]`` = ``(o * 2 - 1) * max_offset`` in float32, from offset-network
    outputs ``o`` ``[B, 2]`` in [0, 1] (the rounding order every backend follows)."""
    o = np.asarray(o, np.float32)
    return ((o * np.float32(2.0) - np.float32(1.0)) * np.float32(max_offset)).astype(np.float32)


def check_neumip(bundle: Bundle) -> None:
    """Raise :class:`EvalError` unless ``bundle`` is a NeuMIP material this module evaluates."""
    if bundle.kind != NEUMIP:
        raise EvalError(f"expected a {NEUMIP!r} bundle, got {bundle.kind!r}")
    if bundle.angle_param != DIRECTION_ENCODING:
        raise EvalError(f"NeuMIP directions must use {DIRECTION_ENCODING!r}, the bundle says {bundle.angle_param!r}")
    widths = {s: w for net in bundle.inputs.values() for s, w in net if s in ("wi", "wo")}
    if any(w != DIRECTION_WIDTH for w in widths.values()):
        raise EvalError(f"encoded directions must be {DIRECTION_WIDTH} wide, got {widths}")
    if bundle.mlps["offset"].n_outputs != OFFSET_OUTPUTS or bundle.mlps["rgb"].n_outputs != 3:
        raise EvalError("the offset network must have 2 outputs and the rgb network 3")
    bundle_max_offset(bundle)
    bundle_value_scale(bundle)


def network_input(bundle: Bundle, net: str, uv: np.ndarray, wi: np.ndarray, wo: np.ndarray) -> np.ndarray:
    """float32 ``[B, n_0]``: the input of network ``net`` with its plane looked up at ``uv``."""
    sources = {"wi": lambda: encode_direction(wi), "wo": lambda: encode_direction(wo),
               net: lambda: bilinear_lookup_np(bundle.planes[net], uv, wrap=True)}
    return np.concatenate([sources[s]() for s in bundle.feature_order(net)], axis=1)


def offsets_int8(bundle: Bundle, uv: np.ndarray, wo: np.ndarray) -> np.ndarray:
    """Δu float32 ``[B, 2]`` (UV units) from the INT8 offset network."""
    o = forward(bundle.mlps["offset"], network_input(bundle, "offset", uv, wo, wo))
    return offsets_from_outputs(o, bundle_max_offset(bundle))


def render_neumip_int8(bundle: Bundle, uv: np.ndarray, wi: np.ndarray, wo: np.ndarray,
                       chunk: int = 1 << 16) -> np.ndarray:
    """BTF values float32 ``[B, 3]`` (linear Rec.709) of a NeuMIP bundle, both MLPs INT8.

    ``uv`` float32 ``[B, 2]``; ``wi``, ``wo`` float32 ``[B, 3]`` unit local directions.
    """
    check_neumip(bundle)
    uv = np.asarray(uv, dtype=np.float32)
    scale = np.float32(bundle_value_scale(bundle))
    out = np.empty((len(uv), 3), dtype=np.float32)
    for a in range(0, len(uv), chunk):
        b = a + chunk
        shifted = (uv[a:b] + offsets_int8(bundle, uv[a:b], wo[a:b])).astype(np.float32)
        out[a:b] = forward(bundle.mlps["rgb"], network_input(bundle, "rgb", shifted, wi[a:b], wo[a:b])) * scale
    return out
