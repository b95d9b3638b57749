"""``shell`` pass: primary visibility of the extruded shell (or of the plain base mesh): a BVH
walk per ray in compute (``shaders/shell.slang``), or, where the device rasterizes, candidate
lists from a render pipeline resolved by the walk's own ray tests (:mod:`.shell_raster`, the
same bits; ``visibility``). No ray queries.

With a :class:`~neumat.render.scene.HeightSpec` the pass intersects camera rays with the prism
boundaries of :func:`~neumat.render.scene.shell_soup` through a BVH built here in numpy and
writes, per pixel, up to :data:`MAX_SEGMENTS` segments — the ray's intervals inside successive
prisms, ordered along the ray — each with ``(t, u, v, h01)`` at both ends and its prism (base
face) id. Crossings are collected up to the nearest bottom-cap crossing (the relief is met by
then), at most 2·MAX_SEGMENTS of them; a longer path (grazing rays, fans of thin prisms around
a high-valence vertex) is marked and continued by :meth:`ShellPass.resume`, which
:class:`~neumat.render.passes.hf_trace.HfTracePass` drives. Without a height spec it is a plain
base-mesh ray caster: one segment with exit = entry.

The g-buffer slots (:data:`~neumat.render.passes.base.GBUFFER`) hold the first crossing (for a
base mesh, the hit): ``uv = (u, v, h01, footprint)``, interpolated ``normal`` / ``tangent``,
``position = (p, t)``; the surface slots (:data:`~neumat.render.passes.base.SURFACE`) the UV
metric of its base face (:func:`face_metric_rows`; the thickness is the face's mean). A pass
built with ``gbuffer=False`` writes the segment slots alone (the renderer's shell before
``hf_trace``, which writes its own g-buffer).

BVH walk (``collectCrossings`` in shell.slang): the rays of a wave (8 lanes on llvmpipe) walk
the tree together, each testing only what its own walk would (same segments to the bit as one
walk per ray), without a stack: the nodes lie in depth-first order and each inner node stores
the slot past its subtree (:func:`subtree_ends`). The crossing lists index their arrays with
compile-time constants only. lavapipe, 2 cores, 512², leather, every technique (``bench
frames``, medians of alternated runs): the walk's shell 168 -> 131 ms (wave-coherent walk) ->
~74 ms (constant indices) on the draped cloth; the shadow pass, which walks the same BVH,
73 -> 55 ms (stackless).
"""

from __future__ import annotations

import numpy as np

from ...slang_kernels import compute_kernel
from ..metric import face_metric
from ..prism import curtain_corners
from ..scene import Scene, build_bvh, reorder, shell_soup
from ..shapes import Mesh
from .base import (
    DPDU,
    DPDV,
    GBUFFER,
    GBUFFER_SPECS,
    LIST_SPEC,
    MASK,
    NORMAL,
    POSITION,
    SHAPE,
    SURFACE,
    SURFACE_SPECS,
    TANGENT,
    TILES,
    UV,
    RenderContext,
    RenderPass,
    Resource,
    SlotSpec,
    clear_buffers,
    pixel_threads,
    tile_dispatch,
)
from .shell_raster import ShellRaster

MAX_SEGMENTS = 8
"""Segments per pixel (``kMaxSegments`` in shell_crossings.slang)."""
SEGMENTS = "shell_segments"
"""float32, 8 per segment: (t, u, v, h01) where the ray enters the prism, then where it leaves;
undefined for unused segments (their prism slot is < 0: read nothing past the first one; the
numpy reference writes zeros there)."""
SEGMENT_PRISMS = "segment_prisms"
"""int32, 1 per segment: the base-mesh face whose prism holds the segment; -1 = unused; -2 in
the last slot: the 2·MAX_SEGMENTS crossings kept were all used (the path may go on; see the
continuation rounds of :class:`~neumat.render.passes.hf_trace.HfTracePass`)."""
SEGMENT_SPECS = {SEGMENTS: SlotSpec("float32", 8 * MAX_SEGMENTS),
                 SEGMENT_PRISMS: SlotSpec("int32", MAX_SEGMENTS)}
