"""``MultiRenderer``: several neural-material objects (triple plane and NeuMIP alike) in one
frame, seen by the same camera and lit by the same light, merged by depth.

Each object is a :class:`~.renderer.Renderer` (its own bundle, mesh and pass graph: shell →
[hf_trace] → [synthesis] → infer / neumip) rendering into its own g-buffer; one frame graph
holds every object's passes (node names prefixed ``obj<k>.``), then one ``depth_merge`` pass
per object (``shaders/depth_merge.slang``: per pixel, the nearest ray distance ``position.w``
among the objects whose ``mask`` is 1 wins; ties keep the earlier object) and one
:class:`~.passes.compose.ComposePass` on the merged ``btf`` / ``irradiance`` / ``mask``. A pixel
an object wins therefore shows exactly what that object's single-object render shows there.
Every light shades every object (relief shadows within each object as its Renderer traces them);
objects do not shadow each other (each is shaded as if alone).

Frames and units as in :mod:`neumat.render.renderer`; ``translation`` moves an object's mesh in
world space (scene units).

Example::

    m = MultiRenderer([("assets/materials/leather.nmat", "sphere", (-1.2, 0, 0)),
                       ("wood_neumip.nmat", "sphere", (1.2, 0, 0))], size=(512, 256))
    res = m.render(Camera.orbit(azimuth=0, elevation=20, distance=5))
    res.srgb, res.aovs["object"], res.timings_ms   # {"obj0.shell": .., "obj1.infer": .., "merge1": .., ...}
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..slang_kernels import compute_kernel
from .camera import Camera
from .graph import RenderGraph
from .passes.base import MASK, POSITION, RenderContext, RenderPass, Resource, SlotSpec
from .passes.compose import DISPLAY, RADIANCE, ComposePass, ComposeSettings, unpack_display
from .passes.infer import BTF, IRRADIANCE, SHADED
from .passes.shadow import DEFAULT_MODE as DEFAULT_SHADOW_MODE
from .renderer import Renderer, RenderResult, frame_view, resolve_mesh
from .shapes import Mesh

SHADER = "depth_merge.slang"
ENTRY = "depth_merge"
MERGED_BTF = "merged_btf"
MERGED_IRRADIANCE = "merged_irradiance"
MERGED_SHADED = "merged_shaded"
MERGED_MASK = "merged_mask"
MERGED_DEPTH = "merged_depth"
OBJECT_ID = "object_id"
MERGED = (MERGED_BTF, MERGED_IRRADIANCE, MERGED_SHADED, MERGED_MASK, MERGED_DEPTH, OBJECT_ID)
"""The running nearest-hit buffers a :class:`DepthMergePass` reads (except the first) and writes."""


class DepthMergePass(RenderPass):
    """Fold one object's shaded g-buffer into the merged buffers (``shaders/depth_merge.slang``).

    Slots: inputs ``btf``, ``irradiance``, optional ``shaded`` (of the object's infer / neumip
    pass), ``position``, ``mask`` (its g-buffer) and, unless ``first``, the previous merge's
    :data:`MERGED` slots; outputs :data:`MERGED` (``merged_btf`` / ``merged_irradiance`` /
    ``merged_shaded`` 4 f32 as the infer pass's ``btf`` / ``irradiance`` / ``shaded`` — shaded =
    btf.rgb · irradiance.rgb for a pass without that slot —, ``merged_mask`` 1 f32, ``merged_depth`` 1 f32 ray distance (0 where no object is seen),
    ``object_id`` 1 i32 (index of the winning object, -1 for none)). Not first: the outputs are
    the input buffers, updated in place.
    """

    OUTPUTS = MERGED

    def __init__(self, device, object_index: int, first: bool) -> None:
        self.device, self.object_index, self.first = device, int(object_index), bool(first)
        self.INPUTS = (BTF, IRRADIANCE, POSITION, MASK) + (() if first else MERGED)
        self.kernel = compute_kernel(device, SHADER, ENTRY)

    def reflect(self) -> dict[str, SlotSpec]:
        f4, f1 = SlotSpec("float32", 4), SlotSpec("float32", 1)
        return {BTF: f4, IRRADIANCE: f4, SHADED: f4, POSITION: f4, MASK: f1, MERGED_BTF: f4,
                MERGED_IRRADIANCE: f4, MERGED_SHADED: f4, MERGED_MASK: f1, MERGED_DEPTH: f1, OBJECT_ID: SlotSpec("int32", 1)}

    def execute(self, ctx: RenderContext, inputs: dict[str, Resource]) -> dict[str, Resource]:
        self.check_inputs(inputs)
        out = self.allocate_outputs(ctx) if self.first else {s: inputs[s] for s in MERGED}
        shaded = inputs.get(SHADED)
        self.kernel.dispatch(
            thread_count=[ctx.width, ctx.height, 1], width=ctx.width, height=ctx.height,
            first=int(self.first), objectIndex=self.object_index,
            btf=inputs[BTF].buffer, irradiance=inputs[IRRADIANCE].buffer, useShaded=int(shaded is not None),
            shaded=(shaded or inputs[BTF]).buffer, position=inputs[POSITION].buffer,
            mask=inputs[MASK].buffer, mergedBtf=out[MERGED_BTF].buffer,
            mergedIrradiance=out[MERGED_IRRADIANCE].buffer, mergedShaded=out[MERGED_SHADED].buffer, mergedMask=out[MERGED_MASK].buffer,
            mergedDepth=out[MERGED_DEPTH].buffer, objectId=out[OBJECT_ID].buffer,
        )
        return out


def translated(mesh: Mesh, translation) -> Mesh:
    """``mesh`` moved by ``translation`` (3 scene units); normals and tangents unchanged."""
    t = np.asarray(translation, np.float32).reshape(3)
    return dataclasses.replace(mesh, positions=mesh.positions + t)


class MultiRenderer:
    """Several objects, each with its own material, in one frame (module docstring).

    Args:
        objects: ``[(bundle_or_path, scene_or_mesh, translation)]``: a Bundle or ``.nmat`` path,
            a mesh / shape name / mesh file (:func:`~.renderer.resolve_mesh`), and the world
            translation of that mesh (3 scene units).
        size: ``(width, height)`` pixels.
        device: slangpy device (default :func:`neumat.device.default_device`).
    """

    def __init__(self, objects, size=(512, 512), device=None) -> None:
        from ..device import default_device

        if not objects:
            raise ValueError("MultiRenderer needs at least one (bundle, mesh, translation) object")
        self.device = device if device is not None else default_device()
        self.width, self.height = int(size[0]), int(size[1])
        self.renderers = [Renderer(bundle, translated(resolve_mesh(mesh), offset), size, device=self.device)
                          for bundle, mesh, offset in objects]
        self.merges = [DepthMergePass(self.device, k, k == 0) for k in range(len(objects))]
        self.compose = ComposePass(self.device)

    def build_graph(self, camera: Camera, lights, hf: bool, synthesis: bool, fp32: bool,
                    compose: ComposeSettings, shadows: bool = True, infer_backend: str = "auto",
                    shadow_mode: str = DEFAULT_SHADOW_MODE) -> RenderGraph:
        """Every object's passes (``obj<k>.<pass>``), ``merge<k>`` per object, then ``compose``."""
        g = RenderGraph()
        for k, (r, merge) in enumerate(zip(self.renderers, self.merges)):
            own = r.build_graph(camera, lights, hf, synthesis, fp32, False, compose, shadows=shadows,
                                infer_backend=infer_backend, shadow_mode=shadow_mode)
            for node in own.nodes:
                if node.name != "compose":  # composed once, after the merge
                    g.add(f"obj{k}.{node.name}", node.render_pass,
                          {s: f"obj{k}.{src}" for s, src in node.edges.items()})
            vis = "hf_trace" if any(n.name == "hf_trace" for n in own.nodes) else "shell"
            edges = {BTF: f"obj{k}.infer.{BTF}", IRRADIANCE: f"obj{k}.infer.{IRRADIANCE}",
                     POSITION: f"obj{k}.{vis}.{POSITION}", MASK: f"obj{k}.{vis}.{MASK}"}
            infer = next(n.render_pass for n in own.nodes if n.name == "infer")
            if SHADED in infer.OUTPUTS:
                edges[SHADED] = f"obj{k}.infer.{SHADED}"
            if k > 0:
                edges.update({s: f"merge{k - 1}.{s}" for s in MERGED})
            g.add(f"merge{k}", merge, edges)
        self.compose.settings = compose
        last = f"merge{len(self.renderers) - 1}"
        return g.add("compose", self.compose, {BTF: f"{last}.{MERGED_BTF}", IRRADIANCE: f"{last}.{MERGED_IRRADIANCE}",
                                               SHADED: f"{last}.{MERGED_SHADED}", MASK: f"{last}.{MERGED_MASK}"})

    def render(self, camera: Camera | None = None, lights=None, hf: bool = True, synthesis: bool = True,
               fp32: bool = False, exposure: float = 0.0, tonemap: str = "aces",
               background=(0.02, 0.02, 0.025), shadows: bool = True, infer_backend: str = "auto",
               shadow_mode: str = DEFAULT_SHADOW_MODE) -> RenderResult:
        """Render one frame; arguments as :meth:`~.renderer.Renderer.render` (applied to every
        object). ``aovs``: ``object`` (int32 [H, W, 1], winning object index or -1), ``mask``
        (union of the objects' masks), ``depth`` (ray distance, 0 where no object is seen), ``btf``.
        ``timings_ms``: every node's device time (``obj<k>.<pass>``, ``merge<k>``, ``compose``)
        and ``total`` (host wall time)."""
        if camera is None:
            camera = self.renderers[0].default_camera()
        camera, lights = frame_view(camera, lights, self.width, self.height)
        settings = ComposeSettings(tuple(background), float(exposure), tonemap)
        graph = self.build_graph(camera, lights, hf, synthesis, fp32, settings, shadows, infer_backend, shadow_mode)
        start = time.perf_counter()
        res, timings = graph.execute(RenderContext(self.device, self.width, self.height))
        timings["total"] = 1e3 * (time.perf_counter() - start)
        last = f"merge{len(self.renderers) - 1}"
        aovs = {"object": res[f"{last}.{OBJECT_ID}"].numpy(), "mask": res[f"{last}.{MERGED_MASK}"].numpy(),
                "depth": res[f"{last}.{MERGED_DEPTH}"].numpy(), "btf": res[f"{last}.{MERGED_BTF}"].numpy()[..., :3]}
        return RenderResult(res[f"compose.{RADIANCE}"].numpy()[..., :3], unpack_display(res[f"compose.{DISPLAY}"].numpy()),
                            aovs, timings)
