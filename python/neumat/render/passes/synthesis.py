"""The synthesis pass: ACF-guided dual-tiling synthesis of the U features and height at every
pixel's UV (``shaders/acf_synthesis.slang``; numpy reference :mod:`neumat.synthesis`).

Slots (module constants):

==================  ============  ===========================================================
slot                channels      meaning
==================  ============  ===========================================================
``uv`` (in)         4 f32         G-buffer texture coords (u, v, h01, footprint); (u, v) read, and
                                  the footprint (log2 UV units) when :attr:`SynthesisPass.feature_lod`
``mask`` (in)       1 f32         G-buffer coverage: pixels off the material (< 0.5) get zeros
                                  in every output and are not synthesized
``u_features``      C f32         synthesized U-plane features (C = channels of the U plane),
                                  in the plane's own units, ready for the infer pass; with
                                  feature LoD prefiltered by the footprint
                                  (:mod:`neumat.synthesis.prefilter`: trilinear through the
                                  Gaussian mip chain and per-level LUTs; level 0, bit for bit,
                                  where the footprint is at most a U texel)
``synth_height``    1 f32         synthesized height in [0, 1] (0 when the bundle has none), level
                                  0 (the relief hf_trace marches) whatever the footprint
``tile_shifts``     4 i32         (dx_A, dy_A, dx_B, dy_B): whole-texel shifts of both tiles
``relief_slope``    2 f32         (dz/du, dz/dv) of the synthesized relief (UV units), the slope
                                  of the relief frame (:mod:`neumat.material.relief`) for bundles
                                  measured in it (:attr:`SynthesisPass.relief_extent` > 0), else
                                  not written; with feature LoD the slope of the prefiltered
                                  relief (:mod:`neumat.synthesis.relief`, 0 at the last level)
==================  ============  ===========================================================

All derived data (ACF, curved pdf, CDF tables, Gaussianized planes + LUTs) is computed once in
``__init__`` (:class:`neumat.synthesis.Synthesizer`) and uploaded; :meth:`execute` binds and
dispatches one thread per pixel. An infer pass that synthesizes inline instead binds the same
resources (:meth:`SynthesisPass.shader_params`) and calls ``dualTileSample``,
``dualTileTaps`` and ``synthesizeChannel`` from ``acf_synthesis.slang`` per pixel (see its
header). Measured on llvmpipe (2 idle cores), leather at 512², median of 5 frames, runs alternated:
draped cloth 245 ms when every pixel was synthesized, 100 ms with the mask; sphere 249 → 69 ms
(whole frame 542 → 400 ms and 651 → 475 ms).

The relief slope reads 12 texels of the synthesized relief at each of one or two levels per
pixel; synthesizing each there was ~80 % of the pass (23 ms without the slope against ~120 ms).
:meth:`SynthesisPass.bake_relief_levels` (the renderer calls it once per mesh) synthesizes those
texels once over the mesh's UV box per level, and the slope reads them where a pixel's whole 4 × 4
block is baked — the same values, to the bit (tests/test_synthesis_baked_relief.py). Leather on the
draped cloth, 512², llvmpipe, 2 cores, runs alternated with the previous code: synthesis
117–139 → 27–31 ms, frame 506–580 → 404–489 ms.

Feature LoD (:attr:`SynthesisPass.feature_lod`) is switched by the renderer from the infer pass's
:attr:`~neumat.render.passes.infer.InferPass.feature_lod` (one switch): a bundle trained on
box-mip-filtered U features gets prefiltered synthesized features (and relief slope) too.
"""

from __future__ import annotations

import numpy as np

from ...angles import interpolates_normals
from ...material import has_relief_frame
from ...slang_kernels import compute_kernel
from ...synthesis import SynthesisConfig, Synthesizer
from ...synthesis.prefilter import PrefilteredPlane
from .base import MASK, TILES, UV, RenderContext, RenderPass, Resource, SlotSpec, tile_dispatch

