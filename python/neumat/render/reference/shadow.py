"""Reference of the ``shadow`` pass on any mesh: ``traceShadow`` of ``shaders/shadow.slang`` in
float64 numpy — the same curved path (the osculating circle of the surface along the ray, the
hit face's UV metric, :mod:`neumat.render.passes.shadow`) cut into the same chords, each tested
with the exact first intersection of the bilinear height field
(:meth:`neumat.material.heightfield.HeightField.first_hit`, a DDA with exact per-cell roots) in the
(u, v, h01) space of the shell."""

from __future__ import annotations

import numpy as np

from ...material.heightfield import HeightField
from .pipeline import shading_frame

SHADOW_LIFT = 1e-4
"""kShadowLift of shadow.slang (h01)."""
MAX_CHORDS = 8
"""kMaxShadowChords."""
CHORD_SAG = 0.01
"""kChordSag (h01)."""


def _chords(a, across, duv, k, wz, thickness):
    """Chord end points [C, N, 3] (u, v, h01) and the count per pixel [N] (traceShadow)."""
    z0 = a[:, 2] * thickness
    b = 2.0 * (1.0 + k * z0) * wz
    c = (thickness - z0) * (2.0 + k * (thickness + z0))
    disc = b * b + 4.0 * k * c
    turns_back = disc < 0.0
    top = 2.0 * c / (b + np.sqrt(np.maximum(disc, 0.0)))
    count = np.clip(np.ceil(across * top * np.sqrt(np.abs(k) / (8.0 * CHORD_SAG * thickness))), 1, MAX_CHORDS)
    direction = np.where(across[:, None] > 1e-6, duv / np.maximum(across, 1e-30)[:, None], 0.0)
    ends = []
    for i in range(1, MAX_CHORDS + 1):
        frac = np.minimum(i / count, 1.0)
        l = top * frac
        x, y = l * across, z0 + l * wz
        small = np.abs(k) <= 1e-12
        arc = np.where(small, x, np.arctan2(k * x, 1.0 + k * y) / np.where(small, 1.0, k))
        height = (k * x * x + 2.0 * y + k * y * y) / (np.sqrt((k * x) ** 2 + (1.0 + k * y) ** 2) + 1.0)
        h01 = np.where(frac >= 1.0, 1.0, height / thickness)
        ends.append(np.concatenate([a[:, :2] + arc[:, None] * direction, h01[:, None]], axis=1))
    return np.stack(ends), count, turns_back


def shadow_reference(height: np.ndarray, gbuffer: dict[str, np.ndarray], directions) -> np.ndarray:
    """Visibility of each directional light, bool ``[L, H, W]`` (False off the mask).

    Args:
        height: [R, R] heights in [0, 1] (row = v; tiled).
        gbuffer: host copies ``[H, W, C]`` of ``uv``, ``normal``, ``tangent``, ``mask`` and the
            surface slots ``dpdu``, ``dpdv``, ``shape`` (:mod:`neumat.render.passes.base`).
        directions: [L, 3] unit world directions toward the lights.
    """
    h, w = gbuffer["mask"].shape[:2]
    idx, n, t, b = (x.astype(np.float64) for x in shading_frame(gbuffer))
    idx = idx.astype(np.int64)
    uv = gbuffer["uv"].reshape(-1, 4)[idx, :2].astype(np.float64)
    dpdu, dpdv, shape = (gbuffer[s].reshape(-1, 4)[idx].astype(np.float64) for s in ("dpdu", "dpdv", "shape"))
    jac = np.stack([np.stack([np.sum(t * dpdu[:, :3], 1), np.sum(t * dpdv[:, :3], 1)], 1),
                    np.stack([np.sum(b * dpdu[:, :3], 1), np.sum(b * dpdv[:, :3], 1)], 1)], 1)  # [N, 2, 2]
    thickness = np.maximum(shape[:, 3], 1e-30)
    field = HeightField(height, 1.0)  # z = h01 in the (u, v, h01) space of the shell
    a = np.concatenate([uv, field.height_at(uv % 1.0)[:, None] + SHADOW_LIFT], axis=1)
    out = np.zeros((len(directions), h * w), bool)
    for i, d in enumerate(np.asarray(directions, np.float64)):
        wi = np.stack([t @ d, b @ d, n @ d], 1)
        det = jac[:, 0, 0] * jac[:, 1, 1] - jac[:, 0, 1] * jac[:, 1, 0]
        inv = np.stack([np.stack([jac[:, 1, 1], -jac[:, 0, 1]], 1), np.stack([-jac[:, 1, 0], jac[:, 0, 0]], 1)], 1)
        inv *= np.where(np.abs(det) < 1e-20, 0.0, 1.0 / np.where(det == 0, 1.0, det))[:, None, None]  # inverse2
        duv = np.einsum("nij,nj->ni", inv, wi[:, :2])
        across = np.linalg.norm(wi[:, :2], axis=1)
        ii = shape[:, 0] * duv[:, 0] ** 2 + 2 * shape[:, 1] * duv[:, 0] * duv[:, 1] + shape[:, 2] * duv[:, 1] ** 2
        k = np.where(across > 1e-6, ii / np.maximum(across, 1e-30) ** 2, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):  # lights below the horizon: never marched
            ends, count, turns_back = _chords(a, across, duv, k, wi[:, 2], thickness)
        lit = (wi[:, 2] > 0) & ~turns_back & (a[:, 2] < 1.0)
        start = a.copy()
        for c in range(MAX_CHORDS):
            live = np.flatnonzero(lit & (c < count))
            if live.size == 0:
                break
            seg = ends[c, live] - start[live]
            seg[np.abs(seg[:, 2]) < 1e-12, 2] = 1e-12  # the DDA needs dz != 0
            length = np.linalg.norm(seg, axis=1)
            hit = field.first_hit(start[live], seg / length[:, None]) <= length
            lit[live[hit]] = False
            start[live] = ends[c, live]
        lit |= (wi[:, 2] > 0) & (a[:, 2] >= 1.0)  # starts above the shell top
        out[i, idx] = lit
    return out.reshape(len(directions), h, w)
