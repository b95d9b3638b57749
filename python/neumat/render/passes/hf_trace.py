"""``hf_trace`` pass: refine the shell segment to the displaced surface (``shaders/hf_trace.slang``;
algorithm in that file's header, seed 003 section 4.2.2).

Inputs are the ``shell`` pass's segment slots (the ray's intervals inside successive prisms);
the first segment whose march meets the relief gives the hit. Outputs are the g-buffer
(:data:`~neumat.render.passes.base.GBUFFER`): refined ``uv = (u, v, h01, footprint)``, the shading
frame ``normal`` / ``tangent`` (the base face's vertex frame interpolated at the hit: the
frame the BTF's ωi, ωo are measured in — the relief's own shading, masking and shadowing are
in the BTF data, so tilting the frame by the relief would count it twice), ``position = (p,
t)`` and ``mask`` (0 where the ray leaves the shell without meeting the relief); and
``relief_normal`` (4 f32, (n.xyz, 0), world): the displaced surface's normal, the shading
frame tilted by the height field's normal (per-texel central-difference normals, bilinearly
interpolated and renormalized, exactly as :meth:`neumat.material.heightfield.HeightField.normal_at`,
with the slope taken through the hit face's anisotropic UV metric: ∇_xy z = thickness · R ·
J⁻ᵀ ∇_g H, J the tangent-plane Jacobian of dP/du, dP/dv in the shading frame). The surface
slots (:data:`~neumat.render.passes.base.SURFACE`) carry the hit face's dP/du, dP/dv, second
fundamental form and the relief thickness interpolated at the hit.

LoD: a ray cone, ``texels = t_entry · camera.spread_angle / σ_max · R`` with σ_max the larger
singular value of the entry face's [dP/du dP/dv] (the UV direction it stretches most; no
foreshortening: conservative), ``lod = log2(texels) + lod_bias``; the coarse march stops
descending at ``floor(lod)``, and the fine steps (8 per texel crossed, at most 32) then span a
2^lod-texel cell. The fine samples always read the full-resolution bilinear height (so the surface hit never floats above the
true relief).

Continuation: the shell pass keeps :data:`~neumat.render.passes.shell.MAX_SEGMENTS` segments
per pixel. A pixel whose segments all miss while that list was full (a long grazing path, or a
ray across the thin prisms of a high-valence vertex such as a UV sphere's pole) is re-traced:
given the :class:`ShellPass`, :meth:`HfTracePass.execute` runs up to ``max_rounds`` rounds of
(shell continuation, hf_trace) on the still-open pixels only: each round's kernel appends them to
a pixel list whose length the host reads back, and the next round dispatches over that list
(``PixelTask`` in ``render_types.slang``); no round runs once the list is empty. The read-back is
one host wait per frame (more when pixels stay open): free on a software rasterizer, where it
saves two full-frame dispatches per round; on a GPU an indirect dispatch would avoid the wait
(not built). The segment slots of a re-traced pixel then hold its last round's segments.

Synthesis: with :attr:`HfTracePass.synthesis` set (the renderer sets it when synthesis is on),
the marched relief is the ACF-synthesized height of that :class:`~.synthesis.SynthesisPass` at
each uv — the same tile shifts and blend as the synthesized U features, so geometry and
features agree. Setting it precomputes ("bakes") that height once (per pass, mesh and synthesis
pass; never per frame) at the texel centres of a box of texels: the mesh's UV bounding box at
R texels per UV unit, padded by :data:`BAKE_PAD_TEXELS` plus the horizontal reach of a 45°
shadow ray through the whole shell; the shaders sample it bilinearly (clamped outside the box:
only shadow rays leaving the mesh's UV range go there) and skip cells with its own max mip
chain, exactly as the tiled map, so tracing it costs the same. The baked heights are bilinear
interpolations of exact samples at the texel centres (:attr:`HfTracePass.relief` ``"baked"``).
A box over ``max_baked_texels`` texels (default :data:`MAX_BAKED_TEXELS`: 64 MiB of f32 heights, a third more for the mip chain) falls
back to evaluating the synthesis per sample with the global maximum as every cell's bound
(``"exact"``: several times slower, the coarse march skips nothing). Texel-centre heights for
the normal are the relief's heights there.
"""

