"""``infer`` pass: evaluate a triple-plane neural material at every visible pixel
(``shaders/infer.slang``; numpy reference :func:`neumat.render.reference.pipeline.reference_infer`).

Per pixel with ``mask`` = 1: the local shading frame from the g-buffer (+z = ``normal``, +x =
``tangent`` re-orthogonalized, +y = ``w · n × t``), ωi = towards the primary light and ωo =
towards the camera eye (both pointing away from the surface, local frame), features in the
bundle's input order — U at the g-buffer (u, v) (or the synthesis pass's ``u_features``), H / D
at :func:`neumat.angles.plane_coords` (ωi, ωo) — bilinear exactly as
:func:`neumat.eval.bilinear_lookup_np` (texel centres at (i + .5)/res, U wraps, H/D clamp),
then the INT8 MLP of ``mlp_int8.slang`` (bit-exact with :func:`neumat.quant.forward`) or, with
``fp32=True``, a float MLP on the dequantized weights ``W_l · sw_l`` (ReLU, output clamped to
[0, 1]).

Slots (module constants):

================  ==========  ===================================================================
slot              channels    meaning
================  ==========  ===================================================================
g-buffer (in)     see base    ``uv``, ``normal``, ``tangent``, ``position``, ``mask``
``u_features``    C f32       optional input: synthesized U features (:mod:`.synthesis`)
``btf``           4 f32       (BTF value rgb · value_scale, lit): linear Rec.709 BTF value
                              (cosine foreshortening included, see :mod:`neumat.data.source`);
                              lit = 1 if ωi.z > 0 else 0 (then rgb = 0); zeros off the mask
``irradiance``    4 f32       (E.rgb, 0): the primary light's irradiance at normal incidence
``features``      n_0 f32     debug only: the MLP input features
``directions``    8 f32       debug only: (ωi.xyz, 0, ωo.xyz, 0), local frame
================  ==========  ===================================================================

Only the first light is evaluated (one MLP evaluation per pixel); self-shadowing toward the
light is not traced (the BTF's own self-shadowing is in the data).
"""

from __future__ import annotations

import numpy as np

from ...backends.slang import UNROLL_DOTS, link_constants, slang_mlp_type
from ...bundle import TRIPLE_PLANE, Bundle
from ...eval import bundle_value_scale
from ..camera import Camera
from ..lights import DirectionalLight, PointLight
from .base import GBUFFER_SPECS, MASK, NORMAL, POSITION, TANGENT, UV, RenderContext, \
    RenderPass, Resource, SlotSpec
from .synthesis import U_FEATURES

BTF = "btf"
IRRADIANCE = "irradiance"
FEATURES = "features"
DIRECTIONS = "directions"
SHADER = "infer.slang"
COORDS = {"U": 0, "H": 1, "D": 2}
"""Shader coordinate id of each plane (``FeaturePlanes.coord``)."""

_kernels: dict[tuple, object] = {}


def _kernel(device, widths: tuple[int, ...] | None, unroll_dots: int):
    """``infer_int8<Int8Mlp<widths>>`` (widths given) or ``infer_fp32``, compiled once per device."""
    import slangpy as spy

    key = (device, widths, unroll_dots)
    if key not in _kernels:
        module = device.load_module(SHADER)
        config = device.load_module_from_source(
            f"neumat_infer_config_u{unroll_dots}", link_constants(unroll_dots, 1))
        if widths is None:
            entry = module.entry_point("infer_fp32")
        else:
            entry = module.entry_point("infer_int8").specialize(
                [spy.SpecializationArg.from_type(slang_mlp_type(widths))])
        _kernels[key] = device.create_compute_kernel(device.link_program([module, config], [entry]))
    return _kernels[key]


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


