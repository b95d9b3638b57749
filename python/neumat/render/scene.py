"""A scene (meshes, camera, lights, the material's height field) and the shell geometry that the
``shell`` pass intersects.

Height convention (the bundle stores ``height`` in [0, 1] of ``height_range = (h_min, h_max)``
in ``"uv"`` or ``"world"`` units): the surface is displaced along the vertex normal by
``d = s · height_scale · (h_min + H(u, v)·(h_max - h_min))`` scene units, where ``height_scale``
(scene units per height unit) defaults to 1 for ``"world"`` heights; ``"uv"`` heights are
scaled per vertex instead — ``s`` = :func:`~neumat.render.metric.vertex_uv_scale` (the local
scene units per UV unit around the vertex, interpolated across faces), ``height_scale`` = 1 — so
relief keeps its proportion to the texture wherever the mesh stretches it; elsewhere ``s = 1``.
The shell is the mesh extruded to ``s·[d_lo, d_hi] = s·height_scale·(h_min, h_max)`` at each
vertex; the relief's thickness at a point (scene units per unit of h01) is ``s·(d_hi - d_lo)``.

UV metric (per base face, :mod:`neumat.render.metric`): dP/du, dP/dv (scene units per UV unit)
and the second fundamental form in UV coordinates. The visibility passes carry them per pixel
in the g-buffer's surface slots (:data:`~neumat.render.passes.base.SURFACE`): ``dpdu``,
``dpdv`` and ``shape`` (II_uu, II_uv, II_vv, thickness); every pass where scene units and
texels meet (shadow march steps and curvature, relief normal, LoD footprint) uses them
anisotropically instead of one mesh-wide scale.

Shell soup: the boundaries of all prisms, one closed polyhedron per base face — its top cap
(the face moved by ``d_hi·n``), bottom cap (``d_lo·n``) and three side walls (each bilinear quad
split into two triangles along a diagonal chosen from the welded vertex ids, so that the two
faces sharing an edge — also across UV seams — build the same wall geometry, each with its own
UVs). Every soup triangle knows its prism (base face); every corner carries ``(u, v, h01)``
(h01 = 1 on top, 0 at the bottom) and the base vertex's normal and tangent. A ray crosses each
prism's boundary an even number of times; pairing consecutive crossings of the same prism gives
the ray's intervals inside each prism, where (u, v, h01) is interpolated linearly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .camera import Camera
from .lights import DirectionalLight, PointLight
from .metric import vertex_uv_scale
from .shapes import Mesh

BVH_LEAF_SIZE = 4
"""Most triangles per BVH leaf."""


@dataclass
class HeightSpec:
    """The material's height field as the renderer uses it."""

    height: np.ndarray
    """float32 [R, R] in [0, 1] (bundle layout: row = v, col = u)."""
    d_lo: float
    """Displacement of height 0 (height_scale · h_min): scene units, times the vertex factor s."""
    d_hi: float
    """Displacement of height 1 (height_scale · h_max), as d_lo; > d_lo."""
    vertex_scale: np.ndarray | None = None
    """[V] float32 per-vertex factor s of d_lo, d_hi (module docstring); None = 1 everywhere."""

    @classmethod
    def from_bundle(cls, bundle, mesh: Mesh, height_scale: float | None = None) -> HeightSpec:
        """The bundle's height map and range mapped to scene units (module docstring).

        Raises:
            ValueError: the bundle has no height map.
        """
        if bundle.height is None:
            raise ValueError("the bundle has no height map; render it without hf tracing")
        lo, hi = bundle.height_range
        height = np.asarray(bundle.height, np.float32)
        if height_scale is None and bundle.height_units == "uv":
            return cls(height, lo, hi, vertex_uv_scale(mesh))
        scale = 1.0 if height_scale is None else height_scale
        return cls(height, scale * lo, scale * hi)

    def scale_of(self, mesh: Mesh) -> np.ndarray:
        """[V] float32 per-vertex factor s of ``mesh`` (ones when :attr:`vertex_scale` is None).

        Raises:
            ValueError: :attr:`vertex_scale` does not have one value per vertex of ``mesh``.
        """
        if self.vertex_scale is None:
            return np.ones(mesh.positions.shape[0], np.float32)
        s = np.asarray(self.vertex_scale, np.float32)
        if s.shape != (mesh.positions.shape[0],):
            raise ValueError(f"vertex_scale has shape {s.shape}; the mesh has {mesh.positions.shape[0]} vertices")
        return s


@dataclass
class Scene:
    """What a frame renders: one mesh (merge several with :func:`merge_meshes`), a camera,
    lights and optionally the height field of its material."""

    mesh: Mesh
    """The base mesh (the neural material covers all of it)."""
    camera: Camera = field(default_factory=Camera)
    """The view."""
    lights: list[DirectionalLight | PointLight] = field(default_factory=lambda: [DirectionalLight()])
    """Analytic lights (used by the compose pass)."""
    height: HeightSpec | None = None
    """Height field for shell tracing; None = plain base-mesh hits."""


def merge_meshes(meshes: list[Mesh]) -> Mesh:
    """One mesh holding all of ``meshes`` (face ids run in list order)."""
    offsets = np.cumsum([0] + [m.positions.shape[0] for m in meshes[:-1]])
    return Mesh(
        np.concatenate([m.positions for m in meshes]), np.concatenate([m.normals for m in meshes]),
        np.concatenate([m.uvs for m in meshes]),
        np.concatenate([m.faces + o for m, o in zip(meshes, offsets, strict=True)]),
        np.concatenate([m.tangents for m in meshes]),
    )


