"""Reference of the ``shell`` pass: every camera ray against all triangles of the shell soup
(:func:`neumat.render.scene.shell_soup`) in float64; of the crossings up to the nearest
bottom-cap crossing, the ``2·MAX_SEGMENTS`` nearest are paired per prism into segments exactly
as ``shell.slang`` does (a crossing of a prism within :data:`SAME_T` of a nearer crossing of
the same prism, the ray through an edge two of its triangles share, counts once, but never a
curtain's; a curtain's segment, of zero length, goes before one entered at its t)."""

from __future__ import annotations

import numpy as np

from ..camera import Camera
from ..passes.shell import MAX_SEGMENTS, is_bottom_cap, is_curtain
from ..scene import TriangleSoup

SAME_T = 2e-6
"""kSameT of shell.slang: crossings of one prism this close (relative t) are one crossing."""


def intersect_all(origins: np.ndarray, dirs: np.ndarray, soup: TriangleSoup):
    """Möller–Trumbore of [N] rays against all [T] triangles.

    Returns:
        t [N, T] (inf where missed; t <= 0 counts as missed), b1 [N, T], b2 [N, T].
    """
    p = soup.positions.astype(np.float64)
    v0, e1, e2 = p[:, 0], p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    d = dirs[:, None, :]
    pv = np.cross(d, e2[None])
    det = np.sum(e1[None] * pv, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / det
        s = origins[:, None, :] - v0[None]
        b1 = np.sum(s * pv, -1) * inv
        q = np.cross(s, e1[None])
        b2 = np.sum(d * q, -1) * inv
        t = np.sum(e2[None] * q, -1) * inv
        ok = (det != 0) & (b1 >= 0) & (b1 <= 1) & (b2 >= 0) & (b1 + b2 <= 1) & (t > 0)
    return np.where(ok, t, np.inf), b1, b2


def shell_reference(camera: Camera, soup: TriangleSoup, base_only: bool, chunk: int = 128):
    """Segments of every pixel's ray.

    Returns:
        ``segments`` float64 [H, W, MAX_SEGMENTS, 2, 4] ((t, u, v, h01) in, out; zeros when
        unused) and ``prisms`` int [H, W, MAX_SEGMENTS] (-1 when unused, -2 in the last slot
        when all 2·MAX_SEGMENTS crossings were used).
    """
    o, d = camera.rays()
    h, w = d.shape[:2]
    o, d = o.reshape(-1, 3), d.reshape(-1, 3)
    n = o.shape[0]
    segments = np.zeros((n, MAX_SEGMENTS, 2, 4))
    prisms = np.full((n, MAX_SEGMENTS), -1)
    uvh = soup.uvh.astype(np.float64)
    bottom = is_bottom_cap(soup)
    curtain = is_curtain(soup)
    keep = 1 if base_only else 2 * MAX_SEGMENTS
    for start in range(0, n, chunk):
        t, b1, b2 = intersect_all(o[start:start + chunk], d[start:start + chunk], soup)
        # crossings beyond the nearest bottom-cap crossing are dropped (as in shell.slang)
        t_bottom = np.min(np.where(bottom[None], t, np.inf), axis=1)
        t = np.where(t <= t_bottom[:, None], t, np.inf)
        near = np.argsort(t, axis=1, kind="stable")
        for r in range(t.shape[0]):
            hits = _distinct([k for k in near[r] if np.isfinite(t[r, k])], t[r], soup.prism, curtain)[:keep]
            ends = []
            for k in hits:
                bary = np.array([1 - b1[r, k] - b2[r, k], b1[r, k], b2[r, k]])
                ends.append((int(soup.prism[k]), np.concatenate([[t[r, k]], bary @ uvh[k]])))
            pairs = [(ends[0], ends[0])] if base_only and ends else _pair(ends)
            for s, (a, b) in enumerate(pairs[:MAX_SEGMENTS]):
                segments[start + r, s] = (a[1], b[1])
                prisms[start + r, s] = a[0]
            full = len(hits) == keep and t[r, hits[-1]] < t_bottom[r]
            if not base_only and full and len(pairs) < MAX_SEGMENTS:
                prisms[start + r, -1] = -2  # the crossing list was full
    return {"segments": segments.reshape(h, w, MAX_SEGMENTS, 2, 4),
            "prisms": prisms.reshape(h, w, MAX_SEGMENTS)}


def _distinct(hits: list, t: np.ndarray, prism: np.ndarray, curtain: np.ndarray) -> list:
    """``hits`` (triangle ids in t order) without the crossings within :data:`SAME_T` of a
    kept crossing of the same prism, unless a curtain's (``curtain`` [T] bool)."""
    kept = []
    for k in hits:
        if curtain[k] or not any(prism[j] == prism[k] and abs(t[j] - t[k]) <= SAME_T * t[k] for j in kept):
            kept.append(k)
    return kept


def _pair(ends: list) -> list:
    """Consecutive crossings of the same prism, in order of the first one, but a pair of zero
    length (a curtain's; within :data:`SAME_T`) before the one just paired if that is entered
    at its t."""
    used, pairs = set(), []
    for i, (prism, _) in enumerate(ends):
        if i in used:
            continue
        for j in range(i + 1, len(ends)):
            if j not in used and ends[j][0] == prism:
                used.add(j)
                t = ends[i][1][0]
                first = ends[j][1][0] - t <= SAME_T * t and pairs and abs(pairs[-1][0][1][0] - t) <= SAME_T * t
                pairs.insert(len(pairs) - 1 if first else len(pairs), (ends[i], ends[j]))
                break
    return pairs
