"""Synthetic multi-view batches with exact intrinsic maps (tests and CPU smoke runs of
:mod:`.train`; the real training sets come with the data item).

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
"""

from __future__ import annotations

import numpy as np
import torch

from .batch import InverseBatch
from .intrinsics import Intrinsic
from .train import BatchRequest


def synthetic_scene(rng: np.random.Generator, views: int, height: int, width: int, cell: int = 7) -> dict[str, np.ndarray]:
    """One scene's ``views`` views: ``{"image", map name: [V, C, height, width] float32}``."""
    big_h, big_w = height + 2 * cell * views, width + 2 * cell * views
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
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("image", *(m.value for m in Intrinsic))}
    for _ in range(views):
        y0, x0 = rng.integers(0, big_h - height + 1), rng.integers(0, big_w - width + 1)
        win = (slice(y0, y0 + height), slice(x0, x0 + width))
        a, s = albedo[win], shading[win]
        out["image"].append(np.clip(a * s, 0, 1))
        out[Intrinsic.ALBEDO.value].append(a)
        out[Intrinsic.NORMAL.value].append(normal[win])
        out[Intrinsic.SHADING.value].append(s)
        out[Intrinsic.METALLIC.value].append(np.full((height, width, 1), metallic))
        out[Intrinsic.ROUGHNESS.value].append(np.full((height, width, 1), roughness))
    return {k: np.stack(v).transpose(0, 3, 1, 2).astype(np.float32) for k, v in out.items()}


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