@dataclass
class TriangleSoup:
    """Triangles with per-corner attributes, in BVH order (float32 unless noted)."""

    positions: np.ndarray
    """[T, 3, 3] corner positions."""
    uvh: np.ndarray
    """[T, 3, 3] corner (u, v, h01)."""
    normals: np.ndarray
    """[T, 3, 3] corner unit normals (of the base vertex)."""
    tangents: np.ndarray
    """[T, 3, 4] corner tangents (xyz, handedness)."""
    prism: np.ndarray
    """[T] int32 base-mesh face each triangle bounds."""


def _welded(mesh: Mesh) -> np.ndarray:
    """[V] id of each vertex after welding by position (1e-6), so UV seams join."""
    _, weld = np.unique(np.round(mesh.positions, 6), axis=0, return_inverse=True)
    return weld.ravel()


def boundary_edge_count(mesh: Mesh) -> int:
    """Number of edges used by one face only (after welding): 0 for a closed mesh."""
    weld, f = _welded(mesh), mesh.faces
    key = np.sort(np.stack([weld[f].ravel(), weld[np.roll(f, -1, 1)].ravel()], 1), axis=1)
    _, counts = np.unique(key, axis=0, return_counts=True)
    return int(np.sum(counts == 1))


def shell_soup(mesh: Mesh, d_lo: float | None, d_hi: float | None,
               vertex_scale: np.ndarray | None = None) -> TriangleSoup:
    """The prisms of ``mesh`` extruded to s·[d_lo, d_hi] at each vertex (module docstring; s =
    ``vertex_scale`` [V], default 1), or, with ``d_lo = d_hi = None``, the base mesh itself
    (h01 = 0)."""
    p, n, f = mesh.positions, mesh.normals, mesh.faces
    s = np.ones(p.shape[0]) if vertex_scale is None else np.asarray(vertex_scale, np.float64)
    uv, tan = mesh.uvs, mesh.tangents
    ids = np.arange(f.shape[0], dtype=np.int32)

    def corners(c: np.ndarray, offset, h01):
        """Soup attributes of corners ``c`` [T, 3] moved by offset [.., 3] along n."""
        off = np.broadcast_to(np.asarray(offset, np.float64), c.shape)
        pos = p[c] + (off * s[c])[..., None] * n[c]
        h = np.broadcast_to(np.asarray(h01, np.float32), c.shape)[..., None]
        return pos, np.concatenate([uv[c], h], -1), n[c], tan[c]

    if d_lo is None or d_hi is None:
        parts, prism = [corners(f, 0.0, 0.0)], [ids]
    else:
        parts = [corners(f, d_hi, 1.0), corners(f[:, ::-1], d_lo, 0.0)]
        prism = [ids, ids]
        weld = _welded(mesh)
        for k in range(3):  # the wall over edge (a, b) of every face
            a, b = f[:, k], f[:, (k + 1) % 3]
            # split along the diagonal lo(smaller welded id) - hi(larger), so that the two
            # faces sharing an edge build the same two wall triangles
            swap = weld[a] > weld[b]
            q0, q1 = np.where(swap, b, a), np.where(swap, a, b)
            parts.append(corners(np.stack([q0, q1, q1], 1), [d_lo, d_lo, d_hi], [0.0, 0.0, 1.0]))
            parts.append(corners(np.stack([q0, q1, q0], 1), [d_lo, d_hi, d_hi], [0.0, 1.0, 1.0]))
            prism += [ids, ids]
    soup = [np.concatenate([part[i] for part in parts]).astype(np.float32) for i in range(4)]
    return TriangleSoup(*soup, np.concatenate(prism).astype(np.int32))


@dataclass
class Bvh:
    """A binary BVH over a soup (median split on the longest centroid axis).

    Node ``i``: ``bounds[i] = (lo.xyz, hi.xyz)``; ``link[i] = (a, count)``: a leaf when
    ``count > 0`` (triangles ``a .. a+count-1`` of the reordered soup), else an inner node whose
    left child is ``i + 1`` and right child ``a``."""

    bounds: np.ndarray
    """[N, 6] float32 node boxes."""
    link: np.ndarray
    """[N, 2] int32 (first triangle | right child, triangle count | 0)."""
    order: np.ndarray
    """[T] soup triangle at each BVH slot."""


def build_bvh(positions: np.ndarray, leaf_size: int = BVH_LEAF_SIZE) -> Bvh:
    """BVH over triangles ``positions`` [T, 3, 3] (see :class:`Bvh`)."""
    lo_t, hi_t = positions.min(axis=1), positions.max(axis=1)
    cen = 0.5 * (lo_t + hi_t)
    bounds, link, order = [], [], []
    stack = [(np.arange(positions.shape[0]), -1)]  # (triangles, parent slot awaiting a right child)
    while stack:
        tris, parent = stack.pop()
        node = len(bounds)
        if parent >= 0:
            link[parent][0] = node
        bounds.append(np.concatenate([lo_t[tris].min(0), hi_t[tris].max(0)]))
        if tris.size <= leaf_size:
            link.append([len(order), tris.size])
            order.extend(tris.tolist())
            continue
        c = cen[tris]
        axis = int(np.argmax(c.max(0) - c.min(0)))
        split = np.argsort(c[:, axis], kind="stable")
        half = tris.size // 2
        link.append([0, 0])
        stack.append((tris[split[half:]], node))  # right, popped after the whole left subtree
        stack.append((tris[split[:half]], -1))
    return Bvh(np.asarray(bounds, np.float32), np.asarray(link, np.int32), np.asarray(order, np.int64))


def reorder(soup: TriangleSoup, order: np.ndarray) -> TriangleSoup:
    """``soup`` with triangles permuted to ``order``."""
    return TriangleSoup(*(getattr(soup, k)[order] for k in ("positions", "uvh", "normals", "tangents", "prism")))
