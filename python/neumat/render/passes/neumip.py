"""``neumip`` pass: evaluate a NeuMIP neural material at every visible pixel
(``shaders/neumip.slang``; contract and numpy reference :mod:`neumat.material.neumip`,
:func:`neumat.material.neumip.render_neumip_int8`).

Per pixel with ``mask`` = 1: the local shading frame, ωo (towards the camera eye) and, per
light, ωi and the irradiance E exactly as the infer pass computes them (:mod:`.infer`; frame
+z = ``normal``, +x = ``tangent`` re-orthogonalized, +y = ``w · n × t``), then::

    o  = M_off(T_off[uv] || enc(ωo))                  # INT8 (or FP32) MLP, 2 outputs in [0, 1]
    Δu = (2 o - 1) · max_offset                       # UV units, once per pixel
    f  = M_rgb(T_rgb[uv + Δu] || enc(ωi) || enc(ωo))  # 3 outputs in [0, 1], once per light

inputs concatenated in ``bundle.inputs[net]`` order, ``enc(ω) = (ω.x, ω.y)``, textures looked up
bilinearly with wrap as :func:`neumat.material.bilinear_lookup_np`. ``uv`` is the g-buffer's (u, v):
for NeuMIP the renderer never traces a height field, so uv is where the view ray meets the
mesh (the material's top), the "reference" space NeuMIP learns its offsets in. The FP32 path
(``fp32=True``) runs both networks on the dequantized weights ``W_l · sw_l`` (ReLU, output
clamped to [0, 1]), like the infer pass.

Slots (module constants; ``btf``, ``irradiance`` and ``shaded`` mean exactly what they mean
for :class:`~.infer.InferPass`, so :class:`~.compose.ComposePass` composes either):

===================  =========  ==============================================================
slot                 channels   meaning
===================  =========  ==============================================================
g-buffer (in)        see base   ``uv``, ``normal``, ``tangent``, ``position``, ``mask``
``btf``              4 f32      (f · value_scale · lit, lit), linear Rec.709, cosine included;
                                lit = 1 if ωi.z > 0; zeros off the mask
``irradiance``       4 f32      (E.rgb, 0): the primary light's irradiance at normal incidence
``shaded``           4 f32      (Σ_i btf_i.rgb · E_i.rgb, 1) over :attr:`NeuMipPass.lights`; zeros
                                off the mask (no relief shadows: NeuMIP has no height field)
``offset``           2 f32      debug only: Δu (UV units), zeros off the mask
``offset_features``  n_0 f32    debug only: the offset network's input
``features``         n_0 f32    debug only: the rgb network's input (texture at uv + Δu), light 0
``directions``       8 f32      debug only: (ωi.xyz, 0, ωo.xyz, 0) of light 0, local frame
===================  =========  ==============================================================

Texture synthesis does not apply: the synthesis pass synthesizes one triple-plane U plane,
while NeuMIP reads two textures at two different coordinates (uv and uv + Δu), so the renderer
runs NeuMIP on the tiled textures (see :mod:`neumat.render.renderer`).
"""

from __future__ import annotations

import numpy as np

from ...backends.slang import UNROLL_DOTS, int8_weight_buffers, mlp_kernel
from ...bundle import NEUMIP, Bundle
from ...material import EvalError, bundle_value_scale
from ...material.kinds import NEUMIP_KIND
from ...material.neumip import DIRECTION_WIDTH, bundle_max_offset, check_neumip
from ..camera import Camera
from ..lights import DirectionalLight, PointLight
from .base import GBUFFER_SPECS, MASK, NORMAL, POSITION, TANGENT, UV, RenderContext, RenderPass, Resource, SlotSpec
from .infer import BTF, DIRECTIONS, FEATURES, IRRADIANCE, SHADED, float_weight_buffers
from .infer_native import AUTO, resolve_backend
from .shadow import pack_lights

