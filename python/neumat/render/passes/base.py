"""The render-pass interface (after Falcor's RenderPass: ``reflect`` declares, ``execute`` binds
and dispatches).

A pass is a small class:

* its input and output slot names are **module-level constants** (``UV = "uv"``, ...) listed in
  the class attributes ``INPUTS`` / ``OUTPUTS`` (tuples of names);
* :meth:`RenderPass.reflect` returns ``{slot: SlotSpec}`` for every input and output: element
  dtype and channels per pixel (every slot is one value per pixel of the frame, row-major,
  row 0 at the top of the image);
* :meth:`RenderPass.execute` takes a :class:`RenderContext` (device + frame size) and
  ``{input slot: Resource}``, dispatches its Slang kernel(s) and returns ``{output slot:
  Resource}``; it does no host-side per-pixel work. Heavy set-up (BVHs, mip chains, kernels)
  happens once in ``__init__`` / on changes, never per frame.

A :class:`Resource` wraps a device buffer of ``height × width × channels`` elements; the next
pass binds ``resource.buffer`` directly (no copy), the host reads it with
:meth:`Resource.numpy` (float32/int32 ``[height, width, channels]``). A pass keeps its output
and scratch buffers from frame to frame (:meth:`RenderPass.frame_buffer`): its outputs hold
until its next :meth:`~RenderPass.execute`, which overwrites them (read or copy them before).

Shared geometry-buffer slots (written by the last visibility pass — ``shell`` alone for plain
meshes, ``hf_trace`` after it for height-field materials — and read by synthesis / infer /
compose):

=============  ========  ==========================================================
slot           channels  meaning
=============  ========  ==========================================================
``uv``         4 f32     (u, v, h01, footprint): texture coords of the shading point, its
                         height in [0, 1] of the material's range, and log2 of the pixel's
                         texture footprint in UV units (ray cone cut by the tangent plane,
                         geometric mean of its axes: render_types.slang footprintLog2; the
                         infer pass picks the U plane's mip level from it)
``normal``     4 f32     (n.xyz, 0): unit shading normal, world space
``tangent``    4 f32     (t.xyz, w): unit tangent ⟂ n, handedness w; b = w·cross(n, t)
``position``   4 f32     (p.xyz, t): world hit point and ray distance (depth along the ray)
``mask``       1 f32     1 = the pixel sees the material, 0 = background
=============  ========  ==========================================================

Empty-pixel culling: a pass wired to the shell's :data:`TILES` list runs on those tiles alone.
Off them ``mask`` is 0 and every other slot undefined: read slots where ``mask`` is 1 (zeros
off the mask hold within the tiles only).

Surface slots (:data:`SURFACE`, written by the same visibility passes; the local UV metric of
the base face under the pixel, :mod:`neumat.render.metric`; zeros off the mask):

=============  ========  ==========================================================
``dpdu``       4 f32     (dP/du, face): world, scene units per UV unit; w = index of the
                         base face under the pixel (exact in float32 below 2²⁴ faces)
``dpdv``       4 f32     (dP/dv, 0): world, scene units per UV unit
``shape``      4 f32     (II_uu, II_uv, II_vv, thickness): second fundamental form in UV
                         coordinates (scene units per UV unit²; normal curvature along a
                         UV direction δ = δᵀIIδ / |J δ|², > 0 where the surface bends away
                         from its normal) and the relief's thickness at the pixel (scene
                         units per unit of h01; 0 without a height field)
=============  ========  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

if TYPE_CHECKING:
    import slangpy as spy

UV = "uv"
NORMAL = "normal"
TANGENT = "tangent"
POSITION = "position"
MASK = "mask"
GBUFFER = (UV, NORMAL, TANGENT, POSITION, MASK)
"""The geometry-buffer slots every visibility pass writes (module docstring)."""


@dataclass(frozen=True)
class SlotSpec:
    """What one slot holds per pixel."""

    dtype: str
    """Element type: ``"float32"`` or ``"int32"``."""
    channels: int
    """Values per pixel (1 or 4)."""


GBUFFER_SPECS = {UV: SlotSpec("float32", 4), NORMAL: SlotSpec("float32", 4),
                 TANGENT: SlotSpec("float32", 4), POSITION: SlotSpec("float32", 4),
                 MASK: SlotSpec("float32", 1)}
DPDU = "dpdu"
DPDV = "dpdv"
SHAPE = "shape"
SURFACE = (DPDU, DPDV, SHAPE)
"""The surface slots every visibility pass writes besides :data:`GBUFFER` (module docstring)."""
SURFACE_SPECS = {s: SlotSpec("float32", 4) for s in SURFACE}


@dataclass
class RenderContext:
    """Per-frame execution context."""

    device: spy.Device
    """The slangpy device every pass of the graph runs on."""
    width: int
    """Frame width, pixels."""
    height: int
    """Frame height, pixels."""


TILES = "tiles"
"""Slot of the screen tiles that hold any of the shell (a list slot: its buffer holds the count,
then ``Resource.count`` row-major tile indices, :data:`TILE` pixels a side; written by the
rasterized shell pass, ``TileList`` of render_types.slang). A
pass given it runs its per-pixel kernels on those tiles alone (empty-pixel culling) and leaves
its outputs undefined elsewhere, except ``mask``, which stays 0 there; the shell pass that
lists them writes its own slots on them alone too."""
TILE = 8
"""Side of a screen tile, pixels (``kTile`` of render_types.slang)."""
LIST_SPEC = SlotSpec("int32", 0)
"""Spec of a list slot (``channels`` 0: not one value per pixel; not allocated by
:meth:`RenderPass.allocate_outputs`)."""
_EMPTY_LISTS: dict = {}


def tile_grid(width: int, height: int) -> tuple[int, int]:
    """Screen tiles across and down a ``width`` × ``height`` frame (``tilesAcross`` of
    render_types.slang)."""
    return -(-width // TILE), -(-height // TILE)


def tile_dispatch(ctx: RenderContext, tiles: Resource | None) -> dict:
    """``thread_count`` and the ``TileList`` uniform ``tiles`` of a per-pixel kernel taking a
    ``PixelTask(tid, width, height, tiles)`` (render_types.slang): :data:`TILE` ×
    :data:`TILE`·count threads over the tile list (its buffer holds the count, then the
    tiles), else (``tiles`` None) the whole frame (a list whose count is -1)."""
    if tiles is None:
        if ctx.device not in _EMPTY_LISTS:
            import slangpy as spy

            _EMPTY_LISTS[ctx.device] = ctx.device.create_buffer(
                usage=spy.BufferUsage.shader_resource, data=np.array([-1], np.int32).view(np.uint32),
                label="whole_frame_tiles")
        return {"thread_count": [ctx.width, ctx.height, 1], "tiles": {"list": _EMPTY_LISTS[ctx.device]}}
    return {"thread_count": [TILE, TILE * max(tiles.count, 1), 1], "tiles": {"list": tiles.buffer}}


def tile_pixels(tiles: Resource) -> np.ndarray:
    """bool ``[height, width]``: the pixels of the tiles a :data:`TILES` list holds (read back
    from the device), where culled passes define their slots."""
    listed = tiles.buffer.to_numpy().view(np.uint32)[1: 1 + tiles.count]
    across, down = tile_grid(tiles.width, tiles.height)
    grid = np.zeros(across * down, bool)
    grid[listed] = True
    return np.repeat(np.repeat(grid.reshape(down, across), TILE, 0), TILE, 1)[: tiles.height, : tiles.width]


def clear_buffers(ctx: RenderContext, *buffers: spy.Buffer) -> None:
    """Zero ``buffers`` on the device (one submission, ordered before later dispatches)."""
    encoder = ctx.device.create_command_encoder()
    for buffer in buffers:
        encoder.clear_buffer(buffer)
    ctx.device.submit_command_buffer(encoder.finish())


def pixel_threads(ctx: RenderContext, list_count: int = -1) -> list[int]:
    """``thread_count`` of a per-pixel kernel taking a ``PixelTask`` (``render_types.slang``):
    the whole frame when ``list_count < 0``, else 8 × ⌈list_count / 8⌉ threads for a pixel list."""
    if list_count < 0:
        return [ctx.width, ctx.height, 1]
    return [8, max(1, -(-list_count // 8)), 1]


@dataclass
class Resource:
    """A per-pixel device buffer of one slot."""

    buffer: spy.Buffer
    """Device buffer of ``height · width · channels`` elements of ``spec.dtype``."""
    spec: SlotSpec
    """Element type and channels."""
    width: int
    height: int
    count: int = -1
    """Entries of a list slot (``spec.channels`` 0, e.g. :data:`TILES`); -1 for a per-pixel slot."""

    def numpy(self) -> np.ndarray:
        """A host copy, ``[height, width, channels]`` float32 or int32."""
        raw = self.buffer.to_numpy().view(np.dtype(self.spec.dtype))
        n = self.width * self.height * self.spec.channels
        return raw[:n].reshape(self.height, self.width, self.spec.channels).copy()


class RenderPass:
    """Base class of neumat's passes (module docstring)."""

    INPUTS: ClassVar[tuple[str, ...]] = ()
    """Input slot names."""
    OUTPUTS: ClassVar[tuple[str, ...]] = ()
    """Output slot names."""
    OPTIONAL_INPUTS: ClassVar[tuple[str, ...]] = ()
    """Input slots the pass reads when they are wired (e.g. :data:`TILES`: empty-pixel culling)."""

    def reflect(self) -> dict[str, SlotSpec]:
        """``{slot: SlotSpec}`` for every input and output slot."""
        raise NotImplementedError

    def execute(self, ctx: RenderContext, inputs: dict[str, Resource]) -> dict[str, Resource]:
        """Run the pass on ``inputs`` (every slot of ``INPUTS``); returns every slot of
        ``OUTPUTS``."""
        raise NotImplementedError

    def step_timings(self) -> dict[str, float]:
        """``{step: ms}`` of the parts of the last :meth:`execute` for a pass of several steps
        (each pass says how it measures them); empty for one dispatch. Called once the device
        has finished the frame."""
        return {}

    def check_inputs(self, inputs: dict[str, Resource]) -> None:
        """Raise ValueError naming any missing input slot."""
        missing = [s for s in self.INPUTS if s not in inputs]
        if missing:
            raise ValueError(f"{type(self).__name__} is missing inputs {missing} (needs {list(self.INPUTS)})")

    def frame_buffer(self, ctx: RenderContext, name: str, size: int) -> spy.Buffer:
        """The pass's device buffer ``name`` of ``size`` bytes (unordered access + shader
        resource, contents undefined), the same one every frame while device and size hold.

        Why: lavapipe backs every new buffer with fresh pages, and their first touch (a page
        fault and the kernel zeroing each page) ran inside the passes' kernels: fresh buffers
        every frame cost leather on the draped cloth at 512² ~15 ms of ~170 (the shell pass's
        256 bytes of segments per pixel alone 67 MB)."""
        import slangpy as spy

        kept = self.__dict__.setdefault("_frame_buffers", {})
        if name not in kept or kept[name][0] != (ctx.device, size):
            usage = spy.BufferUsage.unordered_access | spy.BufferUsage.shader_resource
            kept[name] = ((ctx.device, size),
                          ctx.device.create_buffer(size=size, usage=usage, label=f"{type(self).__name__}.{name}"))
        return kept[name][1]

    def allocate_output(self, ctx: RenderContext, slot: str, spec: SlotSpec) -> Resource:
        """The buffer of the per-pixel output ``slot`` of ``ctx``'s frame (:meth:`frame_buffer`:
        kept across frames, contents undefined)."""
        buffer = self.frame_buffer(ctx, slot, 4 * spec.channels * ctx.width * ctx.height)
        return Resource(buffer, spec, ctx.width, ctx.height)

    def allocate_outputs(self, ctx: RenderContext) -> dict[str, Resource]:
        """:meth:`allocate_output` for every per-pixel output slot, as :meth:`reflect` declares
        them (list slots, :data:`LIST_SPEC`, are the pass's own)."""
        specs = self.reflect()
        return {s: self.allocate_output(ctx, s, specs[s]) for s in self.OUTPUTS if specs[s].channels > 0}
