"""Synthetic multi-view batches and videos with exact intrinsic maps (tests and CPU smoke runs of
:mod:`.train` and :mod:`.finetune`; the rendered training sets are :mod:`.dataset`'s).

A scene is a bumpy plane under one directional light and a constant ambient term, seen
by ``V`` cameras looking straight down at shifted windows of it: views of one scene share the
albedo, metallic and roughness texture (shifted with the window), so cross-view consistency is
in the data. Per pixel, in the camera frame (OpenCV axes: +z into the scene):

* ``albedo`` — a colour checker (one random linear-RGB colour per cell in [0.05, 0.95]);
* ``metallic``, ``roughness`` — per-scene constants in [0, 1];
* ``normal`` — the plane's normal ``(0, 0, -1)`` tilted by sinusoidal bumps, unit length;
* ``shading`` — ``ambient + max(0, n · l)`` for the light direction ``l`` (towards the light),
  clipped to [0, 1];
* image — ``albedo · shading`` (diffuse only), in [0, 1].

A video (:func:`synthetic_video`) is such a scene seen by a camera panning over it at a constant
velocity of whole pixels per frame: its exact flow is that shift everywhere, no occlusions.
"""

from __future__ import annotations

import numpy as np
import torch

from .batch import InverseBatch
from .intrinsics import Intrinsic
from .train import BatchRequest


def _surface(rng: np.random.Generator, big_h: int, big_w: int, cell: int) -> dict[str, np.ndarray]:
    """One scene's surface, ``big_h x big_w`` pixels: ``{"image", map name: [big_h, big_w, C]}``
    float64 (module docstring)."""
    colours = rng.uniform(0.05, 0.95, size=(big_h // cell + 1, big_w // cell + 1, 3))
    yy, xx = np.mgrid[0:big_h, 0:big_w]
    albedo = colours[yy // cell, xx // cell]  # [big_h, big_w, 3]
    freq, amp = rng.uniform(0.2, 0.6, size=2), rng.uniform(0.1, 0.4)
    slope_x, slope_y = amp * np.cos(freq[0] * xx), amp * np.cos(freq[1] * yy)
    normal = np.stack([slope_x, slope_y, -np.ones_like(slope_x)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    light = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), -1.0])
    light /= np.linalg.norm(light)
    shading = np.clip(0.15 + np.clip(normal @ light, 0, None), 0, 1)[..., None].repeat(3, axis=-1)
    metallic, roughness = rng.uniform(0, 1), rng.uniform(0, 1)
    return {"image": np.clip(albedo * shading, 0, 1), Intrinsic.ALBEDO.value: albedo,
            Intrinsic.NORMAL.value: normal, Intrinsic.SHADING.value: shading,
            Intrinsic.METALLIC.value: np.full((big_h, big_w, 1), metallic),
            Intrinsic.ROUGHNESS.value: np.full((big_h, big_w, 1), roughness)}


def _windows(surface: dict[str, np.ndarray], corners, height: int, width: int) -> dict[str, np.ndarray]:
    """The views at ``corners`` (row, column) of the surface: ``{key: [V, C, height, width]}`` float32."""
    out = {k: np.stack([v[y0:y0 + height, x0:x0 + width] for y0, x0 in corners]) for k, v in surface.items()}
    return {k: v.transpose(0, 3, 1, 2).astype(np.float32) for k, v in out.items()}


def synthetic_scene(rng: np.random.Generator, views: int, height: int, width: int, cell: int = 7) -> dict[str, np.ndarray]:
    """One scene's ``views`` views at random windows: ``{"image", map name: [V, C, height, width]
    float32}``."""
    big_h, big_w = height + 2 * cell * views, width + 2 * cell * views
    surface = _surface(rng, big_h, big_w, cell)
    corners = [(rng.integers(0, big_h - height + 1), rng.integers(0, big_w - width + 1)) for _ in range(views)]
    return _windows(surface, corners, height, width)


def synthetic_video(rng: np.random.Generator, frames: int, height: int, width: int, max_shift: int = 2,
                    cell: int = 7) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A video of one scene: the camera pans over the surface at a constant velocity, a whole
    number of pixels per frame in x and y, each drawn in ``[-max_shift, max_shift]`` (not both 0).

    Returns:
        ``({"image", map name: [T, C, height, width] float32}, shifts)``: ``shifts`` ``[2]`` int,
        the (dx, dy) pixel displacement of the surface from frame t to frame t + 1 (a surface
        point at pixel (x, y) of frame t is at (x + dx, y + dy) in frame t + 1): the exact flow.
    """
    if frames < 2 or max_shift < 1:
        raise ValueError(f"need frames >= 2 and max_shift >= 1, got {frames} and {max_shift}")
    reach = max_shift * (frames - 1)
    big_h, big_w = height + 2 * reach, width + 2 * reach
    surface = _surface(rng, big_h, big_w, cell)
    shift = np.zeros(2, int)
    while not shift.any():
        shift = rng.integers(-max_shift, max_shift + 1, size=2)
    corners = [(reach - t * shift[1], reach - t * shift[0]) for t in range(frames)]  # the window moves by -shift
    return _windows(surface, corners, height, width), shift


def synthetic_batch(request: BatchRequest, short_side: int | None = None) -> InverseBatch:
    """A :data:`~.train.BatchSource`: ``request.scenes`` synthetic scenes of ``request.views``
    views, ``long_side x short_side`` pixels (default: square), every map supervised; a pure
    function of the request (seeded by its seed, stage, step and rank)."""
    stage = 0 if request.stage == "pretrain" else 1
    rng = np.random.default_rng([request.seed, stage, request.step, request.rank])
    h, w = request.long_side, short_side or request.long_side
    scenes = [synthetic_scene(rng, request.views, h, w) for _ in range(request.scenes)]
    stack = {k: torch.from_numpy(np.stack([s[k] for s in scenes])) for k in scenes[0]}
    return InverseBatch(stack.pop("image"), {Intrinsic(k): v for k, v in stack.items()})
