"""A tiled bilinear height field and exact ray intersection with it (numpy, vectorized).

Surface: ``z(u, v) = scale * h(u, v)``, ``h`` the bilinear interpolation of an R×R grid of
heights whose texel (r, c) sits at uv = ((c + .5) / R, (r + .5) / R); the grid repeats with
period 1 in u and v. Positions are (u, v, z) in UV units, +z = macro normal.

Intersection walks the cells between texel centres with a 2D DDA (Amanatides & Woo 1987) and,
inside each cell, solves exactly: along a ray the bilinear patch ``a + b·s + c·t + e·s·t`` is a
quadratic in the ray parameter, so ``ray.z - surface`` is a quadratic whose first root is
bracketed exactly (end points and the interior minimum) and refined by bisection. There are no
step-size artefacts: thin ridges between samples are never skipped.
"""

from __future__ import annotations

import numpy as np

from .interp import bilinear

BISECTION_STEPS = 48
"""Refinement steps of a bracketed root: 2^-48 of a cell crossing, far below float32 output."""

SURFACE_EPS = 1e-7
"""Offset (UV units) along a secondary ray's direction before testing it against the surface
it starts on: far above float64 round-off of hit points, far below a texel (1/R)."""


SHELL_SLACK = 1e-9
"""How far (UV units) rays are followed beyond the shell's bounds [z_min, z_max]."""


