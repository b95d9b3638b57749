"""``shadow`` pass: self-shadowing of the material's relief toward every light, in one of two
:data:`MODES` (numpy reference of the march: :meth:`neumat.material.heightfield.HeightField.occluded`
on planes, :mod:`neumat.render.reference.shadow` on curved meshes).

Per pixel with ``mask`` = 1 and light i (< :data:`MAX_LIGHTS`): visibility 1 if a ray from the
relief at the hit's (u, v) toward the light escapes the shell, 0 if it meets the relief or the
base surface, or the light is below the shading frame's horizon. With synthesis on that relief
is hf_trace's baked synthesized height (or its exact per-sample fallback, see :mod:`.hf_trace`).

``"prisms"`` (:data:`DEFAULT_MODE`, ``shaders/shadow_prisms.slang``): the ray is a straight line
in world space, traced through the shell pass's BVH of prism boundaries exactly as camera rays
are (its crossings paired per prism) and marched in each prism it crosses by hf_trace's
``marchSegment`` on the prism's exact (u, v, h01) map. No UV metric or curvature is assumed, so
it holds on any mesh, and a fold of the mesh casts shadows on another. It starts in the hit's
own prism (the base face index is the ``dpdu`` slot's w), kShadowLift above the bilinear relief.
Curtains (``shaders/prism.slang``: the faces of a UV sphere's pole row cover a UV triangle but
no area, and the displaced mesh there is a vertical sheet holding the relief of that triangle)
block the rays that cross them; a hit on one is dark where the light is behind the sheet's
side facing the camera (``relief_normal``, hf_trace's), else its ray starts just off the sheet
on that side.
Against Mitsuba 3 (``python -m neumat.bench.shadow_fidelity --shadow-mode prisms``, 128², IoU
at light elevations 30 / 50 / 70°): sphere 0.97 / 0.97 / 0.96, its polar cap 0.96 / 0.94 / 0.87
(0.95 / 0.92 / 0.84 before curtains were traced), draped cloth 0.96 / 0.95 / 0.93, shadowed
fractions within 0.7 points everywhere. Each ray
first marches its own prism up to its exit (most shadowed rays end there) and walks the BVH only
if that is clear; on lavapipe at 512² the pass costs ~4× the march (README, frame times).

``"march"`` (``shaders/shadow.slang``): the ray is marched in the material's tangent space
(texels along u, v; h01 along the normal) on the same height texels and max mip chain as
``hf_trace`` until it leaves the shell top. Scene units become texels through the pixel's own
UV metric (``dpdu``, ``dpdv``: anisotropic), h01 through its relief thickness (``shape.w``); the
straight ray is followed over the surface's osculating circle along its direction (normal
curvature from ``shape.xyz``): its height above the curving surface and the arc it travels over
it (up to 8 chords; ``traceShadow``). Exact on planes and spheres; elsewhere the hit face's
metric and curvature hold along the whole path (the same table: sphere 0.93 / 0.91 / 0.93,
polar cap 0.89 / 0.87 / 0.80, cloth 0.92 / 0.93 / 0.91). Cheaper: no BVH walk.

Slots (module constants):

==================  ========  ===============================================================
slot                channels  meaning
==================  ========  ===============================================================
g-buffer (in)       see base  ``uv``, ``normal``, ``tangent``, ``position``, ``mask``, and
                              the surface slots ``dpdu``, ``dpdv``, ``shape`` (``"prisms"``
                              reads ``uv``, ``normal``, ``tangent``, ``mask``, ``dpdu``)
``relief_normal``   4 f32     hf_trace's (in; ``"prisms"`` only, on curtains)
``shadow``          4 f32     visibility of lights 0..3 in {0, 1} (1 for unused lights; all
                              0 off the mask in the tiles, :data:`~.base.TILES`)
==================  ========  ===============================================================
"""

from __future__ import annotations

import numpy as np

from ...slang_kernels import compute_kernel
from ..lights import DirectionalLight, PointLight
from .base import (
    DPDU,
    GBUFFER_SPECS,
    MASK,
    NORMAL,
    POSITION,
    SURFACE,
    SURFACE_SPECS,
    TANGENT,
    TILES,
    UV,
    RenderContext,
    RenderPass,
    Resource,
    SlotSpec,
    tile_dispatch,
)
from .hf_trace import RELIEF_NORMAL, HfTracePass

SHADOW = "shadow"
KERNELS = {"march": ("shadow.slang", "shadow"), "prisms": ("shadow_prisms.slang", "shadow_prisms")}
"""Shader file and entry point per mode."""
MODES = tuple(KERNELS)
"""How shadow rays cross the relief (module docstring)."""
DEFAULT_MODE = "prisms"
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
        trace: the hf_trace pass of the frame (its height buffers are reused; ``"prisms"`` also
            walks its shell pass's BVH).
        mode: :data:`MODES` — ``"march"`` (the tangent-plane march over the osculating circle)
            or ``"prisms"`` (shadow rays traced through the shell prisms).

    Raises:
        ValueError: an unknown mode, or ``"prisms"`` with a trace that has no shell pass.
    """

    SLOTS = {"march": (UV, NORMAL, TANGENT, POSITION, MASK) + SURFACE,
             "prisms": (UV, NORMAL, TANGENT, MASK, DPDU, RELIEF_NORMAL)}
    """The input slots each mode's kernel reads."""
    INPUTS = tuple(dict.fromkeys(SLOTS["march"] + SLOTS["prisms"]))
    OUTPUTS = (SHADOW,)
    OPTIONAL_INPUTS = (TILES,)

    def __init__(self, device, trace: HfTracePass, mode: str = DEFAULT_MODE) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown shadow mode {mode!r}; choose one of {MODES}")
        if mode == "prisms" and trace.shell is None:
            raise ValueError("shadow mode 'prisms' walks the shell pass's prisms: build the HfTracePass with shell=")
        self.device, self.trace, self.mode = device, trace, mode
        self.kernel = compute_kernel(device, *KERNELS[mode])
        self.lights: list = []
        """DirectionalLight / PointLight, at most :data:`MAX_LIGHTS`; set before :meth:`execute`."""

    def reflect(self) -> dict[str, SlotSpec]:
        specs = {**GBUFFER_SPECS, **SURFACE_SPECS, RELIEF_NORMAL: SlotSpec("float32", 4)}
        return {**{s: specs[s] for s in self.INPUTS}, SHADOW: SlotSpec("float32", 4)}

    def execute(self, ctx: RenderContext, inputs: dict[str, Resource]) -> dict[str, Resource]:
        self.check_inputs(inputs)
        out = self.allocate_outputs(ctx)
        slots = self.SLOTS[self.mode]
        prisms = {} if self.mode == "march" else {"shell": self.trace.shell.bvh_params(),
                                                   "faces": self.trace.face_params()}
        self.kernel.dispatch(
            **tile_dispatch(ctx, inputs.get(TILES)), width=ctx.width, height=ctx.height,
            lights=pack_lights(self.device, self.lights), hf=self.trace.shader_height_field(),
            **prisms, **{s: inputs[s].buffer for s in slots}, visibility=out[SHADOW].buffer,
        )
        return out
