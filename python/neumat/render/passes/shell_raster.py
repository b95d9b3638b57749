"""The shell pass's rasterized primary visibility (``shaders/shell_raster.slang``): the segments
of :class:`~neumat.render.passes.shell.ShellPass` to the bit, with the per-ray BVH walk replaced
by a render pipeline that lists each pixel's candidate triangles.

Four steps per frame: the bottom caps into a depth buffer (the nearest bottom-cap crossing
bounds what a ray keeps); every prism triangle grown by :data:`DILATE_PX` pixels and
depth-tested against it, its fragments appending the triangle to their pixel's list (at most
:data:`CANDIDATES` kept; the wall two neighbouring prisms share is drawn once and listed for
both, :func:`triangle_copies`: 16384 -> 10368 triangles on the draped cloth); the
:data:`~.base.TILE`-pixel tiles holding any fragment of either pass listed (the shell pass's
:data:`~.base.TILES` output: the later passes run on those tiles alone); then a compute resolve,
on those tiles only, running the BVH walk's exact ray-triangle tests and crossing bookkeeping on
each list. A pixel the resolve cannot certify (list overflow, a bottom cap that lost to its
twin, a triangle straddling the near plane...) goes on a pixel list that the BVH walk traces
after it, so the result never depends on the rasterizer's rounding. Off the tiles the segment
and frame slots are left undefined (the culling contract of :mod:`.base`): at 1080p, with 13 %
of the frame covered, writing them was most of the resolve.

Why: llvmpipe rasterizes on every core in tiles, while its compute lanes walk a BVH node by node,
divergent: lavapipe, 2 cores, leather on the draped cloth (``bench frames``, ``all`` against
``bvh_shell``, one run): shell 61 → 47 ms at 512², 271 → 173 ms at 1080p; with the tile culling
the frame 239 → 185 ms and 1054 → 639 ms. A device without rasterization (slangpy's CUDA
device) keeps the BVH walk.

Depth: ``z_ndc = far / (far - near) · (1 - near / z)`` of the view depth ``z`` (scene units
along the camera's forward axis), ``near`` / ``far`` from the BVH root box (:func:`depth_range`).
"""

from __future__ import annotations

import numpy as np

from ...slang_kernels import compute_kernel
from ..camera import Camera
from .base import LIST_SPEC, RenderContext, Resource, tile_dispatch, tile_grid

SHADER = "shell_raster.slang"
CANDIDATES = 32
"""Candidate triangles a pixel's list keeps (``cap``); a pixel with more is traced by the BVH.
128 bytes per pixel (half the segment slots'): a UV sphere's poles, where thin prisms fan out,
overflow 16 (sphere 512²: 5704 pixels to the walk with 16, 1314 with 32; shell 75 -> 58 ms)."""
DILATE_PX = 0.125
"""Pixels each candidate triangle's edges move out: far beyond the rasterizer's rounding (1/256
pixel) and the projection's against the ray's, so no crossing is ever missed."""
DEPTH_SHIFT = 2e-6
"""NDC depth the bottom caps are moved back by: the candidate test's tolerance (a few float32
ulps of depths near 1)."""
NEAR_FRACTION = 0.5
"""near = this fraction of the nearest view depth of the BVH root box (eye outside it)."""


def triangle_copies(tri_rows: np.ndarray) -> np.ndarray:
    """int32 [T]: per triangle of ``tri_rows`` (shell.slang's ``tri_pos``, 3 float4 rows per
    triangle), the other triangle whose rows are the same bytes (a wall two neighbouring prisms
    share: the shell soup splits both along one diagonal), else -1; groups of three or more
    are left alone. The candidate pass draws one of each pair and lists both: the ray tests of
    a copy are the same bits."""
    rows = np.ascontiguousarray(tri_rows, np.float32).reshape(-1, 12)
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * 12))).ravel()
    _, group, counts = np.unique(keys, return_inverse=True, return_counts=True)
    copies = np.full(len(keys), -1, np.int32)
    paired = np.flatnonzero(counts[group] == 2)
    order = paired[np.argsort(group[paired], kind="stable")]  # the two of each group adjacent
    copies[order[0::2]], copies[order[1::2]] = order[1::2], order[0::2]
    return copies