from __future__ import annotations

import numpy as np

from ...slang_kernels import compute_kernel
from ..prism import curtain_corners, prism_corners, subsegments
from ..scene import HeightSpec, Scene
from .base import GBUFFER, GBUFFER_SPECS, MASK, SURFACE, SURFACE_SPECS, TILES, RenderContext, RenderPass, Resource, \
    SlotSpec, clear_buffers, pixel_threads, tile_dispatch
from .shell import SEGMENT_PRISMS, SEGMENT_SPECS, SEGMENTS, ShellPass, corner_thickness, face_metric_rows
from .synthesis import relief_box

SHADER = "hf_trace.slang"
ENTRY = "hf_trace"
RELIEF_NORMAL = "relief_normal"
MAX_BAKED_TEXELS = 4096 * 4096
"""Default texel budget of the baked synthesized relief (module docstring); larger boxes use the
exact per-sample synthesis."""
BAKE_PAD_TEXELS = 4
"""Texels around the mesh's UV box beyond the shadow reach: bilinear taps and the normal's
central differences of hits on the box's edge read up to 2 texels out."""
MODES = {"tiled": 0, "baked": 1, "exact": 2}
"""``HeightField.mode`` of ``hf_trace.slang`` per :attr:`HfTracePass.relief`."""


def max_mip_chain(height: np.ndarray, wrap: bool = True) -> list[np.ndarray]:
    """Max-filtered chain over the bilinear cells of a height map ``[rows, cols]``.

    Level 0 ``[rows, cols]``: cell (row j, col i) = max of texels (j..j+1, i..i+1), wrapping
    (``wrap``: a periodic map) or clamped to the last row/column — an upper bound of the
    bilinear patch between those texel centres. Level L: 2×2 max of level L-1 (odd sizes: the
    last row/column pairs with itself), down to 1×1.
    """
    h = np.asarray(height, np.float32)
    if wrap:
        right, down = np.roll(h, -1, 1), np.roll(h, -1, 0)
        diagonal = np.roll(right, -1, 0)
    else:
        padded = np.pad(h, ((0, 1), (0, 1)), mode="edge")
        right, down, diagonal = padded[:-1, 1:], padded[1:, :-1], padded[1:, 1:]
    level = np.maximum(np.maximum(h, right), np.maximum(down, diagonal))
    chain = [level]
    while level.shape[0] > 1 or level.shape[1] > 1:
        r, c = level.shape
        padded = np.pad(level, ((0, r % 2), (0, c % 2)), mode="edge")
        level = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2).max(axis=(1, 3))
        chain.append(level)
    return chain