U_FEATURES = "u_features"
SYNTH_HEIGHT = "synth_height"
TILE_SHIFTS = "tile_shifts"
RELIEF_SLOPE = "relief_slope"
SHADER = "acf_synthesis_kernels.slang"
ENTRY = "acf_synthesize_points"
GRID_ENTRY = "acf_synthesize_height_grid"
BAKE_ENTRY = "acf_bake_relief_level"
MAX_BAKED_RELIEF_TEXELS = 1 << 24
"""Texel budget of :meth:`SynthesisPass.bake_relief_levels` over all levels (64 MiB of float32):
levels that would pass it are synthesized per pixel instead."""
SLOPE_PAD_TEXELS = 2
"""Texels baked beyond the UV box on every side: a slope at uv reads texels floor(g) - 1 ..
floor(g) + 2 around g = uv · texels per unit - 0.5 (relief_frame.slang)."""


def relief_box(uvs: np.ndarray, res, pad: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Texel box covering ``uvs`` (``[N, 2]``) at ``res`` texels per UV unit (one number, or
    (u, v) for a non-square grid), ``pad`` texels beyond: ``(origin, size)``, integer texel
    coordinates g = uv * res - 0.5 of its first texel centre and its texel counts, both as (u, v)."""
    g = np.asarray(uvs, np.float64).reshape(-1, 2) * np.asarray(res, np.float64) - 0.5
    lo = np.floor(g.min(axis=0)).astype(np.int64) - pad
    hi = np.ceil(g.max(axis=0)).astype(np.int64) + pad
    return (int(lo[0]), int(lo[1])), (int(hi[0] - lo[0] + 1), int(hi[1] - lo[1] + 1))


class SynthesisPass(RenderPass):
    """ACF-guided synthesis of a bundle's U plane (+ height) on ``device``.

    Args:
        device: slangpy device (include path = neumat's shaders).
        synthesizer: the CPU-side data, e.g. ``Synthesizer.from_bundle(bundle, config)``.
        relief_extent: ``h_max - h_min`` (UV units) of the height when the bundle measures its
            directions in the relief frame (the ``relief_slope`` slot is written), else 0.
        relief_normals: the slope's level 0 is that of the interpolated unit texel normals (v4
            bundles, :func:`neumat.angles.interpolates_normals`), else the bilinear slope (v3).
    """

    INPUTS = (UV, MASK)
    OUTPUTS = (U_FEATURES, SYNTH_HEIGHT, TILE_SHIFTS, RELIEF_SLOPE)
    OPTIONAL_INPUTS = (TILES,)

    def __init__(self, device, synthesizer: Synthesizer, relief_extent: float = 0.0,
                 relief_normals: bool = False) -> None:
        import slangpy as spy

        self.device = device
        self.synthesizer = synthesizer
        self.relief_extent = float(np.float32(relief_extent)) if synthesizer.height is not None else 0.0
        self.relief_normals = bool(relief_normals)
        usage = spy.BufferUsage.shader_resource

        def upload(a: np.ndarray, name: str):
            data = np.ascontiguousarray(a, dtype=np.float32).reshape(-1)
            return device.create_buffer(usage=usage, data=data, label=f"synthesis.{name}")

        def plane(p: PrefilteredPlane, name: str) -> dict:
            rows, cols, channels = p.chain[0].shape
            chain = np.concatenate([level.ravel() for level in p.chain])
            return {"gaussian": upload(chain, f"{name}.gaussian"), "lut": upload(p.luts, f"{name}.lut"),
                    "rows": rows, "cols": cols, "channels": channels, "levels": p.levels}

        tables = synthesizer.tables
        rows, cols = tables.shape
        self._tables = {"marginalCdf": upload(tables.marginal, "marginal"),
                        "conditionalCdf": upload(tables.conditional, "conditional"),
                        "rows": rows, "cols": cols}
        self._features = plane(synthesizer.u_prefiltered, "u")
        self.has_height = synthesizer.height is not None
        self._height = plane(synthesizer.height_prefiltered, "height") if self.has_height else self._features
        self.channels = synthesizer.u_plane.shape[2]
        self.kernel = compute_kernel(device, SHADER, ENTRY)
        self._baked = {"heights": upload(np.zeros(1), "baked.none"),
                       "boxes": device.create_buffer(usage=usage, data=np.zeros(4, np.int32), label="synthesis.boxes"),
                       "offsets": device.create_buffer(usage=usage, data=np.zeros(1, np.uint32),
                                                       label="synthesis.offsets"),
                       "levels": 0}
        self.feature_lod = False
        """Prefilter ``u_features`` and ``relief_slope`` by the ``uv`` slot's footprint (module
        docstring); the renderer sets it from the infer pass's ``feature_lod`` every frame."""

    @classmethod
    def from_bundle(cls, device, bundle, config: SynthesisConfig | None = None) -> SynthesisPass:
        """Build the synthesis data of ``bundle`` (:meth:`Synthesizer.from_bundle`) and upload it."""
        extent = bundle.height_range[1] - bundle.height_range[0] if has_relief_frame(bundle) else 0.0
        return cls(device, Synthesizer.from_bundle(bundle, config), extent, interpolates_normals(bundle.angle_param))

    def relief_covariances(self) -> np.ndarray:
        """float32 ``[levels, 3]`` slope covariance a texel of each level of the synthesized
        relief hides (:meth:`Synthesizer.relief_covariances`), for the infer pass's visible
        relief frame. ValueError without a relief."""
        if not self.relief_extent:
            raise ValueError("the synthesis pass writes no relief slope (no relief-frame height)")
        return self.synthesizer.relief_covariances(self.relief_extent, self.relief_normals)

    def shader_params(self) -> dict:
        """Uniforms of ``acf_synthesize_points`` other than the per-frame buffers, named as in
        the shader: ``tables`` (AcfOffsetTables), ``features`` / ``height`` (GaussianPlane),
        ``invTileSize``, ``seed``, ``hasHeight``. An inline caller binds the same values."""
        config = self.synthesizer.config
        return {"tables": self._tables, "features": self._features, "height": self._height,
                "invTileSize": float(np.float32(1.0 / config.tile_size)), "seed": int(config.seed),
                "hasHeight": int(self.has_height)}

    def height_shader_params(self) -> dict:
        """The ``SynthesizedHeight`` uniform of ``acf_synthesis.slang`` (offset tables, height
        plane, ``invTileSize``, ``seed``): what synthesizes the height alone at any uv.

        Raises:
            ValueError: the bundle has no height plane.
        """
        if not self.has_height:
            raise ValueError("the synthesis pass has no height plane to synthesize the relief from")
        params = self.shader_params()
        return {key: params[key] for key in ("tables", "height", "invTileSize", "seed")}

    def synthesize_height_grid(self, origin, size, texels_per_unit: int) -> np.ndarray:
        """The synthesized height at the texel centres of a grid: float32 ``[size[1], size[0]]``
        (row = v), entry ``[j, i]`` at uv = ``(origin + (i, j) + 0.5) / texels_per_unit``
        (``origin``: integer texel coordinates of entry [0, 0]; as ``acf_synthesize_points``
        would give at those uv). Dispatched on the device; one float per texel is read back.
        """
        import slangpy as spy

        nx, ny = (int(n) for n in size)
        if nx < 1 or ny < 1:
            raise ValueError(f"grid size must be positive, got {size}")
        out = self.device.create_buffer(size=4 * nx * ny, label="synthesis.height_grid",
                                        usage=spy.BufferUsage.unordered_access | spy.BufferUsage.shader_resource)
        compute_kernel(self.device, SHADER, GRID_ENTRY).dispatch(
            thread_count=[nx, ny, 1], synth=self.height_shader_params(),
            origin=spy.int2(int(origin[0]), int(origin[1])), size=spy.uint2(nx, ny),
            texelsPerUnit=float(texels_per_unit), outHeight=out)
        return out.to_numpy().view(np.float32).reshape(ny, nx)

    def bake_relief_levels(self, uvs: np.ndarray, max_texels: int = MAX_BAKED_RELIEF_TEXELS) -> list[tuple]:
        """Synthesize once the relief texels the ``relief_slope`` slot reads on a mesh whose
        texture coordinates are ``uvs`` (``[N, 2]``, e.g. ``mesh.uvs[mesh.faces]``): per level
        of the height plane, a box of that level's texel grid covering the UV box plus
        :data:`SLOPE_PAD_TEXELS` (:func:`relief_box`), within ``max_texels`` in all (finest levels first; a level
        that does not fit is synthesized per pixel as before). The slope then reads these
        values instead of synthesizing 12 texels per level per pixel — the same values, to the
        bit. Without a relief slope nothing is baked. Returns the boxes, ``(x0, y0, width,
        height)`` per level (texel coordinates; width 0: not baked)."""
        import slangpy as spy

        if not self.relief_extent:
            return []
        g = np.asarray(uvs, np.float64).reshape(-1, 2)
        if g.size == 0 or not np.isfinite(g).all():
            raise ValueError("bake_relief_levels needs finite texture coordinates")
        rows, cols, levels = self._height["rows"], self._height["cols"], self._height["levels"]
        boxes, offsets, total = [], [], 0
        for level in range(levels):
            (x0, y0), (w, h) = relief_box(g, (cols >> level, rows >> level), SLOPE_PAD_TEXELS)
            fits = total + w * h <= max_texels
            boxes.append((x0, y0, w if fits else 0, h if fits else 0))
            offsets.append(total)
            total += w * h if fits else 0
        usage = spy.BufferUsage.unordered_access | spy.BufferUsage.shader_resource
        heights = self.device.create_buffer(size=4 * max(total, 1), usage=usage, label="synthesis.baked_relief")
        bake = compute_kernel(self.device, SHADER, BAKE_ENTRY)
        for level, (box, offset) in enumerate(zip(boxes, offsets)):
            if box[2]:
                bake.dispatch(thread_count=[box[2], box[3], 1], synth=self.height_shader_params(), level=level,
                              box=spy.int4(*box), offset=offset, outHeight=heights)
        read = spy.BufferUsage.shader_resource
        self._baked = {"heights": heights,
                       "boxes": self.device.create_buffer(usage=read, data=np.asarray(boxes, np.int32).reshape(-1),
                                                          label="synthesis.boxes"),
                       "offsets": self.device.create_buffer(usage=read, data=np.asarray(offsets, np.uint32),
                                                            label="synthesis.offsets"),
                       "levels": levels}
        return boxes

    def reflect(self) -> dict[str, SlotSpec]:
        return {UV: SlotSpec("float32", 4), MASK: SlotSpec("float32", 1), U_FEATURES: SlotSpec("float32", self.channels),
                SYNTH_HEIGHT: SlotSpec("float32", 1), TILE_SHIFTS: SlotSpec("int32", 4),
                RELIEF_SLOPE: SlotSpec("float32", 2)}

    def execute(self, ctx: RenderContext, inputs: dict[str, Resource]) -> dict[str, Resource]:
        self.check_inputs(inputs)
        out = self.allocate_outputs(ctx)
        cull = tile_dispatch(ctx, inputs.get(TILES))  # one flat thread per pixel of the frame or the tiles
        self.kernel.dispatch(
            thread_count=[int(np.prod(cull["thread_count"])), 1, 1], tiles=cull["tiles"], **self.shader_params(),
            uvs=inputs[UV].buffer, mask=inputs[MASK].buffer,
            outFeatures=out[U_FEATURES].buffer, outHeight=out[SYNTH_HEIGHT].buffer,
            outShifts=out[TILE_SHIFTS].buffer, outSlope=out[RELIEF_SLOPE].buffer,
            reliefExtent=self.relief_extent, reliefNormals=int(self.relief_normals), bakedRelief=self._baked,
            useLod=int(self.feature_lod), frameWidth=ctx.width, frameHeight=ctx.height,
        )
        return out

    def synthesize(self, uv: np.ndarray, footprint: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Host convenience (tests, feature AOVs): synthesize at float ``[H, W, 2]`` UVs, with
        pixel footprints ``[H, W]`` (log2 UV units; read when :attr:`feature_lod` is on) or none
        (-inf: level 0).

        Returns ``{slot: [H, W, channels]}`` for every output slot (numpy, float32 / int32).
        """
        import slangpy as spy

        uv = np.asarray(uv, dtype=np.float32)
        if uv.ndim != 3 or uv.shape[2] != 2:
            raise ValueError(f"uv must be [H, W, 2], got {uv.shape}")
        h, w = uv.shape[:2]
        rows = np.zeros((h, w, 4), np.float32)
        rows[..., :2] = uv
        rows[..., 3] = -np.inf if footprint is None else footprint
        usage = spy.BufferUsage.shader_resource
        buffer = self.device.create_buffer(usage=usage, data=rows.reshape(-1), label="synthesis.uv")
        mask = self.device.create_buffer(usage=usage, data=np.ones(h * w, np.float32), label="synthesis.mask")
        ctx = RenderContext(self.device, w, h)
        out = self.execute(ctx, {UV: Resource(buffer, SlotSpec("float32", 4), w, h),
                                 MASK: Resource(mask, SlotSpec("float32", 1), w, h)})
        return {slot: res.numpy() for slot, res in out.items()}
