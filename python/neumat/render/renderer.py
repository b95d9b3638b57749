"""``Renderer``: a bundle on a mesh, rendered by the pass graph
shell → [hf_trace] → [synthesis] → infer → compose.

Frames and units: world space right-handed, scene units; images row 0 at the top; ``image`` is
linear Rec.709 radiance (Σ over lights of BTF value × light irradiance × relief visibility;
background where the material is not seen), ``srgb`` the tone-mapped, sRGB-encoded 8-bit
display image (see :mod:`neumat.render.passes.compose`). Every light shades (up to
:data:`~.passes.shadow.MAX_LIGHTS`, one MLP evaluation each, :mod:`neumat.render.passes.infer`);
with the height field traced, the ``shadow`` pass (between hf_trace and infer) traces each
light's self-shadowing on it (``shadows=True``, the default). With synthesis on, the traced relief
is the synthesized height, precomputed on the mesh's UV box on the first such frame and reused
(:mod:`.passes.hf_trace`).

NeuMIP bundles (kind ``"neumip"``, :data:`neumat.material.kinds.NEUMIP_KIND`) run :class:`~.passes.neumip.NeuMipPass` in the ``infer``
node (same ``btf`` / ``irradiance`` / ``shaded`` slots, every light, so compose is unchanged).
Their height field is never traced (``hf`` and ``shadows`` are ignored): NeuMIP's offset network learns the parallax itself, for uv where the
view ray meets the material's top — the plain mesh hit of the shell pass. Synthesis is skipped
(``synthesis`` is ignored): the synthesis pass synthesizes a triple-plane U plane, while NeuMIP
reads two textures, one of them at the offset coordinate uv + Δu; synthesizing both at those
coordinates would need a second synthesis pass inside the NeuMIP kernel, not done.

Example::

    r = Renderer("cloth.nmat", "sphere", (512, 512))
    res = r.render(Camera.orbit(azimuth=30, elevation=35, distance=4), [DirectionalLight()])
    res.srgb            # uint8 [512, 512, 3]
    res.timings_ms      # {"shell": .., "hf_trace": .., "synthesis": .., "infer": .., "compose": .., "total": ..}
                        # + "infer.gather" / "infer.mlp" / "infer.decode" when the native backend runs
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..bundle import Bundle, load_bundle
from ..material import kind_of
from .camera import Camera, check_image_size
from .graph import RenderGraph
from .lights import DirectionalLight, PointLight
from .passes.base import MASK, POSITION, TILES, UV, RenderContext
from .passes.compose import DISPLAY, RADIANCE, ComposePass, ComposeSettings, unpack_display
from .passes.hf_trace import RELIEF_NORMAL, HfTracePass
from .passes.infer import BTF, DIRECTIONS, FEATURES, IRRADIANCE, SHADED, InferPass
from .passes.neumip import OFFSET, NeuMipPass
from .passes.shadow import DEFAULT_MODE as DEFAULT_SHADOW_MODE, MAX_LIGHTS, SHADOW, ShadowPass
from .passes.shell import ShellPass
from .passes.synthesis import RELIEF_SLOPE, U_FEATURES, SynthesisPass
from .scene import HeightSpec, Scene
from .shapes import Mesh, draped_sheet, load_mesh, plane, rounded_cube, uv_sphere

SHAPES = {
    "plane": lambda: plane(2.0, segments=8),
    "sphere": lambda: uv_sphere(1.0),
    "cube": lambda: rounded_cube(0.8),
    "cloth": lambda: draped_sheet(),
}
"""Built-in shapes by name (``--shape``)."""
KIND_AOVS = (OFFSET,)
"""AOVs some material kinds write (``MaterialKind.extra_aovs``; ``offset``: NeuMIP)."""
AOVS = ("uv", "depth", "mask", "height", "normal", "btf") + KIND_AOVS
"""Auxiliary outputs :meth:`Renderer.render` can return."""


@dataclass
class RenderResult:
    """One rendered frame."""

    image: np.ndarray
    """float32 [H, W, 3] linear Rec.709 radiance (before exposure / tone mapping)."""
    srgb: np.ndarray
    """uint8 [H, W, 3] display image (exposure, tone map, sRGB)."""
    aovs: dict[str, np.ndarray] = field(default_factory=dict)
    """Requested AOVs, float32 [H, W, C]: uv (u, v), depth (ray distance, 0 off the mask),
    mask, height (h01 in [0, 1]), normal (world; the relief's normal when the height field is
    traced), btf (the first light's BTF value rgb), offset (NeuMIP only: Δu, UV units, [H, W, 2]); and with ``debug``: features [H, W, n_0], directions [H, W, 8], the raw
    g-buffer slots ``gbuffer.<slot>`` and, for NeuMIP, offset_features [H, W, n_0 of M_off]."""
    timings_ms: dict[str, float] = field(default_factory=dict)
    """Device time per pass (ms, timestamp queries) and ``total`` (host wall time of the frame)."""


def resolve_mesh(scene_or_mesh) -> Mesh:
    """A :class:`Mesh` from a Mesh, a Scene, a shape name (:data:`SHAPES`) or a mesh file path."""
    if isinstance(scene_or_mesh, Scene):
        return scene_or_mesh.mesh
    if isinstance(scene_or_mesh, Mesh):
        return scene_or_mesh
    if isinstance(scene_or_mesh, str) and scene_or_mesh in SHAPES:
        return SHAPES[scene_or_mesh]()
    path = Path(scene_or_mesh)
    if not path.is_file():
        raise FileNotFoundError(f"mesh {str(scene_or_mesh)!r} is neither a file nor a shape ({sorted(SHAPES)})")
    return load_mesh(path)


def frame_view(camera: Camera, lights, width: int, height: int) -> tuple[Camera, list]:
    """The frame's ``camera`` resized to ``width`` × ``height`` and ``lights`` as a list (one
    default :class:`DirectionalLight` when empty); ValueError for a camera that cannot make an
    image (:meth:`Camera.validate`; it may have been changed since it was made) or more than
    :data:`MAX_LIGHTS` lights, TypeError for a light that is neither directional nor point."""
    camera.validate()
    if (camera.width, camera.height) != (width, height):
        camera = dataclasses.replace(camera, width=width, height=height)
    lights = [DirectionalLight()] if not lights else list(lights)
    if len(lights) > MAX_LIGHTS:
        raise ValueError(f"{len(lights)} lights given; a frame shades at most {MAX_LIGHTS}")
    bad = [type(x).__name__ for x in lights if not isinstance(x, (DirectionalLight, PointLight))]
    if bad:
        raise TypeError(f"unsupported lights {bad}; use DirectionalLight or PointLight")
    return camera, lights


class Renderer:
    """Renders one bundle (triple plane or NeuMIP) on one mesh.

    Args:
        bundle_or_path: a :class:`Bundle` or a ``.nmat`` path (loaded with :func:`load_bundle`,
            which raises :class:`~neumat.bundle.BundleError` for a bad file).
        scene_or_mesh: :class:`Scene`, :class:`Mesh`, shape name or mesh file (see :func:`resolve_mesh`).
        size: ``(width, height)`` pixels, 1 to :data:`~.camera.MAX_IMAGE_SIDE` each (else
            ValueError, before the mesh or the device is touched).
        device: slangpy device (default :func:`neumat.device.default_device`).
        height_scale: scene units per height unit (default: see :class:`HeightSpec`).
    """

    def __init__(self, bundle_or_path: Bundle | str | Path, scene_or_mesh, size=(512, 512), device=None,
                 height_scale: float | None = None) -> None:
        from ..device import default_device

        self.width, self.height = check_image_size(size)
        self.bundle = bundle_or_path if isinstance(bundle_or_path, Bundle) else load_bundle(bundle_or_path)
        self.mesh = resolve_mesh(scene_or_mesh)
        self.scene = scene_or_mesh if isinstance(scene_or_mesh, Scene) else None
        """The Scene given (its camera and lights are the defaults of :meth:`render`), else None."""
        self.device = device if device is not None else default_device()
        self.kind = kind_of(self.bundle)
        """What the bundle's kind declares (:mod:`neumat.material.kinds`): its pass and techniques."""
        self.height_spec = (HeightSpec.from_bundle(self.bundle, self.mesh, height_scale)
                            if self.bundle.height is not None and self.kind.height_tracing else None)
        self._shells: dict[tuple[bool, str], tuple[Scene, ShellPass, HfTracePass | None]] = {}
        self._shadows: dict[str, ShadowPass] = {}
        self._synthesis: SynthesisPass | None = None
        self._infer: dict[bool, InferPass | NeuMipPass] = {}
        self.compose = ComposePass(self.device)

    def _visibility(self, hf: bool, visibility: str = "auto"):
        if (hf, visibility) not in self._shells:
            scene = Scene(self.mesh, Camera(width=self.width, height=self.height),
                          height=self.height_spec if hf else None)
            # hf_trace writes the g-buffer
            shell = ShellPass(self.device, scene, gbuffer=not hf, visibility=visibility)
            trace = HfTracePass(self.device, scene, shell=shell) if hf else None
            self._shells[hf, visibility] = (scene, shell, trace)
        return self._shells[hf, visibility]

    def infer_pass(self, debug: bool = False) -> InferPass | NeuMipPass:
        """The material's inference pass, as its kind declares (:class:`InferPass`,
        :class:`NeuMipPass`, ...; built once per ``debug`` flag; graph node ``infer``)."""
        if debug not in self._infer:
            self._infer[debug] = self.kind.load_pass()(self.device, self.bundle, debug=debug)
        return self._infer[debug]

    def synthesis_pass(self) -> SynthesisPass:
        """The synthesis pass (its tables, and the synthesized relief's texels on this mesh, are
        built on first use: :meth:`SynthesisPass.bake_relief_levels`)."""
        if self._synthesis is None:
            self._synthesis = SynthesisPass.from_bundle(self.device, self.bundle)
            self._synthesis.bake_relief_levels(self.mesh.uvs[self.mesh.faces])
        return self._synthesis

    def default_camera(self) -> Camera:
        """An orbit camera framing the unit-sized built-in shapes."""
        return Camera.orbit(azimuth=-60.0, elevation=35.0, distance=4.0, width=self.width, height=self.height)

    def build_graph(self, camera: Camera, lights, hf: bool, synthesis: bool, fp32: bool, debug: bool,
                    compose: ComposeSettings, shadows: bool = False, precision: str | None = None,
                    infer_backend: str = "auto", shadow_mode: str = DEFAULT_SHADOW_MODE,
                    visibility: str = "auto") -> RenderGraph:
        """The frame's graph (passes are cached; only the wiring is rebuilt). ``lights``: a list
        of lights or one light; ``shadows``: add the shadow pass (when the height field is traced),
        walking its rays as ``shadow_mode`` says (:data:`~.passes.shadow.MODES`);
        ``precision``: the MLP (:data:`~.passes.infer.PRECISIONS`), overriding ``fp32``;
        ``infer_backend``: where the infer node's MLP runs (:mod:`.passes.infer_native`);
        ``visibility``: how the shell pass finds crossings (:data:`~.passes.shell.VISIBILITY`)."""
        precision = precision or ("fp32" if fp32 else "int8")
        lights = list(lights) if isinstance(lights, (list, tuple)) else [lights]
        hf = hf and self.height_spec is not None
        scene, shell, trace = self._visibility(hf, visibility)
        scene.camera = camera
        g = RenderGraph().add("shell", shell)
        vis = "shell"
        if trace is not None:
            # synthesis on: the traced relief is the synthesized height (same tiles as U)
            trace.synthesis = self.synthesis_pass() if synthesis and self.kind.synthesis else None
            # all of the shell's outputs: continuation rounds rewrite them (ShellPass.resume)
            g.add("hf_trace", trace, {s: f"shell.{s}" for s in shell.OUTPUTS})
            vis = "hf_trace"
        infer = self.infer_pass(debug)
        infer.camera, infer.lights, infer.precision = camera, lights, precision  # InferPass or NeuMipPass
        infer.backend = infer_backend

        def culled(render_pass, edges: dict) -> dict:
            """``edges`` + the shell's tile list when it makes one and the pass reads it."""
            if TILES in shell.OUTPUTS and TILES in render_pass.OPTIONAL_INPUTS:
                edges[TILES] = f"shell.{TILES}"
            return edges

        edges = culled(infer, {s: f"{vis}.{s}" for s in infer.INPUTS})
        if shadows and trace is not None and self.kind.height_tracing:
            if shadow_mode not in self._shadows:
                self._shadows[shadow_mode] = ShadowPass(self.device, trace, mode=shadow_mode)
            shadow = self._shadows[shadow_mode]
            shadow.lights = lights
            g.add("shadow", shadow, culled(shadow, {s: f"{vis}.{s}" for s in shadow.INPUTS}))
            edges[SHADOW] = f"shadow.{SHADOW}"
        if synthesis and self.kind.synthesis:  # e.g. not NeuMIP (module docstring)
            synth = self.synthesis_pass()
            synth.feature_lod = infer.feature_lod  # one switch: the infer pass's
            g.add("synthesis", synth, culled(synth, {UV: f"{vis}.{UV}", MASK: f"{vis}.{MASK}"}))
            edges[U_FEATURES] = f"synthesis.{U_FEATURES}"
            if infer.has_relief:  # the relief frame of the synthesized relief
                edges[RELIEF_SLOPE] = f"synthesis.{RELIEF_SLOPE}"
                if infer.visible_gain and infer.feature_lod:
                    infer.use_synthesized_relief(synth.relief_covariances())
        g.add("infer", infer, edges)
        self.compose.settings = compose
        compose_edges = {BTF: f"infer.{BTF}", IRRADIANCE: f"infer.{IRRADIANCE}", MASK: f"{vis}.{MASK}"}
        if SHADED in infer.OUTPUTS:
            compose_edges[SHADED] = f"infer.{SHADED}"
        g.add("compose", self.compose, compose_edges)
        return g

    def render(self, camera: Camera | None = None, lights=None, hf: bool = True, synthesis: bool = True,
               fp32: bool = False, exposure: float = 0.0, tonemap: str = "aces",
               background=(0.02, 0.02, 0.025), aovs=(), debug: bool = False,
               shadows: bool = True, precision: str | None = None, infer_backend: str = "auto",
               shadow_mode: str = DEFAULT_SHADOW_MODE, visibility: str = "auto") -> RenderResult:
        """Render one frame.

        Args:
            camera: the view (resized to the renderer's size); default: the Scene's camera, else
                :meth:`default_camera`.
            lights: list of 1 to :data:`MAX_LIGHTS` DirectionalLight / PointLight, all of which
                shade (NeuMIP bundles too, without relief shadows); default: the Scene's lights, else one
                :class:`DirectionalLight`. The ``btf`` AOV is the first light's BTF value.
            hf: trace the bundle's height field (ignored when it has none).
            synthesis: ACF-guided synthesis of the U features (else the plane tiles).
            fp32: FP32 MLP on dequantized weights instead of the INT8 one (alias of
                ``precision="fp32"``).
            exposure, tonemap, background: see :class:`ComposeSettings`.
            aovs: names from :data:`AOVS`.
            debug: also return the infer pass's ``features`` / ``directions`` AOVs.
            shadows: trace the relief's self-shadowing toward each light (only where the height
                field is traced: ``hf`` on and the bundle has one; otherwise no effect).
            precision: ``"int8"`` (default), ``"fp32"`` or ``"fp16"`` (triple-plane bundles; needs
                shader float16, else ValueError), see :data:`~.passes.infer.PRECISIONS`;
                None: from ``fp32``.
            infer_backend: where the infer pass's MLP runs: ``"slang"`` (in its kernel on the
                render device), ``"native"`` (the C++ CPU INT8 MLP between a gather and a decode
                kernel; int8 only, bit-identical images), ``"cuda"`` (the same split around the
                dp4a CUDA MLP on a CUDA render device's buffers) or ``"auto"`` (native on a
                software rasterizer such as lavapipe when the extension is built and the precision
                is int8, else slang; :mod:`~.passes.infer_native`); the material kind declares which exist
                (:attr:`~neumat.material.kinds.MaterialKind.infer_backends`; NeuMIP: slang only).
                :class:`~.passes.infer_native.InferBackendError` (a ValueError) when it cannot run.
            shadow_mode: how shadow rays cross the relief (:data:`~.passes.shadow.MODES`):
                ``"prisms"`` (default; traced through the shell prisms in world space, exact on
                any mesh) or ``"march"`` (a march over the hit face's osculating circle and UV
                metric; cheaper, off where the metric or curvature changes along the ray).
            visibility: how the shell pass finds each pixel's crossings
                (:data:`~.passes.shell.VISIBILITY`): ``"raster"`` (a render pipeline lists
                candidate triangles per pixel, :mod:`~.passes.shell_raster`), ``"bvh"`` (a BVH
                walk per ray in compute) or ``"auto"`` (raster where the device rasterizes; not
                slangpy's CUDA device). The same image to the bit.
        """
        bad = [a for a in aovs if a not in AOVS]
        if bad:
            raise ValueError(f"unknown AOVs {bad}; valid: {list(AOVS)}")
        foreign = [a for a in aovs if a in KIND_AOVS and a not in self.kind.extra_aovs]
        if foreign:
            raise ValueError(f"the AOVs {foreign} do not exist for {self.bundle.kind!r} bundles")
        if camera is None:
            camera = self.scene.camera if self.scene is not None else self.default_camera()
        if not lights and self.scene is not None:
            lights = self.scene.lights
        camera, lights = frame_view(camera, lights, self.width, self.height)
        settings = ComposeSettings(tuple(background), float(exposure), tonemap)
        graph = self.build_graph(camera, lights, hf, synthesis, fp32, debug or OFFSET in aovs, settings,
                                 shadows=shadows, precision=precision, infer_backend=infer_backend,
                                 shadow_mode=shadow_mode, visibility=visibility)
        ctx = RenderContext(self.device, self.width, self.height)
        start = time.perf_counter()
        res, timings = graph.execute(ctx)
        timings["total"] = 1e3 * (time.perf_counter() - start)
        vis = "hf_trace" if "hf_trace.uv" in res else "shell"
        radiance = res[f"compose.{RADIANCE}"].numpy()[..., :3]
        srgb = unpack_display(res[f"compose.{DISPLAY}"].numpy())
        out: dict[str, np.ndarray] = {}
        if aovs or debug:
            mask = res[f"{vis}.{MASK}"].numpy()

            def masked(slot: str, channels: slice) -> np.ndarray:
                """A slot's channels, 0 off the mask (where culled passes leave them undefined)."""
                return np.where(mask > 0, res[slot].numpy()[..., channels], np.float32(0))

            views = {"uv": lambda: masked(f"{vis}.{UV}", slice(0, 2)), "mask": lambda: mask,
                     "depth": lambda: masked(f"{vis}.{POSITION}", slice(3, 4)),
                     "height": lambda: masked(f"{vis}.{UV}", slice(2, 3)),
                     "normal": lambda: masked(f"{vis}.{RELIEF_NORMAL}" if f"{vis}.{RELIEF_NORMAL}" in res
                                              else f"{vis}.normal", slice(0, 3)),
                     "btf": lambda: masked(f"infer.{BTF}", slice(0, 3)),
                     OFFSET: lambda: res[f"infer.{OFFSET}"].numpy()}
            out = {a: views[a]() for a in aovs}
            if debug:
                out["features"] = res[f"infer.{FEATURES}"].numpy()
                out["directions"] = res[f"infer.{DIRECTIONS}"].numpy()
                out.update({s: res[f"infer.{s}"].numpy() for s in self.kind.debug_slots})
                out.update({f"gbuffer.{s}": res[f"{vis}.{s}"].numpy()
                            for s in ("uv", "normal", "tangent", "position", "mask")})
        return RenderResult(radiance, srgb, out, timings)
