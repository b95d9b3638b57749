"""One frame of the slangpy renderer's pass graph, as the list of dispatches Falcor replays.

:func:`plan_frame` builds the :class:`~neumat.render.renderer.Renderer`'s graph for a view
(same passes, same arguments) and captures every pass's dispatches in graph order
(:func:`.binding.capture_dispatches`): nothing runs on the slangpy device; its buffers are the
host-side staging of the static data (BVH, planes, weights) and the identities that wire one
pass's outputs to the next one's inputs. The Falcor path covers what the renderer does with
``hf=False, synthesis=False, shadows=False, infer_backend="slang", visibility="bvh"``:
visibility of the base mesh (``shell``, its compute BVH walk: the rasterized shell is a render
pipeline and reads counts back), the material's inference pass (triple plane or NeuMIP, INT8 / FP32 / FP16) and
``compose``. Height-field tracing, synthesis and the shadow pass are left out: hf_trace's
continuation rounds and the synthesis tables read results back on the host between dispatches,
which a capture cannot replay.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..render.passes.base import RenderContext, Resource
from ..render.passes.compose import DISPLAY, RADIANCE, ComposeSettings
from .binding import Dispatch, capture_dispatches

PLAN_OPTIONS = {"hf": False, "synthesis": False, "shadows": False, "infer_backend": "slang", "visibility": "bvh"}
"""The :meth:`Renderer.render` options the Falcor path reproduces (module docstring)."""


@dataclass
class FramePlan:
    """The dispatches of one frame and the slot resources they write."""

    dispatches: list[tuple[str, Dispatch]]
    """``(graph node, dispatch)`` in execution order."""
    results: dict[str, Resource]
    """``"node.slot"`` -> the slangpy resource standing for it (never written)."""
    width: int
    height: int

    def output(self, slot: str) -> Resource:
        """The resource of ``"compose.<slot>"`` (``radiance`` / ``display``)."""
        return self.results[f"compose.{slot}"]


def plan_frame(renderer, camera, lights, precision: str = "int8", compose: ComposeSettings | None = None) -> FramePlan:
    """Capture one frame of ``renderer`` (a :class:`~neumat.render.renderer.Renderer`) seen from
    ``camera`` under ``lights`` (see :meth:`Renderer.render`; :data:`PLAN_OPTIONS` fixed)."""
    from ..render.renderer import frame_view

    camera, lights = frame_view(camera, lights, renderer.width, renderer.height)
    graph = renderer.build_graph(camera, lights, PLAN_OPTIONS["hf"], PLAN_OPTIONS["synthesis"], precision == "fp32",
                                 False, compose or ComposeSettings(), shadows=PLAN_OPTIONS["shadows"],
                                 precision=precision, infer_backend=PLAN_OPTIONS["infer_backend"],
                                 visibility=PLAN_OPTIONS["visibility"])
    ctx = RenderContext(renderer.device, renderer.width, renderer.height)
    results: dict[str, Resource] = {}
    dispatches: list[tuple[str, Dispatch]] = []
    for node in graph.nodes:
        inputs = {slot: results[src] for slot, src in node.edges.items()}
        outputs, captured = capture_dispatches(node.render_pass, ctx, inputs)
        results.update({f"{node.name}.{slot}": res for slot, res in outputs.items()})
        dispatches += [(node.name, d) for d in captured]
    for slot in (RADIANCE, DISPLAY):
        if f"compose.{slot}" not in results:
            raise RuntimeError(f"the captured graph wrote no compose.{slot}")
    return FramePlan(dispatches, results, renderer.width, renderer.height)


def replay_on_slangpy(plan: FramePlan, device) -> None:
    """Run ``plan`` through the Falcor wrappers (:mod:`.wrapper`) on the slangpy ``device`` it
    was captured on, binding the wrappers' globals by name: the CPU check of the wrapper modules
    (the slot resources of ``plan.results`` hold the frame afterwards). Each wrapper is compiled
    once per device."""
    from .wrapper import WRAPPER_ENTRY, entry_parameters, wrapper_globals, wrapper_source

    for _, d in plan.dispatches:
        key = (device, d.shader, d.entry, d.type_args, d.link_source)
        if key not in _wrappers:
            ep = entry_parameters(device, d.shader, d.entry, d.type_args, d.link_source)
            name = f"neumat_falcor_{len(_wrappers)}_{d.entry}"
            module = device.load_module_from_source(name, wrapper_source(ep))
            _wrappers[key] = device.create_compute_kernel(
                device.link_program([module], [module.entry_point(WRAPPER_ENTRY)]))
        _wrappers[key].dispatch(thread_count=list(d.thread_count), vars=wrapper_globals(d.params))
    device.wait()


_wrappers: dict[tuple, object] = {}