class HeightField:
    """Periodic bilinear height field with shading normals.

    Args:
        height: [R, R] heights in [0, 1] (any float dtype; kept as float64).
        scale: displacement of height 1, in UV units (>= 0).
        texel_normals: optional [R, R, 3] unit shading normals per texel (e.g. a decoded normal
            map). ``None``: central differences of the height field (what a mesh renderer's
            vertex normals are), see :meth:`gradient_normals`.
    """

    def __init__(self, height: np.ndarray, scale: float,
                 texel_normals: np.ndarray | None = None) -> None:
        self.h = np.ascontiguousarray(height, dtype=np.float64)
        self.res = int(self.h.shape[0])
        self.scale = float(scale)
        self.z_min = self.scale * float(self.h.min())
        self.z_max = self.scale * float(self.h.max())
        self._flat = self.h.ravel()
        self.texel_normals = (self.gradient_normals() if texel_normals is None
                              else np.asarray(texel_normals, dtype=np.float64))

    def gradient_normals(self) -> np.ndarray:
        """[R, R, 3] float64 unit normals ``normalize(-∂z/∂u, -∂z/∂v, 1)`` from central
        differences of the texel heights (wrapping at the tile border)."""
        r = self.res
        dzdu = self.scale * (np.roll(self.h, -1, axis=1) - np.roll(self.h, 1, axis=1)) * (r / 2)
        dzdv = self.scale * (np.roll(self.h, -1, axis=0) - np.roll(self.h, 1, axis=0)) * (r / 2)
        n = np.stack([-dzdu, -dzdv, np.ones_like(dzdu)], axis=-1)
        return n / np.linalg.norm(n, axis=-1, keepdims=True)

    def height_at(self, uv: np.ndarray) -> np.ndarray:
        """[N] surface z (UV units) at [N, 2] uv, bilinear with wrap."""
        return self.scale * bilinear(self.h, uv, wrap=True)

    def normal_at(self, uv: np.ndarray) -> np.ndarray:
        """[N, 3] float64 unit shading normals at [N, 2] uv: the bilinear interpolation of the
        texel normals, renormalized (as a renderer interpolates vertex normals)."""
        n = bilinear(self.texel_normals, uv, wrap=True)
        return n / np.linalg.norm(n, axis=-1, keepdims=True)

    def first_hit(self, origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """Ray parameter of the first intersection with the surface.

        Args:
            origin: [N, 3] ray origins (UV units); an origin under the surface hits at t = 0.
            direction: [N, 3] unit directions with z != 0.

        Returns:
            [N] float64 ``t`` (hit point = origin + t·direction), ``inf`` where the ray leaves
            the shell [z_min, z_max] without touching the surface.
        """
        return self._march(origin, direction, any_hit=False)

    def occluded(self, origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """[N] bool: does the ray from ``origin`` along ``direction`` (z > 0) meet the surface
        before it rises above the shell? Used for shadow (toward ωi) and masking (toward ωo)
        tests; start the ray slightly off the surface (see :data:`SURFACE_EPS`)."""
        return np.isfinite(self._march(origin, direction, any_hit=True))

    def _march(self, origin: np.ndarray, direction: np.ndarray, any_hit: bool) -> np.ndarray:
        o = np.asarray(origin, dtype=np.float64)
        d = np.asarray(direction, dtype=np.float64)
        n, r, s = o.shape[0], self.res, self.scale
        t_hit = np.full(n, np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            # march a hair past the shell so round-off at its bounds cannot end a ray early
            t_end = np.where(d[:, 2] < 0, (o[:, 2] - self.z_min + SHELL_SLACK) / -d[:, 2],
                             (self.z_max + SHELL_SLACK - o[:, 2]) / d[:, 2])
        below_top = o[:, 2] <= self.z_max
        idx = np.flatnonzero((t_end >= 0) | below_top)
        t_end = np.maximum(t_end, 0.0)
        gx, gy = o[idx, 0] * r - 0.5, o[idx, 1] * r - 0.5
        dx, dy = d[idx, 0] * r, d[idx, 1] * r
        oz, dz, tend = o[idx, 2], d[idx, 2], t_end[idx]
        ix, iy = np.floor(gx), np.floor(gy)
        with np.errstate(divide="ignore", invalid="ignore"):
            step_x, step_y = np.where(dx > 0, 1.0, -1.0), np.where(dy > 0, 1.0, -1.0)
            tdx = np.where(dx != 0, 1.0 / np.abs(dx), np.inf)
            tdy = np.where(dy != 0, 1.0 / np.abs(dy), np.inf)
            tmx = np.where(dx > 0, (ix + 1 - gx) / dx, np.where(dx < 0, (ix - gx) / dx, np.inf))
            tmy = np.where(dy > 0, (iy + 1 - gy) / dy, np.where(dy < 0, (iy - gy) / dy, np.inf))
        t_in = np.zeros(idx.size)
        solve = []  # (ray ids, t_in, hi, C0, C1, C2) of bracketed roots, refined at the end
        state = [idx, gx, gy, dx, dy, oz, dz, tend, ix, iy, step_x, step_y, tdx, tdy, tmx, tmy,
                 t_in]
        while state[0].size:
            (idx, gx, gy, dx, dy, oz, dz, tend, ix, iy, step_x, step_y, tdx, tdy, tmx, tmy,
             t_in) = state
            t_out = np.minimum(np.minimum(tmx, tmy), tend)
            c0, c1 = ix.astype(np.int64) % r, iy.astype(np.int64) % r
            c0n, c1n = (c0 + 1) % r, (c1 + 1) % r
            h00, h10 = self._flat[c1 * r + c0], self._flat[c1 * r + c0n]
            h01, h11 = self._flat[c1n * r + c0], self._flat[c1n * r + c0n]
            sx, sy = gx + dx * t_in - ix, gy + dy * t_in - iy
            b, c, e = h10 - h00, h01 - h00, h00 - h10 - h01 + h11
            q0 = oz + dz * t_in - s * (h00 + b * sx + c * sy + e * sx * sy)
            q1 = dz - s * (b * dx + c * dy + e * (sx * dy + sy * dx))
            q2 = -s * e * dx * dy
            span = t_out - t_in
            f_end = q0 + (q1 + q2 * span) * span
            with np.errstate(divide="ignore", invalid="ignore"):
                t_min = np.where(q2 > 0, -q1 / (2 * q2), -1.0)
            dip = (t_min > 0) & (t_min < span) & (q0 + (q1 + q2 * t_min) * t_min <= 0)
            at_start = q0 <= 0
            hit = at_start | dip | (f_end <= 0)
            if hit.any():
                if any_hit:
                    t_hit[idx[hit]] = t_in[hit]
                else:
                    t_hit[idx[at_start]] = t_in[at_start]
                    m = hit & ~at_start
                    hi = np.where(dip, t_min, span)
                    solve.append((idx[m], t_in[m], hi[m], q0[m], q1[m], q2[m]))
            go = ~hit & (t_out < tend)
            step_in_x = tmx <= tmy
            new_t_in = np.where(step_in_x, tmx, tmy)
            ix = ix + np.where(step_in_x, step_x, 0.0)
            iy = iy + np.where(step_in_x, 0.0, step_y)
            tmx = np.where(step_in_x, tmx + tdx, tmx)
            tmy = np.where(step_in_x, tmy, tmy + tdy)
            state = [a[go] for a in (idx, gx, gy, dx, dy, oz, dz, tend, ix, iy, step_x, step_y,
                                     tdx, tdy, tmx, tmy, new_t_in)]
        if solve:
            ids, base, hi, q0, q1, q2 = (np.concatenate(p) for p in zip(*solve, strict=True))
            lo = np.zeros_like(hi)
            for _ in range(BISECTION_STEPS):
                mid = 0.5 * (lo + hi)
                above = q0 + (q1 + q2 * mid) * mid > 0
                lo = np.where(above, mid, lo)
                hi = np.where(above, hi, mid)
            t_hit[ids] = base + hi
        return t_hit
