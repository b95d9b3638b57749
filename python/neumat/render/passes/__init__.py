"""Render passes (reflect / execute, named slots as module constants): see :mod:`.base` for the
interface and the shared g-buffer slots.

Visibility: :class:`~.shell.ShellPass` (shell segment or plain base-mesh hit) then, for
height-field materials, :class:`~.hf_trace.HfTracePass`::

    ctx = RenderContext(device, camera.width, camera.height)
    gbuf = ShellPass(device, scene).execute(ctx, {})
    if scene.height is not None:
        gbuf = HfTracePass(device, scene).execute(ctx, gbuf)
    uv = gbuf[UV].numpy()          # [H, W, 4] (u, v, h01, footprint)
"""

from .base import GBUFFER, MASK, NORMAL, POSITION, TANGENT, UV, RenderContext, RenderPass, \
    Resource, SlotSpec
from .hf_trace import HfTracePass
from .shell import MAX_SEGMENTS, SEGMENT_PRISMS, SEGMENTS, ShellPass
from .synthesis import SynthesisPass

__all__ = [
    "GBUFFER", "MASK", "MAX_SEGMENTS", "NORMAL", "POSITION", "SEGMENTS", "SEGMENT_PRISMS",
    "TANGENT", "UV", "HfTracePass", "RenderContext", "RenderPass", "Resource", "ShellPass",
    "SlotSpec", "SynthesisPass",
]

# Shading (appended): infer (triple-plane features -> INT8/FP32 MLP -> BTF value) and compose
# (radiance, background, exposure, tone map, sRGB); driven by neumat.render.renderer.Renderer.
from .compose import DISPLAY, RADIANCE, TONEMAPS, ComposePass, ComposeSettings  # noqa: E402
from .infer import BTF, DIRECTIONS, FEATURES, IRRADIANCE, InferPass  # noqa: E402
from .synthesis import SYNTH_HEIGHT, TILE_SHIFTS, U_FEATURES  # noqa: E402

__all__ += [
    "BTF", "DIRECTIONS", "DISPLAY", "FEATURES", "IRRADIANCE", "RADIANCE", "SYNTH_HEIGHT", "TILE_SHIFTS",
    "TONEMAPS", "U_FEATURES", "ComposePass", "ComposeSettings", "InferPass",
]

# NeuMIP (appended): offset network -> shifted texture lookup -> rgb network, same btf /
# irradiance / shaded slots as infer.
from .neumip import OFFSET, OFFSET_FEATURES, NeuMipPass  # noqa: E402

__all__ += ["OFFSET", "OFFSET_FEATURES", "NeuMipPass"]