class HfTracePass(RenderPass):
    """Height-field tracing of ``scene.height`` inside the shell segments.

    Args:
        device: slangpy device.
        scene: the scene (its ``height`` must be set: the map is square, R × R).
        lod_bias: added to the ray-cone LoD (negative = sharper, more steps).
        shell: the shell pass feeding this one, for continuation rounds (None: one round).
        max_rounds: rounds of (shell continuation, hf_trace), >= 1.
        max_baked_texels: texel budget of the baked synthesized relief (module docstring).
    """

    INPUTS = (SEGMENTS, SEGMENT_PRISMS)
    OUTPUTS = GBUFFER + (RELIEF_NORMAL,) + SURFACE
    OPTIONAL_INPUTS = (TILES,)

    def __init__(self, device, scene: Scene, lod_bias: int = 0, shell: ShellPass | None = None,
                 max_rounds: int = 4, max_baked_texels: int = MAX_BAKED_TEXELS) -> None:
        import slangpy as spy

        if scene.height is None:
            raise ValueError("hf_trace needs a scene with a height field (Scene.height)")
        spec: HeightSpec = scene.height
        if spec.height.ndim != 2 or spec.height.shape[0] != spec.height.shape[1]:
            raise ValueError(f"hf_trace needs a square height map, got {spec.height.shape}")
        if not spec.d_hi > spec.d_lo:
            raise ValueError(f"height range must have d_hi > d_lo, got ({spec.d_lo}, {spec.d_hi})")
        if max_rounds < 1:
            raise ValueError(f"max_rounds must be >= 1, got {max_rounds}")
        self.device, self.scene, self.lod_bias = device, scene, int(lod_bias)
        self.shell, self.max_rounds = shell, int(max_rounds)
        self.max_baked_texels = int(max_baked_texels)
        res = int(spec.height.shape[0])
        self._tiled = self._height_buffers(spec.height, wrap=True, res=res, origin=(0, 0))
        mesh = scene.mesh
        usage = spy.BufferUsage.shader_resource
        thickness = corner_thickness(scene)
        self.height_span = float(thickness.max())
        """Largest relief thickness over the mesh, scene units per unit of h01 (s·(d_hi - d_lo))."""

        def per_corner(a, name, w=None):
            """Buffer of 3 rows per base face: the corners' values ``a`` [F, 3, k <= 4], w in .w."""
            rows = np.zeros(mesh.faces.shape + (4,), np.float32)
            rows[..., : a.shape[2]] = a
            if w is not None:
                rows[..., 3] = w
            return device.create_buffer(usage=usage, data=rows.reshape(-1, 4), label=f"hf_trace.{name}")

        f = mesh.faces
        bottom, extrusion = prism_corners(mesh, spec)
        # straight pieces per segment; 0 marks a curtain (prism.slang: its UV segment is marched)
        pieces = np.where(curtain_corners(bottom.astype(np.float32)) >= 0, 0,
                          subsegments(extrusion.astype(np.float32), mesh.positions[f]))
        self._faces = {"face_uv": per_corner(mesh.uvs[f], "face_uv"),
                       "face_bottom": per_corner(bottom, "face_bottom", pieces[:, None]),
                       "face_normal": per_corner(mesh.normals[f], "face_normal", thickness),
                       "face_tangent": per_corner(mesh.tangents[f], "face_tangent"),
                       "face_metric": device.create_buffer(usage=usage, data=face_metric_rows(mesh, thickness),
                                                           label="hf_trace.face_metric")}
        self.kernel = compute_kernel(device, SHADER, ENTRY)
        dummy = device.create_buffer(usage=usage, size=16, label="hf_trace.no_synthesis")
        unused_plane = {"gaussian": dummy, "lut": dummy, "rows": 1, "cols": 1, "channels": 1}
        self._no_synthesis = {"tables": {"marginalCdf": dummy, "conditionalCdf": dummy, "rows": 1, "cols": 1},
                              "height": unused_plane, "invTileSize": 1.0, "seed": 0}
        self._synthesis = None
        self._synthesized: dict | None = None

    def _height_buffers(self, height: np.ndarray, wrap: bool, res: int, origin: tuple[int, int]) -> dict:
        """``HeightField`` fields of a texel map ``[rows, cols]`` (row = v) whose texel (0, 0) is
        at integer g ``origin``, with its max mip chain (wrapping or clamped)."""
        import slangpy as spy

        usage = spy.BufferUsage.shader_resource
        chain = max_mip_chain(height, wrap=wrap)
        return {"heights": self.device.create_buffer(usage=usage, data=np.ascontiguousarray(height, np.float32).ravel()),
                "max_mip": self.device.create_buffer(usage=usage, data=np.concatenate([m.ravel() for m in chain])),
                "res": res, "size": spy.int2(height.shape[1], height.shape[0]), "origin": spy.int2(*origin),
                "levels": len(chain)}

    @property
    def synthesis(self):
        """A :class:`~.synthesis.SynthesisPass` whose synthesized height is the relief (module
        docstring), or None: the tiled height map. Setting a new pass bakes its relief (or picks
        the exact fallback); setting the same one again reuses it."""
        return self._synthesis

    @synthesis.setter
    def synthesis(self, synthesis) -> None:
        if synthesis is not None and synthesis is not self._synthesis:
            self._synthesized = self._synthesized_relief(synthesis)
        self._synthesis = synthesis

    @property
    def relief(self) -> str:
        """What the shaders march: ``"tiled"``, ``"baked"`` or ``"exact"`` (module docstring)."""
        return "tiled" if self._synthesis is None else self._synthesized["relief"]

    def _synthesized_relief(self, synthesis) -> dict:
        """``HeightField`` of ``synthesis``'s height on this mesh: baked within the texel budget,
        else the exact per-sample evaluation."""
        synth = synthesis.height_shader_params()  # raises if there is no height plane
        res = self._tiled["res"]
        # 45° shadow ray through the thickest shell, at the mesh-wide scale (rays crossing
        # strongly stretched faces, e.g. near a UV sphere's poles, may reach the clamped border)
        reach = int(np.ceil(res * self.height_span / self.scene.mesh.uv_to_world()))
        origin, size = relief_box(self.scene.mesh.uvs[self.scene.mesh.faces], res, BAKE_PAD_TEXELS + reach)
        if size[0] * size[1] > self.max_baked_texels:
            return {**self._tiled, "mode": MODES["exact"], "synth": synth, "relief": "exact"}
        heights = synthesis.synthesize_height_grid(origin, size, res)
        baked = self._height_buffers(heights, wrap=False, res=res, origin=origin)
        return {**baked, "mode": MODES["baked"], "synth": self._no_synthesis, "relief": "baked"}

    def shader_height_field(self) -> dict:
        """The ``HeightField`` uniform of ``hf_trace.slang`` (height texels, max mip chain, R,
        size, origin, levels, mode and the synthesis for the exact fallback): passes that march
        the same relief (shadow) bind it as is."""
        if self._synthesis is None:
            return {**self._tiled, "mode": MODES["tiled"], "synth": self._no_synthesis}
        return {k: v for k, v in self._synthesized.items() if k != "relief"}

    def face_params(self) -> dict:
        """The ``PrismFaces`` uniform of ``shadow_prisms.slang``: ``face_uv``, ``face_bottom``
        (prism bottom corners, curved pieces: 0 for a curtain) and ``face_normal`` (n, relief
        thickness), three rows per base face."""
        return {k: self._faces[k] for k in ("face_uv", "face_bottom", "face_normal")}

    def reflect(self) -> dict[str, SlotSpec]:
        return {**SEGMENT_SPECS, **GBUFFER_SPECS, RELIEF_NORMAL: SlotSpec("float32", 4), **SURFACE_SPECS}

    def execute(self, ctx: RenderContext, inputs: dict[str, Resource]) -> dict[str, Resource]:
        self.check_inputs(inputs)
        out = self.allocate_outputs(ctx)
        pixels = ctx.width * ctx.height
        resume_t = self.frame_buffer(ctx, "resume_t", 4 * pixels)
        # pixels left open by a round (appended by the kernel), for the next round: two lists
        # used in turn, so a round reads one while it appends to the other
        lists = [self.frame_buffer(ctx, f"open_list{i}", 4 * pixels) for i in range(2)]
        count = self.frame_buffer(ctx, "open_count", 4)
        zero = np.zeros(1, np.uint32)
        rounds = self.max_rounds if self.shell is not None else 1
        tiles = inputs.get(TILES)
        if tiles is not None:  # culled: the mask stays 0 off the tiles
            clear_buffers(ctx, out[MASK].buffer)
        n_open = -1  # round 0: the whole frame, or its tiles
        for r in range(rounds):
            listed = lists[(r + 1) % 2]
            if r > 0:
                self.shell.resume(ctx, inputs, resume_t, listed, n_open)
            count.copy_from_numpy(zero)
            self._dispatch(ctx, inputs, out, resume_t, listed, n_open, lists[r % 2], count, tiles)
            if r + 1 < rounds:
                n_open = int(count.to_numpy().view(np.uint32)[0])  # waits for this round
                if n_open == 0:
                    break
        return out

    def _dispatch(self, ctx, inputs, out, resume_t, pixel_list, list_count: int, open_list, open_count,
                  tiles) -> None:
        cull = tile_dispatch(ctx, tiles)
        self.kernel.dispatch(
            thread_count=pixel_threads(ctx, list_count) if list_count >= 0 else cull["thread_count"],
            tiles=cull["tiles"], camera=self.scene.camera.shader_params(),
            hf=self.shader_height_field(), lod_bias=self.lod_bias, resume_t=resume_t,
            pixel_list=pixel_list, list_count=list_count, open_list=open_list, open_count=open_count,
            **self._faces, segments=inputs[SEGMENTS].buffer,
            segment_prisms=inputs[SEGMENT_PRISMS].buffer,
            **{slot: out[slot].buffer for slot in self.OUTPUTS},
        )
