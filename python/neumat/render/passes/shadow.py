"""``shadow`` pass: self-shadowing of the material's relief toward every light
(``shaders/shadow.slang``; numpy reference :meth:`neumat.material.heightfield.HeightField.occluded`).

Per pixel with ``mask`` = 1 and light i (< :data:`~neumat.render.passes.infer.MAX_LIGHTS`):
ωi in the g-buffer's shading frame (the mesh frame, see :mod:`.hf_trace`), then a ray from the
surface point at the hit's (u, v) along ωi, in the material's tangent space (texels along u, v;
h01 along the normal), marched on the same height texels and max mip chain as ``hf_trace``
until it leaves the shell top: visibility 1 if it escapes, 0 if it meets the relief or ωi is
below the horizon. With synthesis on that relief is hf_trace's baked synthesized height (or its
exact per-sample fallback, see :mod:`.hf_trace`). Scene units become texels through the pixel's
own UV metric (the surface slots ``dpdu``, ``dpdv``: anisotropic), h01 through its relief
thickness (``shape.w``); the straight ray is followed over the surface's osculating circle
along its direction (normal curvature from ``shape.xyz``): its height above the curving surface
and the arc it travels over it (marched as up to 8 chords; ``traceShadow`` in
``shaders/shadow.slang``). Exact on planes and spheres; elsewhere the hit face's metric and
curvature hold along the whole path. (A curvature-free tangent-plane march read the sphere's
equator band 6–9 points too dark against Mitsuba; tracing shadow rays through the shell prisms
instead was not built.)

Slots (module constants):

==================  ========  ===============================================================
slot                channels  meaning
==================  ========  ===============================================================
g-buffer (in)       see base  ``uv``, ``normal``, ``tangent``, ``position``, ``mask``, and
                              the surface slots ``dpdu``, ``dpdv``, ``shape``
``shadow``          4 f32     visibility of lights 0..3 in {0, 1} (1 for unused lights; all
                              0 off the mask)
==================  ========  ===============================================================
"""

from __future__ import annotations

import numpy as np

from ...slang_kernels import compute_kernel
from ..lights import DirectionalLight, PointLight
from .base import (
    GBUFFER_SPECS,
    MASK,
    NORMAL,
    POSITION,
    SURFACE,
    SURFACE_SPECS,
    TANGENT,
    UV,
    RenderContext,
    RenderPass,
    Resource,
    SlotSpec,
)
from .hf_trace import HfTracePass

SHADOW = "shadow"
SHADER = "shadow.slang"
ENTRY = "shadow"
MAX_LIGHTS = 4
"""Lights one frame shades (``kMaxLights`` of ``render_types.slang``; the shadow slot holds one
visibility per light)."""


def pack_lights(device, lights) -> dict:
    """The ``LightList`` uniform of ``render_types.slang`` for 1..:data:`MAX_LIGHTS` lights: per
    light three float4 rows (direction, kind), (position, 0), (radiance or intensity, 0).

    Raises:
        ValueError: no light or more than :data:`MAX_LIGHTS`; TypeError: an unsupported light.
    """
    import slangpy as spy

    lights = list(lights)
    if not 1 <= len(lights) <= MAX_LIGHTS:
        raise ValueError(f"a frame shades 1 to {MAX_LIGHTS} lights, got {len(lights)}")
    rows = np.zeros((3 * len(lights), 4), np.float32)
    for i, light in enumerate(lights):
        if isinstance(light, DirectionalLight):
            rows[3 * i, :3], rows[3 * i + 2, :3] = light.direction, light.radiance
        elif isinstance(light, PointLight):
            rows[3 * i, 3], rows[3 * i + 1, :3], rows[3 * i + 2, :3] = 1.0, light.position, light.intensity
        else:
            raise TypeError(f"unsupported light {type(light).__name__}; use DirectionalLight or PointLight")
    buffer = device.create_buffer(usage=spy.BufferUsage.shader_resource, data=rows.ravel(), label="lights")
    return {"rows": buffer, "count": len(lights)}


class ShadowPass(RenderPass):
    """Relief self-shadowing toward ``lights`` on the height field of ``trace``.

    Args:
        device: slangpy device.
        trace: the hf_trace pass of the frame (its height buffers are reused).
    """

    INPUTS = (UV, NORMAL, TANGENT, POSITION, MASK) + SURFACE
    OUTPUTS = (SHADOW,)

    def __init__(self, device, trace: HfTracePass) -> None:
        self.device, self.trace = device, trace
        self.kernel = compute_kernel(device, SHADER, ENTRY)
        self.lights: list = []
        """DirectionalLight / PointLight, at most :data:`MAX_LIGHTS`; set before :meth:`execute`."""

    def reflect(self) -> dict[str, SlotSpec]:
        specs = {**GBUFFER_SPECS, **SURFACE_SPECS}
        return {**{s: specs[s] for s in self.INPUTS}, SHADOW: SlotSpec("float32", 4)}

    def execute(self, ctx: RenderContext, inputs: dict[str, Resource]) -> dict[str, Resource]:
        self.check_inputs(inputs)
        out = self.allocate_outputs(ctx)
        self.kernel.dispatch(
            thread_count=[ctx.width, ctx.height, 1], width=ctx.width, height=ctx.height,
            lights=pack_lights(self.device, self.lights), hf=self.trace.shader_height_field(),
            **{s: inputs[s].buffer for s in self.INPUTS}, visibility=out[SHADOW].buffer,
        )
        return out
