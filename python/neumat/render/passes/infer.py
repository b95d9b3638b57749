"""``infer`` pass: evaluate a triple-plane neural material at every visible pixel
(``shaders/infer.slang``; numpy reference :func:`neumat.render.reference.pipeline.reference_infer`).

Per pixel with ``mask`` = 1: the local shading frame from the g-buffer (+z = ``normal``, +x =
``tangent`` re-orthogonalized, +y = ``w · n × t``; after hf_trace the mesh frame at the hit,
the frame of the BTF's directions), ωi = towards the light and ωo =
towards the camera eye (both pointing away from the surface, local frame), features in the
bundle's input order — U at the g-buffer (u, v) (or the synthesis pass's ``u_features``), H / D
at :func:`neumat.angles.plane_coords` (ωi, ωo) in the bundle's ``angle_param`` (for the relief
frame, v3 / v4: at the slope of the bundle's height map at (u, v), v4 the slope of its
interpolated unit normals, :mod:`neumat.material.relief`, chosen in the shader by the
parameterization's index ``frame.angleParam``, or the synthesis pass's ``relief_slope`` of the
synthesized relief) — bilinear exactly as
:func:`neumat.material.bilinear_lookup_np` (texel centres at (i + .5)/res, U wraps, H/D clamp) —
the U plane through its mip chain where the pixel's footprint (``uv.w``) exceeds a U texel
(trilinear through :func:`neumat.material.mips.u_chain`: the bundle's stored learned levels, or
the box chain of level 0; the relief slope by the same lod rule, in U texels, in the visible
frame of the slope moments under the pixel for bundles fitted in it,
:mod:`neumat.material.visible_slope`; when :attr:`InferPass.feature_lod` is set — by default for
bundles trained for it; the synthesized ``u_features`` and ``relief_slope`` are read as given:
the synthesis pass prefilters them by the same footprint, :mod:`neumat.synthesis.prefilter`, and
the visible frame adds the synthesized relief's covariances, :meth:`InferPass.use_synthesized_relief`) —
then the MLP of :attr:`InferPass.precision` (:data:`PRECISIONS`): the INT8 MLP of
``mlp_int8.slang`` (bit-exact with :func:`neumat.quant.forward`), ``"fp32"``: a float MLP on the
dequantized weights ``W_l · sw_l`` (ReLU, output clamped to [0, 1]), ``"fp16"``: the same with
the weights rounded to float16 and float16 activations and sums (needs shader float16,
:func:`check_fp16`). All of this runs once per light of :attr:`InferPass.lights` (at most
:data:`~neumat.render.passes.shadow.MAX_LIGHTS`, one MLP evaluation each).

Where the MLP runs is :attr:`InferPass.backend` (:data:`BACKENDS`, :mod:`.infer_native`): ``slang``
evaluates it in the pass's one kernel; ``native`` (INT8 only) splits the pass into a gather kernel
(the features), the C++ CPU MLP on the host and a decode kernel (the rest), bit-identical in every
slot below; ``cuda`` (INT8 only, on a CUDA render device) splits it alike around the dp4a CUDA MLP
on the device's own buffers (:mod:`.infer_cuda`); ``auto`` (the default) takes native on a
software rasterizer. With native or cuda, the
renderer's timings add ``infer.gather`` / ``infer.mlp`` / ``infer.decode``
(:meth:`InferPass.step_timings`).

Slots (module constants):

================  ==========  ===================================================================
slot              channels    meaning
================  ==========  ===================================================================
g-buffer (in)     see base    ``uv``, ``normal``, ``tangent``, ``position``, ``mask``
``u_features``    C f32       optional input: synthesized U features (:mod:`.synthesis`)
``relief_slope``  2 f32       optional input: the synthesized relief's slope (:mod:`.synthesis`)
``btf``           4 f32       (BTF value rgb, lit): the MLP output decoded by the bundle's output
                              encoding (:mod:`neumat.output_encoding`), linear Rec.709 BTF value
                              (cosine foreshortening included, see :mod:`neumat.data.source`);
                              lit = 1 if ωi.z > 0 else 0 (then rgb = 0); zeros off the mask
                              (in the tiles, :data:`~.base.TILES`)
``irradiance``    4 f32       (E.rgb, 0): the primary light's irradiance at normal incidence
``shadow``        4 f32       optional input: visibility of each light (:mod:`.shadow`)
``shaded``        4 f32       (Σ_i btf_i.rgb · E_i.rgb · V_i, 1): linear radiance under all
                              lights (V_i = the ``shadow`` input, else 1); zeros off the mask
                              (in the tiles)
``features``      n_0 f32     debug only: the MLP input features
``directions``    8 f32       debug only: (ωi.xyz, 0, ωo.xyz, 0), local frame
================  ==========  ===================================================================

``btf``, ``irradiance``, ``features`` and ``directions`` are the primary (first) light's. The
BTF holds the relief's self-shadowing at the scale the data resolved it; the ``shadow`` pass
traces it on the height field toward each light (a renderer without height field has V = 1).
"""

