"""Reference of the ``hf_trace`` pass: the exact first intersection of each shell segment with
the bilinear height field (:class:`neumat.material.heightfield.HeightField`, a DDA with exact
per-cell roots) in the same texture-space parameterization as ``hf_trace.slang`` — inside a
segment, (u, v, h01) runs on a straight line from entry to exit, s in [0, 1]: the pass's march
inside affine prisms (planes, flat faces). Curved prisms are marched in pieces between exact
prism coordinates (:mod:`neumat.render.prism`); the curved-mesh tests check those hits against
Mitsuba's exact map instead."""

from __future__ import annotations

import numpy as np

from ...material.heightfield import HeightField


def hf_segment_reference(height: np.ndarray, segments: np.ndarray, prisms: np.ndarray):
    """First surface hit over each pixel's segments, in order.

    Args:
        height: [R, R] heights in [0, 1] (row = v).
        segments: [H, W, S, 2, 4] ((t, u, v, h01) in, out), as the shell pass writes them
            (``Resource.numpy()`` of ``shell_segments`` reshaped).
        prisms: [H, W, S] prism ids, -1 = unused.

    Returns:
        (k, s): int [H, W] segment that is hit (-1: none) and float64 [H, W] parameter in it.
    """
    field = HeightField(height, 1.0)  # z = h01 in the (u, v, z) space of the segments
    h, w, n_seg = prisms.shape
    seg = segments.reshape(-1, n_seg, 2, 4).astype(np.float64)
    pr = prisms.reshape(-1, n_seg)
    k_hit = np.full(h * w, -1)
    s_hit = np.full(h * w, -1.0)
    for k in range(n_seg):
        live = np.flatnonzero((pr[:, k] >= 0) & (k_hit < 0))
        if live.size == 0:
            break
        a, b = seg[live, k, 0, 1:], seg[live, k, 1, 1:]
        delta = b - a
        delta[np.abs(delta[:, 2]) < 1e-12, 2] = -1e-12  # level segment: the DDA needs dz != 0
        length = np.linalg.norm(delta, axis=1)
        t = field.first_hit(a, delta / np.maximum(length, 1e-30)[:, None])
        s = t / np.maximum(length, 1e-30)
        hit = np.isfinite(s) & (s <= 1.0 + 1e-9)
        k_hit[live[hit]] = k
        s_hit[live[hit]] = np.clip(s[hit], 0, 1)
    return k_hit.reshape(h, w), s_hit.reshape(h, w)
