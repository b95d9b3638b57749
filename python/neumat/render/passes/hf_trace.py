"""``hf_trace`` pass: refine the shell segment to the displaced surface (``shaders/hf_trace.slang``;
algorithm in that file's header, seed 003 section 4.2.2).

Inputs are the ``shell`` pass's segment slots (the ray's intervals inside successive prisms);
the first segment whose march meets the relief gives the hit. Outputs are the g-buffer
(:data:`~neumat.render.passes.base.GBUFFER`): refined ``uv = (u, v, h01, lod)``, the shading
frame ``normal`` / ``tangent`` (the base face's vertex frame interpolated at the hit: the
frame the BTF's ωi, ωo are measured in — the relief's own shading, masking and shadowing are
in the BTF data, so tilting the frame by the relief would count it twice), ``position = (p,
t)`` and ``mask`` (0 where the ray leaves the shell without meeting the relief); and
``relief_normal`` (4 f32, (n.xyz, 0), world): the displaced surface's normal, the shading
frame tilted by the height field's normal (per-texel central-difference normals, bilinearly
interpolated and renormalized, exactly as :meth:`neumat.data.heightfield.HeightField.normal_at`).

LoD: a ray cone, ``texels = t_entry · camera.spread_angle / uv_to_world · R`` (isotropic, no
foreshortening: conservative), ``lod = log2(texels) + lod_bias``; the coarse march stops
descending at ``floor(lod)``, and the fine steps (8 per texel crossed, at most 32) then span a
2^lod-texel cell. The fine samples always read the full-resolution bilinear height (so the surface hit never floats above the
true relief).

Continuation: the shell pass keeps :data:`~neumat.render.passes.shell.MAX_SEGMENTS` segments
per pixel. A pixel whose segments all miss while that list was full (a long grazing path, or a
ray across the thin prisms of a high-valence vertex such as a UV sphere's pole) is re-traced:
given the :class:`ShellPass`, :meth:`HfTracePass.execute` runs up to ``max_rounds`` rounds of
(shell continuation, hf_trace on the still-open pixels). The segment slots then hold the last
round's segments.

Synthesis: with :attr:`HfTracePass.synthesis` set (the renderer sets it when synthesis is on),
the marched relief is the ACF-synthesized height of that :class:`~.synthesis.SynthesisPass` at
each uv — the same tile shifts and blend as the synthesized U features, so geometry and
features agree — and the coarse march bounds every cell by the map's global maximum (the
synthesis never exceeds the exemplar's histogram range). Texel-centre heights for the normal
are the synthesized heights there.
"""

from __future__ import annotations

import numpy as np

from ..scene import HeightSpec, Scene
from .base import GBUFFER, GBUFFER_SPECS, RenderContext, RenderPass, Resource, SlotSpec, \
    compute_kernel
from .shell import SEGMENT_PRISMS, SEGMENT_SPECS, SEGMENTS, ShellPass

SHADER = "hf_trace.slang"
ENTRY = "hf_trace"
RELIEF_NORMAL = "relief_normal"


