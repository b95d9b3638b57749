"""Headless Falcor renderer: a Falcor ``Testbed`` loads the scene and runs a graph of Falcor's
passes, then neumat's passes run as ``falcor.ComputePass`` on Falcor buffers.

Per frame (:meth:`FalcorRenderer.render`):

1. ``testbed.frame()`` runs the graph (:mod:`.graphs`; default ``NeuMat``: Falcor's
   GBufferRaster g-buffer of the scene written by :mod:`.scene_file`);
2. :func:`.frame_plan.plan_frame` captures the slangpy renderer's dispatches for the same view
   (shell → infer → compose, same arguments; :data:`.frame_plan.PLAN_OPTIONS`);
3. each dispatch runs as a ``ComputePass`` of its wrapper module (:mod:`.wrapper`; compiled once,
   ``compiler_arguments=["-I", <neumat shaders>]``), its arguments bound by :mod:`.binding`:
   every slangpy buffer is uploaded once into a Falcor structured buffer (``from_numpy``) and a
   pass's outputs are the Falcor twins of the slot resources the next pass reads, so data stays
   on the GPU between passes; each runs inside a profiler event ``neumat/<node>``;
4. the ``compose`` pass's radiance (linear) and display (ACES, sRGB bytes) buffers come back
   to numpy; the GBufferRaster ``mask`` output gives Falcor's own coverage of the view.

Tone mapping is neumat's compose (the same bytes as the slangpy renderer): Falcor's Python API
cannot feed a buffer it computed into a graph edge, so Falcor's ToneMapper tone-maps only the
``NeuMatReference`` graph (Falcor's own path-traced view; :meth:`FalcorRenderer.reference`).

Unverified on a GPU (no Falcor on the CPU machines): everything that touches ``falcor`` here —
Testbed construction, the ``.pyscene`` load, Falcor's Slang compiling the wrappers, ``ShaderVar``
assignment of nested structs and vectors, structured-buffer strides, camera agreement between
Falcor's raster and neumat's shell pass. The dispatch capture, wrapper sources and binding walk
are tested on CPU (lavapipe and a fake ``falcor``).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..render.passes.compose import DISPLAY, RADIANCE, ComposeSettings, unpack_display
from . import import_falcor
from .binding import Dispatch, bind_dispatch
from .frame_plan import FramePlan, plan_frame
from .graphs import REFERENCE, SCRIPTS_DIR
from .wrapper import WRAPPER_ENTRY, EntryPoint, SlangType, entry_parameters, wrapper_source


@dataclass
class FalcorFrame:
    """One frame rendered through Falcor."""

    image: np.ndarray
    """float32 [H, W, 3] linear Rec.709 radiance (compose's ``radiance``)."""
    srgb: np.ndarray
    """uint8 [H, W, 3] display image (compose's ``display``: exposure, tone map, sRGB)."""
    falcor_mask: np.ndarray | None = None
    """float32 [H, W]: GBufferRaster's mask (1 where Falcor's raster sees geometry), None when
    the graph does not output it."""
    timings_ms: dict[str, float] = field(default_factory=dict)
    """Falcor profiler GPU time per neumat node (ms) of this frame, when the profiler is on."""


def buffer_element_size(t: SlangType) -> int:
    """Bytes per element of a structured-buffer parameter (its reflected element size, 4 when
    reflection gives none)."""
    return t.element_size or 4


class FalcorRenderer:
    """Renders a bundle on a mesh through Falcor (module docstring).

    Args:
        bundle_or_path, scene_or_mesh, size: as :class:`~neumat.render.renderer.Renderer` (the
            slangpy renderer whose dispatches are replayed; its device only stages data).
        falcor: the Falcor module (default :func:`~neumat.falcor.import_falcor`).
        slang_device: slangpy device of that renderer (default: neumat's default device).
        workdir: folder for the generated ``.pyscene`` / OBJ (default: a temporary folder).
        graph: name of a shipped graph script (:data:`.graphs.GRAPHS`) run by ``frame()``.
    """

    def __init__(self, bundle_or_path, scene_or_mesh, size=(512, 512), *, falcor=None, slang_device=None,
                 workdir: str | Path | None = None, graph: str = "NeuMat") -> None:
        from ..render.renderer import Renderer

        self.falcor = falcor if falcor is not None else import_falcor()
        self.renderer = Renderer(bundle_or_path, scene_or_mesh, size, device=slang_device)
        self.width, self.height = self.renderer.width, self.renderer.height
        self.testbed = self.falcor.Testbed(width=self.width, height=self.height, create_window=False)
        self.device = self.testbed.device
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="neumat_falcor_"))
        self.graph = graph
        self._programs: dict[tuple, tuple[object, EntryPoint]] = {}
        self._buffers: dict[int, tuple[object, object]] = {}  # id(slangpy buffer) -> (it, Falcor twin)
        self._slot_buffers: dict[tuple, object] = {}  # (node.slot, bytes, stride) -> Falcor buffer
        self._frame_slots: dict[int, str] = {}  # id(slangpy slot buffer) -> "node.slot", this frame
        self._slot_twins: dict[str, object] = {}  # "node.slot" -> Falcor buffer, this frame
        self._seen: set[int] = set()
        self._scene_key = None

    def load_scene(self, camera, lights, graph: str | None = None) -> Path:
        """Write the mesh, ``camera`` and ``lights`` as a ``.pyscene`` (:mod:`.scene_file`), load
        it into the Testbed and set the graph script ``graph`` (default :attr:`graph`)."""
        from .scene_file import write_pyscene

        path = write_pyscene(self.workdir, self.renderer.mesh, camera, lights)
        self.testbed.load_scene(str(path))
        self.testbed.render_graph = self.testbed.load_render_graph(str(SCRIPTS_DIR / f"{graph or self.graph}.py"))
        self._scene_key = (repr(camera), repr(list(lights)), graph or self.graph)
        return path

    def program(self, d: Dispatch) -> tuple[object, EntryPoint]:
        """The ``ComputePass`` of ``d``'s wrapper and its reflected entry point (built once)."""
        from ..slang_kernels import shader_dir

        key = (d.shader, d.entry, d.type_args, d.link_source)
        if key not in self._programs:
            ep = entry_parameters(self.renderer.device, d.shader, d.entry, d.type_args, d.link_source)
            compute = self.falcor.ComputePass(self.device, string=wrapper_source(ep), cs_entry=WRAPPER_ENTRY,
                                              compiler_arguments=["-I", str(shader_dir())])
            self._programs[key] = (compute, ep)
        return self._programs[key]

    def _create(self, nbytes: int, stride: int):
        flags = self.falcor.ResourceBindFlags.ShaderResource | self.falcor.ResourceBindFlags.UnorderedAccess
        return self.device.create_structured_buffer(struct_size=stride, element_count=max(1, -(-nbytes // stride)),
                                                    bind_flags=flags)

    def falcor_buffer(self, buffer, t: SlangType):
        """The Falcor structured buffer standing for the slangpy ``buffer`` bound to a parameter of
        type ``t``: for a slot of the frame (a pass output), a GPU-only buffer kept per slot and
        size across frames; for other data (BVH, planes, weights, lights), a buffer created and
        filled from its bytes the first time it is seen (dropped once a frame no longer binds it)."""
        stride = buffer_element_size(t)
        slot = self._frame_slots.get(id(buffer))
        if slot is not None:
            key = (slot, int(buffer.size), stride)
            if key not in self._slot_buffers:
                self._slot_buffers[key] = self._create(int(buffer.size), stride)
            self._slot_twins[slot] = self._slot_buffers[key]
            return self._slot_buffers[key]
        self._seen.add(id(buffer))
        hit = self._buffers.get(id(buffer))
        if hit is not None and hit[0] is buffer:
            return hit[1]
        data = np.ascontiguousarray(buffer.to_numpy()).view(np.uint8).ravel()
        twin = self._create(data.size, stride)
        twin.from_numpy(data)
        self._buffers[id(buffer)] = (buffer, twin)
        return twin

    def run_plan(self, plan: FramePlan) -> None:
        """Dispatch every captured pass of ``plan`` on Falcor (profiler events ``neumat/<node>``)."""
        self._frame_slots = {id(res.buffer): name for name, res in plan.results.items()}
        self._slot_twins, self._seen = {}, set()
        profiler = self.testbed.profiler
        for node, d in plan.dispatches:
            compute, ep = self.program(d)
            bind_dispatch(compute.root_var, d, ep, self.falcor, self.falcor_buffer)
            with profiler.event(f"neumat/{node}"):
                compute.execute(*d.thread_count)
        self._buffers = {k: v for k, v in self._buffers.items() if k in self._seen}

    def read_slot(self, plan: FramePlan, slot: str, dtype) -> np.ndarray:
        """``[H, W, C]`` host copy of compose's ``slot`` from its Falcor twin (after :meth:`run_plan`)."""
        res = plan.output(slot)
        raw = np.asarray(self._slot_twins[f"compose.{slot}"].to_numpy()).view(np.uint8).ravel().view(dtype)
        n = plan.width * plan.height * res.spec.channels
        return raw[:n].reshape(plan.height, plan.width, res.spec.channels).copy()

    def render(self, camera=None, lights=None, precision: str = "int8", exposure: float = 0.0,
               tonemap: str = "aces", background=(0.02, 0.02, 0.025)) -> FalcorFrame:
        """One frame (module docstring); ``camera`` default: the slangpy renderer's default
        camera; ``lights`` default: one :class:`~neumat.render.lights.DirectionalLight`."""
        from ..render.renderer import frame_view

        camera, lights = frame_view(camera or self.renderer.default_camera(), lights, self.width, self.height)
        if self._scene_key != (repr(camera), repr(list(lights)), self.graph):
            self.load_scene(camera, lights)
        self.testbed.frame()
        plan = plan_frame(self.renderer, camera, lights, precision, ComposeSettings(background, exposure, tonemap))
        self.run_plan(plan)
        radiance = self.read_slot(plan, RADIANCE, np.float32)[..., :3]
        srgb = unpack_display(self.read_slot(plan, DISPLAY, np.int32))
        return FalcorFrame(radiance, srgb, self.falcor_mask())

    def falcor_mask(self) -> np.ndarray | None:
        """GBufferRaster's ``mask`` output of the last frame as float32 [H, W], or None."""
        try:
            tex = self.testbed.render_graph.get_output("GBufferRaster.mask")
        except Exception:  # noqa: BLE001 - the graph has no such output (Falcor raises its own type)
            return None
        return None if tex is None else np.asarray(tex.to_numpy(), np.float32).reshape(self.height, self.width, -1)[..., 0]

    def reference(self, camera, lights, frames: int = 64) -> np.ndarray:
        """Falcor's own view of the scene (graph ``NeuMatReference``: path tracer, ``frames``
        accumulated samples, ToneMapper ACES), the ToneMapper output as [H, W, C] numpy."""
        self.load_scene(camera, lights, REFERENCE.name)
        for _ in range(max(1, int(frames))):
            self.testbed.frame()
        out = np.asarray(self.testbed.render_graph.get_output("ToneMapper.dst").to_numpy())
        self._scene_key = None  # the next render() reloads its own graph
        return out