def depth_range(camera: Camera, lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    """``(near, far)`` view depths (scene units) bracketing the box ``lo``..``hi`` seen by
    ``camera``: near at :data:`NEAR_FRACTION` of its nearest corner's depth (10⁻⁴ far when the
    box reaches behind the eye; the shader widens triangles near it to the whole frame), far
    just past its farthest corner's."""
    forward, _, _ = camera.basis()
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    depth = (corners - np.asarray(camera.eye, np.float64)) @ forward
    far = max(float(depth.max()) * 1.01, 1e-6)
    near = NEAR_FRACTION * float(depth.min()) if depth.min() > 0 else 1e-4 * far
    return near, far


class ShellRaster:
    """Rasterized candidate lists + exact resolve for one shell (or base mesh).

    Args:
        device: slangpy device with :attr:`slangpy.Feature.rasterization`.
        params: the shell pass's geometry buffers (``nodes``, ``tri_pos``, ``tri_uvh``, ``tri_n``,
            ``tri_t``, ``tri_prism``, ``base_only``; shell.py).
        tri_rows: the rows of ``tri_pos`` on the host (float32 [3T, 4]).
        root: the BVH root box, float [6] (lo, hi).
    """

    def __init__(self, device, params: dict, tri_rows: np.ndarray, root: np.ndarray) -> None:
        import slangpy as spy

        self.device, self.params, self.triangles = device, params, len(tri_rows) // 3
        copies = triangle_copies(tri_rows)
        self.drawn = self.triangles - int((copies >= 0).sum()) // 2
        """Triangles the candidate pass draws (one of each pair of copies)."""
        self.copies = device.create_buffer(usage=spy.BufferUsage.shader_resource, data=copies,
                                           label="shell_raster.tri_copy")
        self.root = np.asarray(root, np.float64)
        program = device.load_program(SHADER, ["shell_candidates_vs", "shell_bottom_fs"])
        common = {"program": program, "input_layout": None,
                  "primitive_topology": spy.PrimitiveTopology.triangle_list,
                  "rasterizer": {"cull_mode": spy.CullMode.none}, "targets": []}
        depth = {"format": spy.Format.d32_float, "depth_test_enable": True}
        self.bottom = device.create_render_pipeline(
            **common, depth_stencil={**depth, "depth_write_enable": True, "depth_func": spy.ComparisonFunc.less})
        common["program"] = device.load_program(SHADER, ["shell_candidates_vs", "shell_candidates_fs"])
        self.candidates = device.create_render_pipeline(
            **common, depth_stencil={**depth, "depth_write_enable": False,
                                     "depth_func": spy.ComparisonFunc.less_equal})
        self.resolve = compute_kernel(device, SHADER, "shell_resolve")
        self.list_tiles = compute_kernel(device, SHADER, "shell_tiles")
        self._frame: tuple | None = None
        self.last_fallback = 0
        """Pixels of the last frame left to the BVH walk."""

    def _buffers(self, width: int, height: int) -> dict:
        """Per-frame-size scratch (kept while the size holds)."""
        import slangpy as spy

        if self._frame is None or self._frame[0] != (width, height):
            d, pixels = self.device, width * height
            tiles = int(np.prod(tile_grid(width, height)))
            usage = spy.BufferUsage.unordered_access | spy.BufferUsage.shader_resource
            self._frame = ((width, height), {
                "depth": d.create_texture(format=spy.Format.d32_float, width=width, height=height,
                                          usage=spy.TextureUsage.depth_stencil | spy.TextureUsage.shader_resource,
                                          label="shell_raster.depth"),
                "count": d.create_buffer(size=4 * pixels, usage=usage, label="shell_raster.count"),
                "list": d.create_buffer(size=4 * pixels * CANDIDATES, usage=usage, label="shell_raster.list"),
                "fallback": d.create_buffer(size=4 * pixels, usage=usage, label="shell_raster.fallback"),
                "fallback_count": d.create_buffer(size=4, usage=usage, label="shell_raster.fallback_count"),
                "tile_flags": d.create_buffer(size=4 * tiles, usage=usage, label="shell_raster.tile_flags"),
                "tiles": d.create_buffer(size=4 * (1 + tiles), usage=usage, label="shell_raster.tiles"),
            })
        return self._frame[1]

    def trace(self, ctx: RenderContext, camera: Camera, targets: dict, write_frame: bool) -> tuple:
        """Write ``targets`` (``segments``, ``segment_prisms``, ``normal``, ``tangent`` buffers as
        shell_trace binds them) for every certified pixel of the listed tiles; returns ``(pixel
        list buffer, count)`` of the others, for the BVH walk, and the :data:`~.base.TILES`
        resource of the tiles holding any pixel with candidates or a bottom cap (the counts are
        read back: two waits for the device)."""
        import slangpy as spy

        buf = self._buffers(ctx.width, ctx.height)
        cam = camera.shader_params()
        near, far = depth_range(camera, self.root[:3], self.root[3:])
        shared = {"camera": cam, "depth_range": spy.float2(near, far), "depth_shift": DEPTH_SHIFT}
        raster = {**shared, "dilate_px": DILATE_PX, "cap": CANDIDATES, "nodes": self.params["nodes"],
                  "tri_pos": self.params["tri_pos"], "candidate_count": buf["count"], "candidates": buf["list"],
                  "tile_flags": buf["tile_flags"], "tri_copy": self.copies}
        encoder = self.device.create_command_encoder()
        encoder.clear_buffer(buf["count"])
        encoder.clear_buffer(buf["fallback_count"])
        encoder.clear_buffer(buf["tile_flags"])
        encoder.clear_buffer(buf["tiles"])
        view = buf["depth"].create_view({})
        size = {"viewports": [spy.Viewport.from_size(ctx.width, ctx.height)],
                "scissor_rects": [spy.ScissorRect.from_size(ctx.width, ctx.height)]}
        for pipeline, bottom in ((self.bottom, 1), (self.candidates, 0)):
            attachment = {"view": view, "depth_load_op": spy.LoadOp.clear if bottom else spy.LoadOp.load,
                          "depth_store_op": spy.StoreOp.store, "depth_clear_value": 1.0}
            with encoder.begin_render_pass({"color_attachments": [], "depth_stencil_attachment": attachment}) as rp:
                rp.set_render_state(size)
                spy.ShaderCursor(rp.bind_pipeline(pipeline))["raster"] = {**raster, "bottom_only": bottom}
                rp.draw({"vertex_count": 3 * self.triangles})
        self.device.submit_command_buffer(encoder.finish())
        across = list(tile_grid(ctx.width, ctx.height))
        self.list_tiles.dispatch(thread_count=[*across, 1], tiles_across=across, tile_flags=buf["tile_flags"],
                                 tiles=buf["tiles"])
        tiles = Resource(buf["tiles"], LIST_SPEC, ctx.width, ctx.height,
                         count=int(buf["tiles"].to_numpy().view(np.uint32)[0]))
        cull = tile_dispatch(ctx, tiles)
        self.resolve.dispatch(
            thread_count=cull["thread_count"], tiles=cull["tiles"], **shared, **self.params,
            write_frame=int(write_frame), cap=CANDIDATES, candidate_count=buf["count"], candidates=buf["list"],
            bottom_depth=buf["depth"], fallback=buf["fallback"], fallback_count=buf["fallback_count"], **targets)
        self.last_fallback = int(buf["fallback_count"].to_numpy().view(np.uint32)[0])
        return buf["fallback"], self.last_fallback, tiles
