"""A toy third material kind, built the way a new kind is added: this one module.

``toy_constant`` bundles hold one plane ``"colour"`` ``[1, 1, 4]`` (its first three channels
are the BTF value, linear Rec.709, the same for every uv and direction pair with light above
the surface) and an ``"rgb"`` network that reads it (required by the bundle format, unused
here). The module registers the bundle layout (:func:`neumat.bundle.register_layout`), the
kind's declaration (:func:`neumat.material.register_kind`), its numpy reference
(:func:`render_constant`) and its render pass (:class:`ConstantPass`, a tiny Slang kernel).
"""

from __future__ import annotations

import numpy as np

from neumat.bundle import Bundle, KindLayout, register_layout
from neumat.material import MaterialKind, register_kind
from neumat.quant import Int8MLP
from neumat.render.lights import DirectionalLight
from neumat.render.passes.base import MASK, NORMAL, RenderContext, RenderPass, Resource, SlotSpec
from neumat.render.passes.infer import BTF, IRRADIANCE

TOY = "toy_constant"
LAYOUT = register_layout(TOY, KindLayout(("colour",), {"rgb": ("colour",)}))
KIND = register_kind(MaterialKind(TOY, f"{__name__}:ConstantPass", f"{__name__}:render_constant",
                                  height_tracing=False, synthesis=False, precisions=("int8",)))

KERNEL = """
[shader("compute")]
[numthreads(8, 8, 1)]
void constant(uint3 tid: SV_DispatchThreadID, uniform uint width, uniform uint height,
              uniform float3 colour, uniform float3 lightDir, uniform float3 radiance,
              uniform StructuredBuffer<float4> normal, uniform StructuredBuffer<float> mask,
              uniform RWStructuredBuffer<float4> btf, uniform RWStructuredBuffer<float4> irradiance)
{
    if (tid.x >= width || tid.y >= height)
        return;
    uint i = tid.y * width + tid.x;
    float lit = (mask[i] > 0.5f && dot(normal[i].xyz, lightDir) > 0.0f) ? 1.0f : 0.0f;
    btf[i] = float4(colour * lit, lit);
    irradiance[i] = float4(radiance, 1.0f);
}
"""


def make_constant_bundle(colour) -> Bundle:
    """A ``toy_constant`` bundle of BTF value ``colour`` (3 floats)."""
    plane = np.zeros((1, 1, 4), np.float32)
    plane[0, 0, :3] = colour
    mlp = Int8MLP((4, 3), (np.zeros((3, 1), np.uint32),), np.float32([1 / 127, 1 / 127]))
    return Bundle(TOY, {"colour": plane}, {"rgb": mlp}, {"rgb": [("colour", 4)]})


def render_constant(bundle: Bundle, uv: np.ndarray, wi: np.ndarray, wo: np.ndarray) -> np.ndarray:
    """The kind's numpy reference: float32 ``[B, 3]``, the colour where ``wi.z > 0``, else 0."""
    lit = (np.asarray(wi, np.float32)[:, 2] > 0).astype(np.float32)[:, None]
    return (bundle.planes["colour"][0, 0, :3][None, :] * lit).astype(np.float32)


class ConstantPass(RenderPass):
    """The kind's ``infer`` pass: ``btf`` = the colour where the light is above the surface,
    ``irradiance`` = the first (directional) light's radiance; compose multiplies them."""

    INPUTS = (NORMAL, MASK)
    OUTPUTS = (BTF, IRRADIANCE)

    def __init__(self, device, bundle: Bundle, debug: bool = False) -> None:
        module = device.load_module_from_source("neumat_toy_constant", KERNEL)
        self.kernel = device.create_compute_kernel(device.link_program([module], [module.entry_point("constant")]))
        self.colour = [float(c) for c in bundle.planes["colour"][0, 0, :3]]
        self.camera, self.lights, self.precision, self.has_relief = None, [DirectionalLight()], "int8", False

    def reflect(self) -> dict[str, SlotSpec]:
        return {NORMAL: SlotSpec("float32", 4), MASK: SlotSpec("float32", 1),
                BTF: SlotSpec("float32", 4), IRRADIANCE: SlotSpec("float32", 4)}

    def execute(self, ctx: RenderContext, inputs: dict[str, Resource]) -> dict[str, Resource]:
        self.check_inputs(inputs)
        out = self.allocate_outputs(ctx)
        light = self.lights[0]
        self.kernel.dispatch(thread_count=[ctx.width, ctx.height, 1], width=ctx.width, height=ctx.height,
                             colour=self.colour, lightDir=list(light.direction),
                             radiance=[float(x) for x in light.radiance], normal=inputs[NORMAL].buffer,
                             mask=inputs[MASK].buffer, btf=out[BTF].buffer, irradiance=out[IRRADIANCE].buffer)
        return out