OFFSET = "offset"
OFFSET_FEATURES = "offset_features"
SHADER = "neumip.slang"
DEBUG_NAMES = {OFFSET: "offsets", OFFSET_FEATURES: "offsetFeatures", FEATURES: "features", DIRECTIONS: "directions"}
"""Slots written only by a ``debug`` pass, and their shader fields (``NeuMipBuffers``)."""
DEBUG_SLOTS = tuple(DEBUG_NAMES)

def _kernel(device, widths: tuple[tuple[int, ...], tuple[int, ...]] | None, unroll_dots: int):
    """``neumip_int8<Int8Mlp<offset widths>, Int8Mlp<rgb widths>>`` (widths given) or
    ``neumip_fp32``, compiled once per device (:func:`neumat.backends.slang.mlp_kernel`)."""
    if widths is None:
        return mlp_kernel(device, SHADER, "neumip_fp32", (), unroll_dots)
    return mlp_kernel(device, SHADER, "neumip_int8", tuple(widths), unroll_dots)


def input_positions(bundle: Bundle, net: str) -> list[int]:
    """First input index of (texture, enc(ωi), enc(ωo)) in network ``net``; -1 when absent."""
    at, base = {}, 0
    for source, width in bundle.inputs[net]:
        at[source] = base
        base += width
    return [at.get(net, -1), at.get("wi", -1), at.get("wo", -1)]