"""Slot specs of the segment outputs (inputs of ``hf_trace``)."""
SEGMENT_OUTPUTS = (SEGMENTS, SEGMENT_PRISMS)
"""The outputs of a :class:`ShellPass` without g-buffer (``gbuffer=False``)."""

SHADER = "shell.slang"
ENTRY = "shell_trace"
VISIBILITY = ("auto", "bvh", "raster")
"""How the shell pass finds a frame's crossings (:class:`ShellPass` ``visibility``)."""


def _float4_rows(a: np.ndarray) -> np.ndarray:
    """[..., k] float32 padded to [..., 4] and flattened to [N, 4] rows."""
    a = np.asarray(a, np.float32)
    pad = np.zeros(a.shape[:-1] + (4,), np.float32)
    pad[..., : a.shape[-1]] = a
    return pad.reshape(-1, 4)


def _tri_rows(pos: np.ndarray, soup) -> np.ndarray:
    """[3T, 4] rows (v0, is_bottom_cap), (e1, is_curtain), (e2, 0) of the soup's triangles."""
    rows = _float4_rows(pos).reshape(-1, 3, 4)
    rows[:, 0, 3] = is_bottom_cap(soup)
    rows[:, 1, 3] = is_curtain(soup)
    return rows.reshape(-1, 4)


def subtree_ends(bvh) -> np.ndarray:
    """[N] int32: per node, the first triangle of a leaf, else the slot just past the node's
    subtree (its skip: nodes are in depth-first order, left child = node + 1), the ``a`` of
    ``nodes`` in shell.slang's stackless walk."""
    leaf = bvh.link[:, 1] > 0
    ends = np.empty(len(leaf), np.int32)
    for i in range(len(leaf) - 1, -1, -1):  # children lie after their parent
        ends[i] = i + 1 if leaf[i] else ends[bvh.link[i, 0]]
    return np.where(leaf, bvh.link[:, 0], ends).astype(np.int32)


def face_metric_rows(mesh: Mesh, corner_thickness: np.ndarray) -> np.ndarray:
    """[3F, 4] float32 ``FaceMetric`` rows of ``render_types.slang`` per base face: (dP/du, 0),
    (dP/dv, 0), (II_uu, II_uv, II_vv, mean of ``corner_thickness`` [F, 3] over the face's
    corners) — :func:`neumat.render.metric.face_metric`."""
    dpdu, dpdv, second = face_metric(mesh)
    rows = np.zeros((mesh.faces.shape[0], 3, 4), np.float32)
    rows[:, 0, :3], rows[:, 1, :3], rows[:, 2, :3] = dpdu, dpdv, second
    rows[:, 2, 3] = np.mean(corner_thickness, axis=1)
    return rows.reshape(-1, 4)


def corner_thickness(scene: Scene) -> np.ndarray:
    """[F, 3] float32 relief thickness (scene units per unit of h01) at each corner of each base
    face: s·(d_hi - d_lo) (:mod:`neumat.render.scene`); zeros without a height field."""
    mesh, spec = scene.mesh, scene.height
    if spec is None:
        return np.zeros(mesh.faces.shape, np.float32)
    return (spec.scale_of(mesh)[mesh.faces] * np.float32(spec.d_hi - spec.d_lo)).astype(np.float32)


def is_curtain(soup) -> np.ndarray:
    """[T] bool: the triangle bounds a curtain, a prism whose bottom cap has two coincident
    corners (:func:`~neumat.render.prism.curtain_corners`; shell.slang never counts two of its
    crossings as one)."""
    caps = is_bottom_cap(soup)
    curtain = np.zeros(int(soup.prism.max()) + 1, bool)
    curtain[soup.prism[caps]] = curtain_corners(soup.positions[caps]) >= 0
    return curtain[soup.prism]


def is_bottom_cap(soup) -> np.ndarray:
    """[T] bool: the triangle is a bottom cap (all corners at h01 = 0); in base-mesh mode every
    triangle is."""
    return np.all(soup.uvh[:, :, 2] == 0.0, axis=1)


