"""The UV metric of a mesh: per base face, how scene units and texture units relate.

Per face f with corners (P_i, N_i, uv_i), the linear maps of the face's UV triangle:

* ``dpdu``, ``dpdv`` [F, 3]: dP/du, dP/dv, scene units per UV unit (Lengyel's tangent solve,
  before any normalization). A UV step δ = (du, dv) moves the point by J δ with
  J = [dP/du | dP/dv]; a tangent-plane step w (scene units, shading frame (t, b)) moves the UV
  by (Tᵀ J)⁻¹ w, T = [t | b] — the anisotropic, local "uv_to_world" (on
  :func:`~neumat.render.shapes.uv_sphere`: |dP/dv| = π r / v_repeat, |dP/du| = 2π r sin θ / u_repeat).
* ``second`` [F, 3]: the second fundamental form in UV coordinates, (II_uu, II_uv, II_vv) =
  (dN/du·dP/du, ½(dN/du·dP/dv + dN/dv·dP/du), dN/dv·dP/dv), scene units per UV unit², from the
  vertex normals interpolated linearly (dN/du, dN/dv solved as dP/du). The normal curvature along
  a UV direction δ is κ = δᵀ II δ / δᵀ I δ (I = JᵀJ), 1/scene units, > 0 where the surface bends
  away from its normal (a sphere of radius r: II = I / r, κ = 1/r).
* :func:`vertex_uv_scale` [V]: sqrt(area / UV area) of the faces around each vertex — scene units
  per UV unit, isotropic; the local height scale of bundles whose heights are in UV units
  (:class:`~neumat.render.scene.HeightSpec`).

Faces with degenerate UVs (zero UV area) get zero derivatives and curvature.
"""

from __future__ import annotations

import numpy as np

from .shapes import Mesh


def _uv_solve(mesh: Mesh, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-face (d values/du, d values/dv) [F, C] float64 of per-vertex ``values`` [V, C]
    interpolated linearly over each face's UV triangle (zeros where the UV triangle is degenerate)."""
    f = mesh.faces
    x = np.asarray(values, np.float64)
    t = mesh.uvs.astype(np.float64)
    e1, e2 = x[f[:, 1]] - x[f[:, 0]], x[f[:, 2]] - x[f[:, 0]]
    d1, d2 = t[f[:, 1]] - t[f[:, 0]], t[f[:, 2]] - t[f[:, 0]]
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    inv = np.where(np.abs(det) > 1e-20, 1.0 / np.where(det == 0, 1.0, det), 0.0)[:, None]
    return (e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) * inv, (e2 * d1[:, 0:1] - e1 * d2[:, 0:1]) * inv


def face_metric(mesh: Mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dpdu [F, 3], dpdv [F, 3], second [F, 3]) float32 of every base face (module docstring)."""
    dpdu, dpdv = _uv_solve(mesh, mesh.positions)
    dndu, dndv = _uv_solve(mesh, mesh.normals)

    def dot(a, b):
        return np.sum(a * b, axis=1)

    second = np.stack([dot(dndu, dpdu), 0.5 * (dot(dndu, dpdv) + dot(dndv, dpdu)), dot(dndv, dpdv)], 1)
    return dpdu.astype(np.float32), dpdv.astype(np.float32), second.astype(np.float32)


def vertex_uv_scale(mesh: Mesh) -> np.ndarray:
    """[V] float32 sqrt(Σ area / Σ UV area) over the faces around each vertex, scene units per
    UV unit (the mesh-wide :meth:`Mesh.uv_to_world` where a vertex has no UV area around it).

    Raises:
        ValueError: the mesh's UVs cover no area.
    """
    global_scale = mesh.uv_to_world()  # raises for meshes without a UV parameterization
    p, t, f = mesh.positions.astype(np.float64), mesh.uvs.astype(np.float64), mesh.faces
    area = 0.5 * np.linalg.norm(np.cross(p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]]), axis=1)
    e1, e2 = t[f[:, 1]] - t[f[:, 0]], t[f[:, 2]] - t[f[:, 0]]
    uv_area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    a, b = np.zeros(p.shape[0]), np.zeros(p.shape[0])
    for k in range(3):
        np.add.at(a, f[:, k], area)
        np.add.at(b, f[:, k], uv_area)
    scale = np.where(b > 0, np.sqrt(a / np.where(b > 0, b, 1.0)), global_scale)
    return scale.astype(np.float32)