class NeuMipPass(RenderPass):
    """NeuMIP inference of ``bundle`` on ``device`` (module docstring).

    Args:
        device: slangpy device (include path = neumat's shaders).
        bundle: a ``neumip`` bundle satisfying :func:`neumat.material.neumip.check_neumip`.
        debug: also write the :data:`DEBUG_SLOTS`.

    Raises:
        ValueError: not a valid NeuMIP bundle (the message says what is wrong).
    """

    INPUTS = (UV, NORMAL, TANGENT, POSITION, MASK)
    OUTPUTS = (BTF, IRRADIANCE, SHADED)

    def __init__(self, device, bundle: Bundle, debug: bool = False) -> None:
        import slangpy as spy

        from ...device import describe

        if bundle.kind != NEUMIP:
            raise ValueError(f"the neumip pass renders {NEUMIP!r} bundles, got {bundle.kind!r}")
        try:
            check_neumip(bundle)
        except EvalError as e:
            raise ValueError(f"cannot render this NeuMIP bundle: {e}") from e
        self.device, self.bundle, self.debug = device, bundle, bool(debug)
        self.mlps = (bundle.mlps["offset"], bundle.mlps["rgb"])
        self.value_scale = bundle_value_scale(bundle)
        self.max_offset = bundle_max_offset(bundle)
        usage = spy.BufferUsage.shader_resource
        textures = [np.ascontiguousarray(bundle.planes[p], np.float32) for p in ("offset", "rgb")]
        starts = [0, textures[0].size]
        self._textures = {
            "data": device.create_buffer(usage=usage, data=np.concatenate([t.ravel() for t in textures]),
                                         label="neumip.textures"),
            "offsetPlane": [starts[0], *textures[0].shape], "rgbPlane": [starts[1], *textures[1].shape],
            "offsetInputs": input_positions(bundle, "offset"), "rgbInputs": input_positions(bundle, "rgb"),
        }
        self._int8 = [int8_weight_buffers(device, m, f"neumip.{n}") for n, m in zip(("offset", "rgb"), self.mlps)]
        self._fp32 = [float_weight_buffers(device, m, f"neumip.{n}") for n, m in zip(("offset", "rgb"), self.mlps)]
        self.unroll_dots = UNROLL_DOTS["software" if describe(device).software else "hardware"]
        self.kernel_int8 = _kernel(device, (self.mlps[0].widths, self.mlps[1].widths), self.unroll_dots)
        self._kernel_fp32 = None
        self._dummy = device.create_buffer(usage=usage | spy.BufferUsage.unordered_access, size=16,
                                           label="neumip.dummy")
        self.camera: Camera | None = None
        """Set before :meth:`execute` (the renderer does)."""
        self.lights: list[DirectionalLight | PointLight] = [DirectionalLight()]
        """The lights (1..MAX_LIGHTS of :mod:`.shadow`); the first is the primary light of ``btf``."""
        self.fp32 = False
        """True: run both networks as FP32 MLPs on the dequantized weights."""
        self.backend = AUTO
        """Where the MLPs run: ``"auto"`` or ``"slang"``, both this pass's kernel (the kind declares
        no other, :attr:`~neumat.material.kinds.MaterialKind.infer_backends`: the offset network's
        output picks where the rgb network reads its features, so a host MLP would take two round
        trips and a third kernel per frame)."""

    @property
    def precision(self) -> str:
        """``"int8"`` or ``"fp32"`` (the renderer's name for :attr:`fp32`); there is no FP16 path."""
        return "fp32" if self.fp32 else "int8"

    @precision.setter
    def precision(self, value: str) -> None:
        if value not in NEUMIP_KIND.precisions:
            raise ValueError(f"NeuMIP bundles render with precision 'int8' or 'fp32', not {value!r}")
        self.fp32 = value == "fp32"

    def resolved_backend(self) -> str:
        """``"slang"`` (:func:`~.infer_native.resolve_backend`; it raises for any other request)."""
        return resolve_backend(self.backend, self.device, self.precision, NEUMIP_KIND.infer_backends)

    @property
    def kernel_fp32(self):
        if self._kernel_fp32 is None:
            self._kernel_fp32 = _kernel(self.device, None, self.unroll_dots)
        return self._kernel_fp32

    def reflect(self) -> dict[str, SlotSpec]:
        specs = {s: GBUFFER_SPECS[s] for s in self.INPUTS}
        specs.update({BTF: SlotSpec("float32", 4), IRRADIANCE: SlotSpec("float32", 4), SHADED: SlotSpec("float32", 4),
                      OFFSET: SlotSpec("float32", DIRECTION_WIDTH),
                      OFFSET_FEATURES: SlotSpec("float32", self.mlps[0].n_inputs),
                      FEATURES: SlotSpec("float32", self.mlps[1].n_inputs),
                      DIRECTIONS: SlotSpec("float32", 8)})
        return specs

    def execute(self, ctx: RenderContext, inputs: dict[str, Resource]) -> dict[str, Resource]:
        """Inputs: the g-buffer. Outputs: ``btf``, ``irradiance``, ``shaded`` (+ :data:`DEBUG_SLOTS`
        in debug)."""
        self.check_inputs(inputs)
        if self.camera is None:
            raise ValueError("NeuMipPass.camera must be set before execute")
        self.resolved_backend()
        out = self.allocate_outputs(ctx)
        specs = self.reflect()
        if self.debug:
            for slot in DEBUG_SLOTS:
                out[slot] = self.allocate_output(ctx, slot, specs[slot])
        frame = {"camera": self.camera.shader_params(), "valueScale": float(self.value_scale),
                 "maxOffset": float(np.float32(self.max_offset)), "writeDebug": int(self.debug),
                 "offsetFeatureCount": int(self.mlps[0].n_inputs), "rgbFeatureCount": int(self.mlps[1].n_inputs)}
        io = {**{s: inputs[s].buffer for s in self.INPUTS}, "btf": out[BTF].buffer,
              "irradiance": out[IRRADIANCE].buffer, "shaded": out[SHADED].buffer,
              **{name: out[s].buffer if self.debug else self._dummy for s, name in DEBUG_NAMES.items()}}
        kernel, mlps = (self.kernel_fp32, self._fp32) if self.fp32 else (self.kernel_int8, self._int8)
        kernel.dispatch(thread_count=[ctx.width, ctx.height, 1], frame=frame, tex=self._textures,
                        offsetMlp=mlps[0], rgbMlp=mlps[1], lights=pack_lights(self.device, self.lights), io=io)
        return out