from __future__ import annotations

import numpy as np

from ...angles import parameterization_index
from ...backends.slang import UNROLL_DOTS, int8_weight_buffers, mlp_kernel
from ...bundle import TRIPLE_PLANE, Bundle
from ...material.kinds import TRIPLE_PLANE_KIND
from ...material.mips import trained_for_lod, u_chain
from ...material.triple_plane import bundle_has_relief, bundle_output_encoding, bundle_relief, check_triple_plane
from ..camera import Camera
from ..lights import DirectionalLight, PointLight
from .base import GBUFFER_SPECS, MASK, NORMAL, POSITION, TANGENT, TILES, UV, RenderContext, RenderPass, Resource, \
    SlotSpec, tile_dispatch
from .infer_cuda import CudaInfer
from .infer_native import AUTO, CUDA, NATIVE, NativeInfer, resolve_backend
from .shadow import SHADOW, pack_lights
from .synthesis import RELIEF_SLOPE, U_FEATURES

BTF = "btf"
SHADED = "shaded"
IRRADIANCE = "irradiance"
FEATURES = "features"
DIRECTIONS = "directions"
SHADER = "infer.slang"
COORDS = {"U": 0, "H": 1, "D": 2}
"""Shader coordinate id of each plane (``FeaturePlanes.coord``)."""
RELIEF_MODES = {"flat": 0, "tiled": 1, "slot": 2}
"""Where the shader takes the relief frame's slope from (``FeaturePlanes.reliefMode``): none (a
parameterization without relief frame, or no height map), the bundle's tiled height map, or the
synthesis pass's ``relief_slope`` slot (the synthesized relief)."""

def _kernel(device, widths: tuple[int, ...] | None, unroll_dots: int, entry: str = "infer_fp32"):
    """``infer_int8<Int8Mlp<widths>>`` (widths given) or ``entry`` (``infer_fp32`` /
    ``infer_fp16``), compiled once per device (:func:`neumat.backends.slang.mlp_kernel`)."""
    if widths is None:
        return mlp_kernel(device, SHADER, entry, (), unroll_dots)
    return mlp_kernel(device, SHADER, "infer_int8", (widths,), unroll_dots)


BACKENDS = TRIPLE_PLANE_KIND.infer_backends
"""Where the MLP can run (:mod:`.infer_native`): in the pass's kernel, natively on the CPU, or in
the CUDA kernel on a CUDA render device's buffers."""
PRECISIONS = TRIPLE_PLANE_KIND.precisions
"""MLP variants (as the kind declares them): the INT8 network (bit-exact contract), its FP32 twin
on the dequantized weights, and an FP16 twin (weights rounded to float16, float16 activations and
accumulation)."""


def check_fp16(device) -> None:
    """Raise ValueError unless ``device`` does float16 arithmetic in shaders (the FP16 MLP)."""
    import slangpy as spy

    if not device.has_feature(spy.Feature.half):
        raise ValueError(f"the device {device.info.adapter_name!r} has no shader float16 support; "
                         "use precision 'int8' or 'fp32'")


def light_params(light: DirectionalLight | PointLight) -> dict:
    """The light fields of ``InferFrame``."""
    if isinstance(light, DirectionalLight):
        return {"lightKind": 0, "lightDir": list(light.direction), "lightPos": [0.0, 0.0, 0.0],
                "lightRadiance": [float(x) for x in light.radiance]}
    if isinstance(light, PointLight):
        return {"lightKind": 1, "lightDir": [0.0, 0.0, 1.0], "lightPos": [float(x) for x in light.position],
                "lightRadiance": [float(x) for x in light.intensity]}
    raise TypeError(f"unsupported light {type(light).__name__}; use DirectionalLight or PointLight")


