"""Debug views of the viewer: what the viewport shows instead of the final image.

Every view is a uint8 [H, W, 3] image rendered by the same :class:`Renderer` call as the final
frame plus AOVs:

- ``final``: ``RenderResult.srgb``;
- ``uv``, ``depth``, ``mask``, ``height``: as ``neumat render --aov`` writes them
  (:func:`neumat.render.aov.aov_image`);
- ``normal``: world normal mapped ``n·0.5 + 0.5``;
- ``btf``: the BTF value (linear rgb), divided by its 99th percentile over the mask, gamma 1/2.2;
- ``features``: channels 3k .. 3k+2 of the MLP input features (``render(debug=True)``), each
  normalized to its min..max over the mask;
- ``offset`` (NeuMIP bundles): the per-pixel uv offset, each channel normalized over the mask;
- ``int8_fp32_diff``: |INT8 − FP32| of the linear radiance × gain (two renders).

The AOV views are those the Renderer offers (:data:`~neumat.render.renderer.AOVS`).
"""

from __future__ import annotations

import numpy as np

from ..render.aov import aov_image
from ..render.renderer import AOVS, KIND_AOVS

DEBUG_VIEWS = ("final", *AOVS, "features", "int8_fp32_diff")
"""View names, in menu order."""
KIND_VIEWS = KIND_AOVS
"""Views that exist for some material kinds only (their ``MaterialKind.extra_aovs``)."""


def _to_u8(rgb: np.ndarray) -> np.ndarray:
    """[0, 1] floats → uint8 (round half up, NaN → 0)."""
    return np.clip(np.nan_to_num(rgb * 255.0 + 0.5, nan=0.0), 0, 255).astype(np.uint8)


def _normalized_over_mask(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each channel of ``values`` [H, W, C] mapped to [0, 1] over its min..max where mask > 0.5."""
    on = mask[..., 0] > 0.5
    out = np.zeros_like(values, dtype=np.float32)
    if not on.any():
        return out
    for c in range(values.shape[-1]):
        inside = values[..., c][on]  # pixels off the mask may hold anything (even inf / NaN)
        lo, hi = float(inside.min()), float(inside.max())
        out[..., c][on] = (inside - lo) / max(hi - lo, 1e-12)
    return out


def feature_group_count(n_features: int) -> int:
    """How many 3-channel groups the ``features`` view offers for ``n_features`` channels."""
    return max(1, -(-n_features // 3))


def features_image(features: np.ndarray, mask: np.ndarray, group: int) -> np.ndarray:
    """uint8 [H, W, 3]: channels 3·group .. 3·group + 2 of ``features`` (missing ones black)."""
    group = int(np.clip(group, 0, feature_group_count(features.shape[-1]) - 1))
    chunk = features[..., 3 * group: 3 * group + 3]
    rgb = _normalized_over_mask(chunk, mask)
    if rgb.shape[-1] < 3:
        rgb = np.concatenate([rgb, np.zeros(rgb.shape[:2] + (3 - rgb.shape[-1],), np.float32)], axis=-1)
    return _to_u8(rgb)


def aov_view_image(name: str, value: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] of one renderer AOV (see the module docstring)."""
    if name == "normal":
        return _to_u8((value[..., :3] * 0.5 + 0.5) * mask)
    if name == "offset":
        return features_image(value, mask, 0)
    if name == "btf":
        on = mask[..., 0] > 0.5
        peak = float(np.percentile(value[on], 99)) if on.any() else 1.0
        return _to_u8((np.clip(value[..., :3] / max(peak, 1e-12), 0, 1) ** (1 / 2.2)) * mask)
    return aov_image(name, value, mask)


def _with_precision(kwargs: dict, precision: str) -> dict:
    """``kwargs`` with the MLP variant replaced (``precision=`` or, on older Renderers, ``fp32=``)."""
    if "precision" in kwargs:
        return {**kwargs, "precision": precision}
    return {**kwargs, "fp32": precision == "fp32"}


def render_view(renderer, kwargs: dict, view: str, feature_group: int = 0, diff_gain: float = 16.0):
    """Render ``view`` with ``renderer.render(**kwargs, ...)``.

    Returns:
        (uint8 [H, W, 3] image, per-pass timings in ms, number of feature groups or 0).
    """
    if view == "final":
        res = renderer.render(**kwargs)
        return res.srgb, res.timings_ms, 0
    if view == "features":
        res = renderer.render(**kwargs, aovs=("mask",), debug=True)
        feats = res.aovs["features"]
        return (features_image(feats, res.aovs["mask"], feature_group), res.timings_ms,
                feature_group_count(feats.shape[-1]))
    if view == "int8_fp32_diff":
        int8 = renderer.render(**_with_precision(kwargs, "int8"))
        fp32 = renderer.render(**_with_precision(kwargs, "fp32"))
        timings = {k: int8.timings_ms.get(k, 0.0) + fp32.timings_ms.get(k, 0.0) for k in int8.timings_ms}
        return _to_u8(np.abs(int8.image - fp32.image) * diff_gain), timings, 0
    res = renderer.render(**kwargs, aovs=tuple(dict.fromkeys((view, "mask"))))
    return aov_view_image(view, res.aovs[view], res.aovs["mask"]), res.timings_ms, 0
