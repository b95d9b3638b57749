"""Fusing per-frame MVInverse predictions into one set of texture maps: every frame's maps are
resampled into texture space (:class:`~.register.Registration`), then combined texel by texel
with a robust median over the frames that see the texel.

Per texel (conventions of :mod:`.register`; maps ``[row = v, column = u]``):

* ``albedo`` (3, linear Rec.709), ``metallic``, ``roughness`` — the median over the frames
  seeing the texel (per channel);
* ``normal`` (3) — camera-frame predictions turned into the texture frame (+x = u, +y = v,
  +z out of the surface) per frame, the per-component median renormalized (forced to z ≥ 0.05:
  a surface seen from above faces up);
* ``coverage`` — fraction of the frames whose view contains the texel (a frame's samples within
  :data:`EDGE_TEXELS` of its image border are left out: bilinear taps there mix in nothing);
* ``spread`` — the median absolute deviation (MAD) of the frames' values around the median,
  averaged over the albedo channels, metallic and roughness (0 when one frame sees it);
* ``confidence`` = ``coverage / (1 + spread / CONFIDENCE_MAD)`` in [0, 1]: 1 for a texel every
  frame sees with identical values; a MAD of :data:`CONFIDENCE_MAD` halves it.

Texels no frame sees take the value of the nearest seen texel and confidence 0.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .register import Registration

log = logging.getLogger(__name__)

FUSED = ("albedo", "metallic", "roughness", "normal")
"""The maps fused into texture space (the shading is per view lighting, not material)."""
CONFIDENCE_MAD = 0.05
"""Median absolute deviation that halves a texel's confidence (module docstring)."""
EDGE_TEXELS = 1.0
"""Frame samples this close to the image border (pixels) count as unseen."""
MIN_UP = 0.05
"""Smallest z of a fused normal (module docstring)."""


class FusionError(ValueError):
    """Predictions that cannot be fused (no frame sees the texture, inconsistent shapes)."""


@dataclass
class FusedMaps:
    """Texture-space maps of one capture (module docstring), float32 ``[R, R, C]``."""

    albedo: np.ndarray
    metallic: np.ndarray
    roughness: np.ndarray
    normal: np.ndarray
    coverage: np.ndarray
    spread: np.ndarray
    confidence: np.ndarray


def warp_to_texture(image: np.ndarray, homography: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Resample ``image`` ``[H, W, C]`` (float) into the R×R texture grid through ``homography``
    (texel -> pixel; bilinear). Returns ``(values [R, R, C] float32, seen [R, R] bool)``."""
    import cv2

    h, w = image.shape[:2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    img = np.ascontiguousarray(image, np.float32)
    channels = [cv2.warpPerspective(img[..., c], homography, (resolution, resolution), flags=flags,
                                    borderMode=cv2.BORDER_REPLICATE) for c in range(img.shape[-1])]
    ys, xs = np.mgrid[0:resolution, 0:resolution].astype(np.float64)
    p = np.stack([xs, ys, np.ones_like(xs)], axis=-1) @ homography.T
    with np.errstate(divide="ignore", invalid="ignore"):
        px, py = p[..., 0] / p[..., 2], p[..., 1] / p[..., 2]
    e = EDGE_TEXELS - 0.5
    seen = (p[..., 2] > 0) & (px >= e) & (px <= w - 1 - e) & (py >= e) & (py <= h - 1 - e)
    return np.stack(channels, axis=-1), seen


def fuse(predictions: Mapping[str, np.ndarray], registration: Registration) -> FusedMaps:
    """Fuse per-frame predictions (module docstring).

    Args:
        predictions: ``{map: [V, H, W, C] float}`` for every map of :data:`FUSED`, normals in each
            frame's camera frame (OpenCV axes), the frames at the size the registration is for.
        registration: one homography and rotation per frame.
    Raises:
        FusionError: a missing map, a frame count that differs from the registration's, or no
            texel seen by any frame.
    """
    missing = [k for k in FUSED if k not in predictions]
    if missing:
        raise FusionError(f"predictions lack {missing}")
    views = predictions["albedo"].shape[0]
    if any(predictions[k].shape[0] != views for k in FUSED) or len(registration.homographies) != views:
        raise FusionError(f"{views} frames of predictions but {len(registration.homographies)} registered frames")
    r = registration.resolution
    stacks: dict[str, list[np.ndarray]] = {k: [] for k in FUSED}
    seen_all = []
    for f in range(views):
        hom = registration.homographies[f]
        normal = registration.to_texture(f, np.asarray(predictions["normal"][f], np.float64))
        seen = None
        for key in FUSED:
            values, seen = warp_to_texture(normal if key == "normal" else predictions[key][f], hom, r)
            stacks[key].append(np.where(seen[..., None], values, np.nan))
        seen_all.append(seen)
    seen_count = np.sum(seen_all, axis=0)
    if not seen_count.any():
        raise FusionError("no frame sees any texel of the texture; check the registration")
    arrays = {k: np.stack(v) for k, v in stacks.items()}
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: texels no frame sees
        median = {k: np.nanmedian(a, axis=0) for k, a in arrays.items()}
        mad = [np.nanmedian(np.abs(arrays[k] - median[k]), axis=0).mean(axis=-1) for k in ("albedo", "metallic",
                                                                                       "roughness")]
    spread = np.nan_to_num(np.mean(mad, axis=0), nan=0.0)
    normal = median["normal"]
    normal[..., 2] = np.maximum(normal[..., 2], MIN_UP)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    coverage = seen_count / views
    unseen = seen_count == 0
    if unseen.any():
        log.warning("%.1f %% of the texels are seen by no frame: filled from the nearest seen texel, confidence 0",
                    100.0 * unseen.mean())
        median = {k: _fill_nearest(v, unseen) for k, v in {**median, "normal": normal}.items()}
        normal = median["normal"]
    confidence = coverage / (1.0 + spread / CONFIDENCE_MAD)
    f32 = lambda a: np.ascontiguousarray(a, np.float32)  # noqa: E731
    return FusedMaps(f32(np.clip(median["albedo"], 0, 1)), f32(np.clip(median["metallic"], 0, 1)),
                     f32(np.clip(median["roughness"], 0, 1)), f32(normal), f32(coverage[..., None]),
                     f32(spread[..., None]), f32(confidence[..., None]))


def _fill_nearest(values: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """``values`` with every ``holes`` texel set to its nearest non-hole texel's value."""
    from scipy.ndimage import distance_transform_edt

    _, (rows, cols) = distance_transform_edt(holes, return_indices=True)
    return values[rows, cols]