def dequantized_weights(mlp) -> list[np.ndarray]:
    """float32 ``[n_{l+1}, n_l]`` per layer: ``W_l · sw_l`` (the FP32 path's weights)."""
    return [mlp.weights_int8(l).astype(np.float32) * np.float32(mlp.scales[2 * l + 1]) for l in range(mlp.n_layers)]


def float_weight_buffers(device, mlp, label: str, half: bool = False) -> dict:
    """The parameter block of the float MLP twins (``FloatMlp`` of ``infer.slang`` /
    ``neumip.slang``): the :func:`dequantized_weights` of ``mlp`` as one float32 buffer
    (``half``: rounded to float16 first, the FP16 path's weights), its ``widths`` and ``layers``."""
    import slangpy as spy

    usage = spy.BufferUsage.shader_resource
    w = np.concatenate([w.ravel() for w in dequantized_weights(mlp)])
    if half:
        w = w.astype(np.float16).astype(np.float32)
    return {"weights": device.create_buffer(usage=usage, data=w, label=f"{label}.w{16 if half else 32}"),
            "widths": device.create_buffer(usage=usage, data=np.asarray(mlp.widths, np.uint32)),
            "layers": mlp.n_layers}


class InferPass(RenderPass):
    """Triple-plane inference of ``bundle`` on ``device``.

    Args:
        device: slangpy device (include path = neumat's shaders).
        bundle: a ``triple_plane`` bundle with an ``rgb`` network of 3 outputs.
        debug: also write the ``features`` and ``directions`` slots.
    """

    INPUTS = (UV, NORMAL, TANGENT, POSITION, MASK)
    OUTPUTS = (BTF, IRRADIANCE, SHADED)
    OPTIONAL_INPUTS = (TILES,)

    def __init__(self, device, bundle: Bundle, debug: bool = False) -> None:
        import slangpy as spy

        from ...device import describe

        if bundle.kind != TRIPLE_PLANE:
            raise ValueError(f"the infer pass renders {TRIPLE_PLANE!r} bundles, got {bundle.kind!r}")
        self.device, self.bundle, self.debug = device, bundle, bool(debug)
        self.mlp = bundle.mlps["rgb"]
        if self.mlp.n_outputs != 3:
            raise ValueError(f"the rgb network must have 3 outputs, got {self.mlp.n_outputs}")
        check_triple_plane(bundle)
        self.output_encoding = bundle_output_encoding(bundle)
        self.angle_param = parameterization_index(bundle.angle_param)
        order = bundle.feature_order("rgb")
        usage = spy.BufferUsage.shader_resource
        data, segs, offset = [], [], 0
        for p in order:
            plane = np.ascontiguousarray(bundle.planes[p], np.float32)
            rows, cols, ch = plane.shape
            segs.append([offset, rows, cols, ch])
            data.append(plane.ravel())
            offset += plane.size
        self.u_channels = int(bundle.planes["U"].shape[2])
        u_mips = u_chain(bundle)[1:]
        u_mip_offset = offset
        data += [m.ravel() for m in u_mips]
        segs += [[0, 1, 1, 0]] * (3 - len(segs))
        coord = [COORDS[p] for p in order] + [-1] * (3 - len(order))
        self.has_relief = bundle_has_relief(bundle)
        """True when the bundle's H/D coordinates are measured in the frame of its relief."""
        height = bundle.height if self.has_relief else np.zeros((1, 1), np.float32)
        relief = bundle_relief(bundle) if self.has_relief else None
        slope_mips = relief.moment_chain[1:] if relief is not None else []
        slope_mip_offset = u_mip_offset + sum(m.size for m in u_mips)
        data += [m.ravel() for m in slope_mips]
        if relief is not None:  # feature_planes.slang visibleGain
            data.append(np.array([relief.visible_gain], np.float32))
        self.visible_gain = float(relief.visible_gain) if relief is not None else 0.0
        """Gain of the visible relief frame the coarse reads take (:mod:`neumat.material.visible_slope`; 0: the mean slope)."""
        self._slope_levels = 1 + len(slope_mips)
        self._slot_covariances = device.create_buffer(usage=usage, data=np.zeros(3 * self._slope_levels, np.float32),
                                                      label="infer.slot_covariances")
        self._slot_table: np.ndarray | None = None  # what use_synthesized_relief uploaded
        self._planes = {"data": device.create_buffer(usage=usage, data=np.concatenate(data), label="infer.planes"),
                        "seg0": segs[0], "seg1": segs[1], "seg2": segs[2], "coord": coord,
                        "uLevels": 1 + len(u_mips), "uMipOffset": u_mip_offset,
                        "slopeLevels": 1 + len(slope_mips), "slopeMipOffset": slope_mip_offset,
                        "height": {"heights": device.create_buffer(usage=usage, label="infer.height",
                                                                   data=np.ascontiguousarray(height, np.float32).ravel()),
                                   "rows": int(height.shape[0]), "cols": int(height.shape[1])},
                        "reliefExtent": float(np.float32(bundle.height_range[1] - bundle.height_range[0]))
                        if self.has_relief else 0.0}
        self._int8 = int8_weight_buffers(device, self.mlp, "infer")
        self._fp32 = float_weight_buffers(device, self.mlp, "infer")
        software = describe(device).software
        self.unroll_dots = UNROLL_DOTS["software" if software else "hardware"]
        self.kernel_int8 = _kernel(device, self.mlp.widths, self.unroll_dots)
        self._fp16 = float_weight_buffers(device, self.mlp, "infer", half=True)
        self._kernels: dict[str, object] = {"int8": self.kernel_int8}
        self._dummy = device.create_buffer(usage=usage | spy.BufferUsage.unordered_access, size=16, label="infer.dummy")
        self.camera: Camera | None = None
        """Set before :meth:`execute` (the renderer does)."""
        self.lights: list[DirectionalLight | PointLight] = [DirectionalLight()]
        """The lights (1..MAX_LIGHTS); the first is the primary light of the ``btf`` slot."""
        self.precision = "int8"
        """The MLP that runs: one of :data:`PRECISIONS`."""
        self.backend = AUTO
        """Where the MLP runs: ``"auto"``, or one of :data:`BACKENDS` (:mod:`.infer_native`;
        ``"native"`` needs precision int8 and the C++ extension, ``"cuda"`` int8, a CUDA render
        device and the extension built with CUDA)."""
        self._split: dict[str, NativeInfer] = {}
        self._ran_split: str | None = None
        self.feature_lod = trained_for_lod(bundle.provenance)
        """Read the U plane through its mip chain by the pixel footprint (module docstring); the
        MLPs (INT8 too) take the trilinear float features as they take level-0 ones. On by
        default for bundles trained for it (learned pyramid or joint box chain,
        :func:`~neumat.material.mips.trained_for_lod`), off for point-only ones, whose
        averaged features are not averaged appearance. With synthesis on, the renderer switches
        the synthesis pass's ``feature_lod`` with this one (prefiltered synthesized U features
        and relief slope, :mod:`neumat.synthesis.prefilter`); the INT8 MLP reads those float
        features as given."""

    @property
    def fp32(self) -> bool:
        """True when the FP32 MLP runs (alias of ``precision == "fp32"``; setting False selects INT8)."""
        return self.precision == "fp32"

    @fp32.setter
    def fp32(self, value: bool) -> None:
        self.precision = "fp32" if value else "int8"

    def kernel(self, precision: str):
        """The compute kernel of ``precision`` (compiled on first use). FP16 needs shader float16
        arithmetic (:func:`check_fp16`)."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if precision not in self._kernels:
            if precision == "fp16":
                check_fp16(self.device)
            self._kernels[precision] = _kernel(self.device, None, self.unroll_dots, f"infer_{precision}")
        return self._kernels[precision]

    def reflect(self) -> dict[str, SlotSpec]:
        specs = {s: GBUFFER_SPECS[s] for s in self.INPUTS}
        specs.update({U_FEATURES: SlotSpec("float32", self.u_channels), RELIEF_SLOPE: SlotSpec("float32", 2),
                      BTF: SlotSpec("float32", 4),
                      IRRADIANCE: SlotSpec("float32", 4), SHADOW: SlotSpec("float32", 4),
                      SHADED: SlotSpec("float32", 4), FEATURES: SlotSpec("float32", self.mlp.n_inputs),
                      DIRECTIONS: SlotSpec("float32", 8)})
        return specs

    def execute(self, ctx: RenderContext, inputs: dict[str, Resource]) -> dict[str, Resource]:
        """Inputs: the g-buffer, plus ``u_features`` (and ``relief_slope``) when synthesis runs
        before this pass and ``shadow`` when the shadow pass does."""
        self.check_inputs(inputs)
        if self.camera is None:
            raise ValueError("InferPass.camera must be set before execute")
        backend = self.resolved_backend()
        split = backend if backend in (NATIVE, CUDA) else None
        out = self.allocate_outputs(ctx)
        specs = self.reflect()
        if self.debug:
            for slot in (FEATURES, DIRECTIONS):
                out[slot] = self.allocate_output(ctx, slot, specs[slot])
        synth = inputs.get(U_FEATURES)
        shadow = inputs.get(SHADOW)
        slope = inputs.get(RELIEF_SLOPE) if self.has_relief else None
        relief_mode = RELIEF_MODES["flat" if not self.has_relief else "slot" if slope is not None else "tiled"]
        frame = {"camera": self.camera.shader_params(), **light_params(self.lights[0]),
                 "outputEncoding": self.output_encoding.index, "outputScale": list(self.output_encoding.scale),
                 "outputRangeBits": self.output_encoding.range_bits,
                 "useSynth": int(synth is not None),
                 "synthChannels": self.u_channels, "writeDebug": int(self.debug),
                 "featureCount": int(self.mlp.n_inputs), "angleParam": self.angle_param}
        io = {**{s: inputs[s].buffer for s in self.INPUTS},
              "synthFeatures": synth.buffer if synth is not None else self._dummy,
              "shadow": shadow.buffer if shadow is not None else self._dummy,
              "reliefSlope": slope.buffer if slope is not None else self._dummy,
              "btf": out[BTF].buffer, "irradiance": out[IRRADIANCE].buffer, "shaded": out[SHADED].buffer,
              "features": out[FEATURES].buffer if self.debug else self._dummy,
              "directions": out[DIRECTIONS].buffer if self.debug else self._dummy}
        params = {**tile_dispatch(ctx, inputs.get(TILES)), "frame": frame, "io": io,
                  "lights": pack_lights(self.device, self.lights),
                  "planes": {**self._planes, "uLevels": self._planes["uLevels"] if self.feature_lod else 1,
                             "slopeLevels": self._planes["slopeLevels"] if self.feature_lod else 1,
                             "reliefMode": relief_mode, "slotCovariances": self._slot_covariances}}
        self._ran_split = split
        if split:
            self.native(split).execute(ctx, params, int(shadow is not None), len(self.lights))
        else:
            self.kernel(self.precision).dispatch(
                useShadow=int(shadow is not None),
                mlp={"int8": self._int8, "fp32": self._fp32, "fp16": self._fp16}[self.precision], **params)
        return out

    def use_synthesized_relief(self, covariances: np.ndarray) -> None:
        """The synthesized relief's per-level slope covariances ``[levels, 3]``
        (:meth:`.synthesis.SynthesisPass.relief_covariances`), which the visible frame of the
        ``relief_slope`` slot adds to its slope's moments; uploaded when they change (levels
        past the tiled chain's dropped, missing ones repeat the last)."""
        import slangpy as spy

        if covariances is self._slot_table:
            return
        table = np.asarray(covariances, np.float32)
        rows = np.minimum(np.arange(self._slope_levels), len(table) - 1)
        self._slot_covariances = self.device.create_buffer(
            usage=spy.BufferUsage.shader_resource, data=np.ascontiguousarray(table[rows]).ravel(),
            label="infer.slot_covariances")
        self._slot_table = covariances

    def resolved_backend(self) -> str:
        """The backend :attr:`backend` stands for at :attr:`precision` on this device
        (:func:`~.infer_native.resolve_backend`; :class:`~.infer_native.InferBackendError` if it
        cannot run)."""
        return resolve_backend(self.backend, self.device, self.precision, BACKENDS)

    def native(self, backend: str = NATIVE) -> NativeInfer:
        """The gather / decode kernels and exchange buffers of the split backend ``backend``
        (``native``: :class:`.infer_native.NativeInfer`, ``cuda``: :class:`.infer_cuda.CudaInfer`),
        built on first use."""
        if backend not in self._split:
            split = CudaInfer if backend == CUDA else NativeInfer
            self._split[backend] = split(self.device, self.mlp, self.unroll_dots)
        return self._split[backend]

    def step_timings(self) -> dict[str, float]:
        """The split backend's ``gather`` / ``mlp`` / ``decode`` times of the last frame (ms,
        :meth:`.infer_native.NativeInfer.step_timings`); empty after a one-kernel frame."""
        return self._split[self._ran_split].step_timings() if self._ran_split else {}
