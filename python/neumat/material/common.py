"""What every material kind shares (numpy only): the one float32 bilinear plane fetch, the
provenance numbers (``value_scale`` and other positive scalars), the recorded data source, and
the error every evaluator raises.

The renderer's passes perform the same arithmetic in the same order (``bilinearInto`` in
``shaders/infer.slang``); the trainer's torch twin is
:func:`neumat.models.triple_plane.bilinear_lookup`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..bundle import Bundle, BundleError
from ..output_encoding import VALUE_SCALE_KEY


def bilinear_lookup_np(plane: np.ndarray, st: np.ndarray, wrap: bool) -> np.ndarray:
    """Bilinear plane lookup, float32 arithmetic in the order of the model's docstring.

    Args:
        plane: ``[rows, cols, C]`` float16/float32 (computed in float32).
        st: float32 ``[B, 2]`` coordinates, texel centres at ``(i + 0.5) / res``.
        wrap: True: indices repeat (U plane); False: clamp to edge (H, D planes).

    Returns:
        float32 ``[B, C]``.
    """
    p = np.asarray(plane, dtype=np.float32)
    rows, cols, channels = p.shape
    st = np.asarray(st, dtype=np.float32)
    x = st[:, 0] * np.float32(cols) - np.float32(0.5)
    y = st[:, 1] * np.float32(rows) - np.float32(0.5)
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    c0, r0 = x0.astype(np.int64), y0.astype(np.int64)
    c1, r1 = c0 + 1, r0 + 1
    if wrap:
        c0, c1, r0, r1 = c0 % cols, c1 % cols, r0 % rows, r1 % rows
    else:
        c0, c1 = np.clip(c0, 0, cols - 1), np.clip(c1, 0, cols - 1)
        r0, r1 = np.clip(r0, 0, rows - 1), np.clip(r1, 0, rows - 1)
    flat = p.reshape(rows * cols, channels)
    gx = np.float32(1.0) - fx
    top = flat[r0 * cols + c0] * gx + flat[r0 * cols + c1] * fx
    bottom = flat[r1 * cols + c0] * gx + flat[r1 * cols + c1] * fx
    return (top * (np.float32(1.0) - fy) + bottom * fy).astype(np.float32)


SOURCE_KEY = "source"
"""Provenance key: the data source spec (see :mod:`neumat.train.sources`) to rebuild held-out data."""


class EvalError(ValueError):
    """A bundle cannot be evaluated (wrong kind, angle parameterization, output encoding or scale)."""


def positive_provenance_number(bundle: Bundle, key: str, default: float | None = None) -> float:
    """The bundle provenance's ``key`` as a finite float > 0 (``default`` when absent; None:
    required); :class:`EvalError` naming the key otherwise."""
    value = bundle.provenance.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise EvalError(f"provenance {key!r} must be a finite number > 0, got {value!r}")
    return float(value)


def bundle_value_scale(bundle: Bundle) -> float:
    """The bundle's ``value_scale`` (1.0 when the provenance does not record one)."""
    return positive_provenance_number(bundle, VALUE_SCALE_KEY, 1.0)


def require_source_spec(bundle: Bundle) -> dict[str, Any]:
    """The data source spec recorded in the bundle's provenance; :class:`BundleError` if absent."""
    spec = bundle.provenance.get(SOURCE_KEY)
    if not isinstance(spec, dict):
        raise BundleError(
            f"bundle provenance has no {SOURCE_KEY!r} record of its training data; "
            "pass --material/--maps/--btf to say which material to evaluate against"
        )
    return spec
