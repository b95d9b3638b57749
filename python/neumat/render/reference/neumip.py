"""numpy reference of the NeuMIP pass (``shaders/neumip.slang``), INT8 and FP32.

Given the g-buffer the shell pass produced (host copies), computes what
:class:`neumat.render.passes.neumip.NeuMipPass` writes for one light, with the contract's own
pieces: shading directions of :func:`.pipeline.shading_directions` (the infer pass's frame),
:func:`neumat.material.neumip.render_neumip_int8` (INT8, bit-exact contract) or :func:`neumip_fp32`
(both networks as float MLPs on the dequantized weights, as the pass's FP32 path). Frames and
units as in :mod:`neumat.render.passes.neumip`.
"""

from __future__ import annotations

import numpy as np

from ...bundle import Bundle
from ...material import bundle_value_scale
from ...material.neumip import (
    bundle_max_offset,
    check_neumip,
    network_input,
    offsets_from_outputs,
    offsets_int8,
    render_neumip_int8,
)
from ..passes.infer import dequantized_weights
from .pipeline import shading_directions


def float_forward(mlp, x: np.ndarray) -> np.ndarray:
    """float32 ``[B, n_L]``: ``mlp`` on the dequantized weights ``W_l · sw_l`` — ReLU between
    layers, output clamped to [0, 1], no activation quantization (the FP32 path)."""
    a = np.asarray(x, np.float32)
    weights = dequantized_weights(mlp)
    for layer, w in enumerate(weights):
        a = a @ w.T
        a = np.clip(a, 0, 1) if layer == len(weights) - 1 else np.maximum(a, 0)
    return a.astype(np.float32)


def neumip_fp32(bundle: Bundle, uv: np.ndarray, wi: np.ndarray, wo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(BTF values float32 ``[B, 3]``, Δu float32 ``[B, 2]``) of :func:`render_neumip_int8`'s
    formula with both networks run by :func:`float_forward`."""
    check_neumip(bundle)
    uv = np.asarray(uv, np.float32)
    o = float_forward(bundle.mlps["offset"], network_input(bundle, "offset", uv, wo, wo))
    du = offsets_from_outputs(o, bundle_max_offset(bundle))
    rgb = float_forward(bundle.mlps["rgb"], network_input(bundle, "rgb", (uv + du).astype(np.float32), wi, wo))
    return rgb * np.float32(bundle_value_scale(bundle)), du


def reference_neumip(bundle: Bundle, gbuffer: dict[str, np.ndarray], eye, light, fp32: bool = False,
                     directions: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The NeuMIP pass in numpy for one light.

    Args:
        bundle: NeuMIP bundle.
        gbuffer: ``{"uv", "normal", "tangent", "position", "mask"}`` float32 ``[H, W, C]``.
        eye: camera position (scene units).
        light: the light (DirectionalLight or PointLight).
        fp32: evaluate the FP32 path instead of the INT8 one.
        directions: optional float32 ``[H, W, 8]`` (ωi, 0, ωo, 0) to use instead of computing
            them (e.g. the pass's own ``directions`` debug slot, to compare the networks alone).

    Returns:
        ``{"btf", "irradiance"}`` float32 ``[H, W, 4]`` as the pass writes them, ``"offset"``
        ``[H, W, 2]`` (Δu, zeros off the mask), and for the masked pixels: ``"index"`` ``[N]``,
        ``"wi"``, ``"wo"`` ``[N, 3]``.
    """
    h, w = gbuffer["mask"].shape[:2]
    wi, wo, e, idx = shading_directions(gbuffer, eye, light)
    if directions is not None:
        d = np.asarray(directions, np.float32).reshape(-1, 8)[idx]
        wi, wo = d[:, 0:3], d[:, 4:7]
    uv = gbuffer["uv"].reshape(-1, 4)[idx, :2]
    if fp32:
        rgb, du = neumip_fp32(bundle, uv, wi, wo)
    else:
        rgb, du = render_neumip_int8(bundle, uv, wi, wo), offsets_int8(bundle, uv, wo)
    lit = (wi[:, 2] > 0).astype(np.float32)
    btf = np.zeros((h * w, 4), np.float32)
    btf[idx, :3] = rgb * lit[:, None]
    btf[idx, 3] = lit
    irr = np.zeros((h * w, 4), np.float32)
    irr[idx, :3] = e
    offset = np.zeros((h * w, 2), np.float32)
    offset[idx] = du
    return {"btf": btf.reshape(h, w, 4), "irradiance": irr.reshape(h, w, 4), "offset": offset.reshape(h, w, 2),
            "index": idx, "wi": wi, "wo": wo}