class ShellPass(RenderPass):
    """Shell (or base-mesh) visibility for ``scene`` on ``device``.

    Args:
        device: slangpy device (include path = neumat's shaders).
        scene: mesh + camera; ``scene.height`` None = base-mesh mode.
        gbuffer: also write the g-buffer and surface slots of the first crossing; False: the
            segment slots alone (:data:`SEGMENT_OUTPUTS`), all that ``hf_trace`` reads (it
            writes its own g-buffer): one kernel less and 132 bytes per pixel not written.
        visibility: how the first round finds crossings (:data:`VISIBILITY`): ``"bvh"`` (the
            compute BVH walk), ``"raster"`` (:mod:`.shell_raster`: candidate lists from a render
            pipeline, the same bits), ``"auto"`` (raster where the device rasterizes).

    Raises:
        ValueError: an unknown ``visibility``, or ``"raster"`` on a device without rasterization.
    """

    INPUTS = ()
    OUTPUTS = (SEGMENTS, SEGMENT_PRISMS) + GBUFFER + SURFACE

    def __init__(self, device, scene: Scene, gbuffer: bool = True, visibility: str = "auto") -> None:
        import slangpy as spy

        if visibility not in VISIBILITY:
            raise ValueError(f"unknown shell visibility {visibility!r}; choose one of {VISIBILITY}")
        rasterizes = device.has_feature(spy.Feature.rasterization)
        if visibility == "raster" and not rasterizes:
            raise ValueError(f"shell visibility 'raster' needs a rasterizing device; {device.info.adapter_name} is not")
        self.device = device
        self.scene = scene
        self.gbuffer = gbuffer
        if not gbuffer:
            self.OUTPUTS = SEGMENT_OUTPUTS
        self.base_only = scene.height is None
        lo = None if self.base_only else scene.height.d_lo
        hi = None if self.base_only else scene.height.d_hi
        soup = shell_soup(scene.mesh, lo, hi, None if self.base_only else scene.height.scale_of(scene.mesh))
        self.bvh = build_bvh(soup.positions)
        self.soup = reorder(soup, self.bvh.order)
        p = self.soup.positions
        pos = np.stack([p[:, 0], p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]], 1)
        nodes = np.zeros((self.bvh.bounds.shape[0], 2, 4), np.float32)
        nodes[:, 0, :3], nodes[:, 1, :3] = self.bvh.bounds[:, :3], self.bvh.bounds[:, 3:]
        nodes[:, 0, 3] = subtree_ends(self.bvh).view(np.float32)
        nodes[:, 1, 3] = self.bvh.link[:, 1].view(np.float32)
        usage = spy.BufferUsage.shader_resource
        tri_rows = _tri_rows(pos, self.soup)

        def upload(a, name):
            return device.create_buffer(usage=usage, data=np.ascontiguousarray(a), label=f"shell.{name}")

        self._params = {
            "nodes": upload(nodes.reshape(-1, 4), "nodes"),
            "tri_pos": upload(tri_rows, "tri_pos"),
            "tri_uvh": upload(_float4_rows(self.soup.uvh), "tri_uvh"),
            "tri_n": upload(_float4_rows(self.soup.normals), "tri_n"),
            "tri_t": upload(_float4_rows(self.soup.tangents), "tri_t"),
            "tri_prism": upload(self.soup.prism, "tri_prism"),
            "base_only": int(self.base_only),
        }
        self._face_metric = upload(face_metric_rows(scene.mesh, corner_thickness(scene)), "face_metric")
        self._no_resume = device.create_buffer(usage=usage, data=np.zeros(1, np.float32), label="shell.no_resume")
        self._no_list = device.create_buffer(usage=usage, data=np.zeros(1, np.uint32), label="shell.no_list")
        self._no_frame = device.create_buffer(usage=usage | spy.BufferUsage.unordered_access, size=16,
                                              label="shell.no_frame")
        self.kernel = compute_kernel(device, SHADER, ENTRY)
        self.finish = compute_kernel(device, SHADER, "shell_gbuffer")
        self.raster = (ShellRaster(device, self._params, tri_rows, self.bvh.bounds[0])
                       if visibility == "raster" or (visibility == "auto" and rasterizes) else None)
        """The rasterized first round (:class:`~.shell_raster.ShellRaster`), None: the BVH walk."""
        if self.raster is not None:  # it also lists the tiles holding the shell
            self.OUTPUTS = self.OUTPUTS + (TILES,)

    def bvh_params(self) -> dict:
        """The ``ShellGeometry`` uniform of ``shadow_prisms.slang``: the BVH ``nodes`` and the
        soup's ``tri_pos``, ``tri_uvh``, ``tri_prism`` buffers (passes that trace other rays
        through the same prisms bind them as is)."""
        return {k: self._params[k] for k in ("nodes", "tri_pos", "tri_uvh", "tri_prism")}

    def reflect(self) -> dict[str, SlotSpec]:
        specs = {**SEGMENT_SPECS, **GBUFFER_SPECS, **SURFACE_SPECS} if self.gbuffer else dict(SEGMENT_SPECS)
        return {**specs, TILES: LIST_SPEC} if self.raster is not None else specs

    def execute(self, ctx: RenderContext, inputs: dict[str, Resource]) -> dict[str, Resource]:
        self.check_inputs(inputs)
        cam = self.scene.camera
        if (cam.width, cam.height) != (ctx.width, ctx.height):
            raise ValueError(f"camera is {cam.width}x{cam.height} but the frame is {ctx.width}x{ctx.height}")
        out = self.allocate_outputs(ctx)
        self._trace(ctx, out, None)
        if not self.gbuffer:
            return out
        tiles = out.get(TILES)
        if tiles is not None:  # culled: the mask stays 0 off the tiles
            clear_buffers(ctx, out[MASK].buffer)
        self.finish.dispatch(
            **tile_dispatch(ctx, tiles), camera=cam.shader_params(), segments=out[SEGMENTS].buffer,
            segment_prisms=out[SEGMENT_PRISMS].buffer, face_metric=self._face_metric, uv=out[UV].buffer,
            position=out[POSITION].buffer, mask=out[MASK].buffer, normal=out[NORMAL].buffer,
            **{slot: out[slot].buffer for slot in (DPDU, DPDV, SHAPE)},
        )
        return out

    def resume(self, ctx: RenderContext, out: dict[str, Resource], resume_t, pixel_list, list_count: int) -> None:
        """Continuation round: re-trace the ``list_count`` pixels of ``pixel_list`` (device
        uint buffer of row-major pixel indices), keeping crossings beyond their ``resume_t``
        (device float buffer, one per pixel, >= 0 there), and rewrite their segments in ``out``
        (the ``SEGMENTS`` / ``SEGMENT_PRISMS`` resources of :meth:`execute`)."""
        self._trace(ctx, out, resume_t, pixel_list, list_count)

    def _trace(self, ctx: RenderContext, out: dict[str, Resource], resume_t, pixel_list=None,
               list_count: int = -1) -> None:
        frame = resume_t is None and self.gbuffer  # the normal / tangent slots are written
        if resume_t is None and self.raster is not None:
            targets = {"segments": out[SEGMENTS].buffer, "segment_prisms": out[SEGMENT_PRISMS].buffer,
                       "normal": out[NORMAL].buffer if frame else self._no_frame,
                       "tangent": out[TANGENT].buffer if frame else self._no_frame}
            pixel_list, list_count, out[TILES] = self.raster.trace(ctx, self.scene.camera, targets, frame)
            if list_count == 0:
                return
        self.kernel.dispatch(
            thread_count=pixel_threads(ctx, list_count), camera=self.scene.camera.shader_params(),
            **self._params, resuming=int(resume_t is not None), write_frame=int(frame),
            resume_t=self._no_resume if resume_t is None else resume_t,
            pixel_list=self._no_list if pixel_list is None else pixel_list, list_count=list_count,
            segments=out[SEGMENTS].buffer, segment_prisms=out[SEGMENT_PRISMS].buffer,
            normal=out[NORMAL].buffer if frame else self._no_frame,
            tangent=out[TANGENT].buffer if frame else self._no_frame,
        )
