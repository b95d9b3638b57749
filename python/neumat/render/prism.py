"""The curved shell prisms: exact texture-space coordinates of a point inside a prism.

The prism over base face f (corners i = 0, 1, 2) is the solid swept by the triangle with
corners ``A_i(h) = Q_i + h T_i`` for h01 = h in [0, 1]: ``Q_i`` the bottom corner (the base
vertex moved by s_i·d_lo along its normal), ``T_i`` the corner's extrusion (its normal times
the relief thickness s_i·(d_hi - d_lo), scene units per unit of h01; :mod:`neumat.render.scene`).
A point ``x = Σ b_i A_i(h)`` has texture coordinates ``(Σ b_i uv_i, h)`` — the same map the
Mitsuba reference displaces its mesh with (:mod:`.reference.mitsuba_shadows`).

Where the three ``T_i`` are equal (planes, flat faces of constant relief thickness) the map is
affine and a straight ray is a straight line in (u, v, h01). Elsewhere (curved meshes) it is
not: hf_trace (``shaders/hf_trace.slang``) then marches :data:`CURVED_SUBSEGMENTS` straight
pieces between exact points of the ray (``shaders/prism.slang`` ``prismCoordinates``, the
float32 twin of :func:`prism_coordinates`).
"""

from __future__ import annotations

import numpy as np

from .scene import HeightSpec
from .shapes import Mesh

CURVED_SUBSEGMENTS = 4
"""Straight pieces per ray segment inside a curved prism (kCurvedSubsegments): on the UV sphere
of 32 x 64 faces with a 256² map they bring the median texel error of the hits against the
exact map from ~0.05 to ~0.002 texel (2 pieces: ~0.015, 8: < 0.001)."""
NEWTON_STEPS = 4
"""Newton iterations of the cubic in h (kPrismNewtonSteps), from the linear guess."""


def prism_corners(mesh: Mesh, spec: HeightSpec) -> tuple[np.ndarray, np.ndarray]:
    """(Q, T), float64 [F, 3, 3] each: bottom corners and extrusions of every face's prism."""
    f = mesh.faces
    n = mesh.normals.astype(np.float64)[f]
    s = spec.scale_of(mesh).astype(np.float64)[f]
    bottom = mesh.positions.astype(np.float64)[f] + (s * spec.d_lo)[..., None] * n
    return bottom, (s * (spec.d_hi - spec.d_lo))[..., None] * n


def subsegments(extrusion: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """[F] int32 straight pieces per ray segment: 1 where the face's prism is affine (its three
    extrusions equal) or its base triangle degenerate (a UV sphere's pole faces, curtains:
    :func:`curtain_corners`), else :data:`CURVED_SUBSEGMENTS`.

    Args:
        extrusion: [F, 3, 3] the T of :func:`prism_corners` (float32 as the shader reads it).
        positions: [F, 3, 3] the base faces' corner positions.
    """
    affine = np.all(extrusion == extrusion[:, :1], axis=(1, 2))
    area = np.linalg.norm(np.cross(positions[:, 1] - positions[:, 0], positions[:, 2] - positions[:, 0]), axis=1)
    return np.where(affine | (area <= 1e-12), 1, CURVED_SUBSEGMENTS).astype(np.int32)


def curtain_corners(bottom: np.ndarray) -> np.ndarray:
    """[F] int32: per prism of bottom corners ``bottom`` [F, 3, 3] (:func:`prism_corners`' Q, or
    the shell soup's bottom caps), the corner k whose two other corners coincide — the prism is
    a curtain (``shaders/prism.slang``: a UV sphere's pole faces cover a UV triangle but no
    area) — else -1 (also where all three coincide)."""
    same = [np.all(bottom[:, (k + 1) % 3] == bottom[:, (k + 2) % 3], axis=-1) for k in range(3)]
    out = np.full(bottom.shape[0], -1, np.int32)
    for k in range(3):
        out[same[k] & ~same[(k + 1) % 3]] = k
    return out


def prism_coordinates(bottom: np.ndarray, extrusion: np.ndarray, uv: np.ndarray, x: np.ndarray,
                      h_guess: np.ndarray) -> np.ndarray:
    """(u, v, h01) [N, 3] float64 of points ``x`` [N, 3] in the prisms given per point.

    h solves det(A_1 - A_0, A_2 - A_0, x - A_0) = 0 (x in the plane of the triangle at height
    h: a cubic in h) by :data:`NEWTON_STEPS` Newton steps from ``h_guess`` [N]; the barycentrics
    are then x's in that triangle.

    Args:
        bottom, extrusion: [N, 3, 3] Q and T of each point's prism (:func:`prism_corners`).
        uv: [N, 3, 2] the prism's corner uvs.
    """
    q, t = bottom.astype(np.float64), extrusion.astype(np.float64)
    e1, e2, m1, m2 = q[:, 1] - q[:, 0], q[:, 2] - q[:, 0], t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    r0, t0 = x.astype(np.float64) - q[:, 0], t[:, 0]
    c0, c2 = np.cross(e1, e2), np.cross(m1, m2)
    c1 = np.cross(e1, m2) + np.cross(m1, e2)

    def dot(a, b):
        return np.sum(a * b, axis=-1)

    k0, k1, k2, k3 = dot(c0, r0), dot(c1, r0) - dot(c0, t0), dot(c2, r0) - dot(c1, t0), -dot(c2, t0)
    h = np.asarray(h_guess, np.float64).copy()
    for _ in range(NEWTON_STEPS):
        f = k0 + h * (k1 + h * (k2 + h * k3))
        df = k1 + h * (2.0 * k2 + 3.0 * h * k3)
        h = h - np.where(np.abs(df) > 1e-30, f / np.where(df == 0.0, 1.0, df), 0.0)
    a1, a2 = e1 + h[:, None] * m1, e2 + h[:, None] * m2
    rel = r0 - h[:, None] * t0
    nrm = np.cross(a1, a2)
    nn = dot(nrm, nrm)
    b1 = dot(np.cross(rel, a2), nrm) / nn
    b2 = dot(np.cross(a1, rel), nrm) / nn
    w = np.stack([1.0 - b1 - b2, b1, b2], axis=1)
    return np.concatenate([np.einsum("nc,ncx->nx", w, uv.astype(np.float64)), h[:, None]], axis=1)