class InferPass(RenderPass):
    """Triple-plane inference of ``bundle`` on ``device``.

    Args:
        device: slangpy device (include path = neumat's shaders).
        bundle: a ``triple_plane`` bundle with an ``rgb`` network of 3 outputs.
        debug: also write the ``features`` and ``directions`` slots.
    """

    INPUTS = (UV, NORMAL, TANGENT, POSITION, MASK)
    OUTPUTS = (BTF, IRRADIANCE)

    def __init__(self, device, bundle: Bundle, debug: bool = False) -> None:
        import slangpy as spy

        from ..device import describe

        if bundle.kind != TRIPLE_PLANE:
            raise ValueError(f"the infer pass renders {TRIPLE_PLANE!r} bundles, got {bundle.kind!r}")
        self.device, self.bundle, self.debug = device, bundle, bool(debug)
        self.mlp = bundle.mlps["rgb"]
        if self.mlp.n_outputs != 3:
            raise ValueError(f"the rgb network must have 3 outputs, got {self.mlp.n_outputs}")
        self.value_scale = bundle_value_scale(bundle)
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
        segs += [[0, 1, 1, 0]] * (3 - len(segs))
        coord = [COORDS[p] for p in order] + [-1] * (3 - len(order))
        self._planes = {"data": device.create_buffer(usage=usage, data=np.concatenate(data), label="infer.planes"),
                        "seg0": segs[0], "seg1": segs[1], "seg2": segs[2], "coord": coord}
        self._int8 = {"weights": device.create_buffer(usage=usage, data=self.mlp.flat_weights(), label="infer.w8"),
                      "multipliers": device.create_buffer(usage=usage, data=self.mlp.multipliers(), label="infer.m")}
        fw = np.concatenate([w.ravel() for w in dequantized_weights(self.mlp)])
        self._fp32 = {"weights": device.create_buffer(usage=usage, data=fw, label="infer.w32"),
                      "widths": device.create_buffer(usage=usage, data=np.asarray(self.mlp.widths, np.uint32)),
                      "layers": self.mlp.n_layers}
        software = describe(device).software
        self.unroll_dots = UNROLL_DOTS["software" if software else "hardware"]
        self.kernel_int8 = _kernel(device, self.mlp.widths, self.unroll_dots)
        self._kernel_fp32 = None
        self._dummy = device.create_buffer(usage=usage | spy.BufferUsage.unordered_access, size=16, label="infer.dummy")
        self.camera: Camera | None = None
        """Set before :meth:`execute` (the renderer does)."""
        self.light: DirectionalLight | PointLight = DirectionalLight()
        """The primary light."""
        self.fp32 = False
        """True: run the FP32 MLP instead of the INT8 one."""

    @property
    def kernel_fp32(self):
        if self._kernel_fp32 is None:
            self._kernel_fp32 = _kernel(self.device, None, self.unroll_dots)
        return self._kernel_fp32

    def reflect(self) -> dict[str, SlotSpec]:
        specs = {s: GBUFFER_SPECS[s] for s in self.INPUTS}
        specs.update({U_FEATURES: SlotSpec("float32", self.u_channels), BTF: SlotSpec("float32", 4),
                      IRRADIANCE: SlotSpec("float32", 4), FEATURES: SlotSpec("float32", self.mlp.n_inputs),
                      DIRECTIONS: SlotSpec("float32", 8)})
        return specs

    def execute(self, ctx: RenderContext, inputs: dict[str, Resource]) -> dict[str, Resource]:
        """Inputs: the g-buffer, plus ``u_features`` when synthesis runs before this pass."""
        self.check_inputs(inputs)
        if self.camera is None:
            raise ValueError("InferPass.camera must be set before execute")
        out = self.allocate_outputs(ctx)
        specs = self.reflect()
        if self.debug:
            for slot in (FEATURES, DIRECTIONS):
                out[slot] = Resource.allocate(ctx, specs[slot], f"infer.{slot}")
        synth = inputs.get(U_FEATURES)
        frame = {"camera": self.camera.shader_params(), **light_params(self.light),
                 "valueScale": float(self.value_scale), "useSynth": int(synth is not None),
                 "synthChannels": self.u_channels, "writeDebug": int(self.debug),
                 "featureCount": int(self.mlp.n_inputs)}
        kernel = self.kernel_fp32 if self.fp32 else self.kernel_int8
        kernel.dispatch(
            thread_count=[ctx.width, ctx.height, 1], frame=frame, planes=self._planes,
            mlp=self._fp32 if self.fp32 else self._int8,
            **{s: inputs[s].buffer for s in self.INPUTS},
            synthFeatures=synth.buffer if synth is not None else self._dummy,
            btf=out[BTF].buffer, irradiance=out[IRRADIANCE].buffer,
            features=out[FEATURES].buffer if self.debug else self._dummy,
            directions=out[DIRECTIONS].buffer if self.debug else self._dummy,
        )
        return out