def max_mip_chain(height: np.ndarray) -> list[np.ndarray]:
    """Max-filtered chain over the bilinear cells of a periodic height map.

    Level 0 ``[R, R]``: cell (row j, col i) = max of texels (j..j+1, i..i+1) with wrap — an
    upper bound of the bilinear patch between those texel centres. Level L: 2×2 max of level
    L-1 (odd sizes: the last row/column pairs with itself), down to 1×1.
    """
    h = np.asarray(height, np.float32)
    level = np.maximum.reduce([h, np.roll(h, -1, 1), np.roll(h, -1, 0), np.roll(np.roll(h, -1, 0), -1, 1)])
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
    """

    INPUTS = (SEGMENTS, SEGMENT_PRISMS)
    OUTPUTS = GBUFFER + (RELIEF_NORMAL,)

    def __init__(self, device, scene: Scene, lod_bias: int = 0, shell: ShellPass | None = None,
                 max_rounds: int = 4) -> None:
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
        self.chain = max_mip_chain(spec.height)
        usage = spy.BufferUsage.shader_resource
        self._hf = {
            "heights": device.create_buffer(usage=usage, data=np.ascontiguousarray(spec.height, np.float32).ravel()),
            "max_mip": device.create_buffer(usage=usage, data=np.concatenate([m.ravel() for m in self.chain])),
            "res": int(spec.height.shape[0]),
            "levels": len(self.chain),
        }
        self.uv_to_world = scene.mesh.uv_to_world()
        mesh = scene.mesh

        def per_corner(a, name):
            rows = np.zeros(mesh.faces.shape + (4,), np.float32)
            rows[..., : a.shape[1]] = a[mesh.faces]
            return device.create_buffer(usage=usage, data=rows.reshape(-1, 4), label=f"hf_trace.{name}")

        self._faces = {"face_uv": per_corner(mesh.uvs, "face_uv"),
                       "face_normal": per_corner(mesh.normals, "face_normal"),
                       "face_tangent": per_corner(mesh.tangents, "face_tangent")}
        self.kernel = compute_kernel(device, SHADER, ENTRY)
        self.synthesis = None
        """A :class:`~.synthesis.SynthesisPass` whose synthesized height is the relief (module
        docstring), or None: the tiled height map."""
        dummy = device.create_buffer(usage=usage, size=16, label="hf_trace.no_synthesis")
        unused_plane = {"gaussian": dummy, "lut": dummy, "rows": 1, "cols": 1, "channels": 1}
        self._no_synthesis = {"tables": {"marginalCdf": dummy, "conditionalCdf": dummy, "rows": 1, "cols": 1},
                              "height": unused_plane, "invTileSize": 1.0, "seed": 0}

    def shader_height_field(self) -> dict:
        """The ``HeightField`` uniform of ``hf_trace.slang`` (height texels, max mip chain, R,
        levels, and the synthesis of the height when :attr:`synthesis` is set): passes that march
        the same relief (shadow) bind it as is."""
        if self.synthesis is None:
            return {**self._hf, "synthesized": 0, "synth": self._no_synthesis}
        if not self.synthesis.has_height:
            raise ValueError("the synthesis pass has no height plane to synthesize the relief from")
        params = self.synthesis.shader_params()
        synth = {"tables": params["tables"], "height": params["height"], "invTileSize": params["invTileSize"],
                 "seed": params["seed"]}
        return {**self._hf, "synthesized": 1, "synth": synth}

    @property
    def height_span(self) -> float:
        """Scene units per unit of h01 (``d_hi - d_lo``)."""
        return float(self.scene.height.d_hi - self.scene.height.d_lo)

    def reflect(self) -> dict[str, SlotSpec]:
        return {**SEGMENT_SPECS, **GBUFFER_SPECS, RELIEF_NORMAL: SlotSpec("float32", 4)}

    def execute(self, ctx: RenderContext, inputs: dict[str, Resource]) -> dict[str, Resource]:
        import slangpy as spy

        self.check_inputs(inputs)
        out = self.allocate_outputs(ctx)
        resume_t = ctx.device.create_buffer(
            size=4 * ctx.width * ctx.height, label="hf_trace.resume_t",
            usage=spy.BufferUsage.unordered_access | spy.BufferUsage.shader_resource)
        rounds = self.max_rounds if self.shell is not None else 1
        for r in range(rounds):
            if r > 0:
                self.shell.resume(ctx, inputs, resume_t)
            self._dispatch(ctx, inputs, out, resume_t, resuming=r > 0)
        return out

    def _dispatch(self, ctx, inputs, out, resume_t, resuming: bool) -> None:
        self.kernel.dispatch(
            thread_count=[ctx.width, ctx.height, 1], camera=self.scene.camera.shader_params(),
            hf=self.shader_height_field(), uv_to_world=float(self.uv_to_world),
            height_span=self.height_span, lod_bias=self.lod_bias,
            resuming=int(resuming), resume_t=resume_t,
            **self._faces, segments=inputs[SEGMENTS].buffer,
            segment_prisms=inputs[SEGMENT_PRISMS].buffer,
            **{slot: out[slot].buffer for slot in self.OUTPUTS},
        )
