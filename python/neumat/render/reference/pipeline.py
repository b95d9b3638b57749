"""numpy reference of the infer + compose passes (height-field tracing off; synthesis given a
:class:`neumat.synthesis.Synthesizer`).

Given the g-buffer the visibility passes produced (host copies), computes what
``shaders/infer.slang`` and ``shaders/compose.slang`` compute, with the trainer's own pieces:
:func:`neumat.material.bilinear_lookup_np`, :meth:`neumat.material.DirectionCoding.coords`,
:func:`neumat.quant.forward` (INT8, bit-exact contract), the bundle's output decode
(:mod:`neumat.output_encoding`).
Frames and units as in
:mod:`neumat.render.passes.infer`.
"""

from __future__ import annotations

import numpy as np

from ...bundle import Bundle
from ...angles import interpolates_normals, plane_coords
from ...material import DirectionCoding, bilinear_lookup_np
from ...material.mips import trained_for_lod, trilinear_lookup_np, u_chain
from ...material.triple_plane import WRAP_PLANES, bundle_output_encoding, bundle_relief
from ...quant import forward
from ..lights import DirectionalLight, PointLight


def _normalize(v: np.ndarray) -> np.ndarray:
    return (v / np.sqrt(np.sum(v * v, axis=-1, keepdims=True))).astype(np.float32)


def shading_frame(gbuffer: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Flat indices ``[N]`` of the masked pixels (row-major order) and their local frame, float32
    ``[N, 3]`` each: n (+z), t (+x, re-orthogonalized), b = w·n × t (+y), as the passes build it
    (render_types.slang ShadingBasis)."""
    mask = gbuffer["mask"].reshape(-1) > 0.5
    idx = np.nonzero(mask)[0]
    n = _normalize(gbuffer["normal"].reshape(-1, 4)[idx, :3])
    t4 = gbuffer["tangent"].reshape(-1, 4)[idx]
    t = t4[:, :3] - n * np.sum(n * t4[:, :3], axis=1, keepdims=True)
    t = _normalize(t)  # (degenerate tangents are not produced by the meshes under test)
    w = np.where(t4[:, 3:4] < 0, np.float32(-1), np.float32(1))
    b = (w * np.cross(n, t)).astype(np.float32)
    return idx, n, t, b


def shading_directions(gbuffer: dict[str, np.ndarray], eye, light) -> tuple[np.ndarray, ...]:
    """Local ``wi``, ``wo`` float32 ``[N, 3]`` and irradiance ``[N, 3]`` of the masked pixels
    (row-major order), plus their flat indices ``[N]``."""
    idx, n, t, b = shading_frame(gbuffer)
    p = gbuffer["position"].reshape(-1, 4)[idx, :3]
    if isinstance(light, DirectionalLight):
        wi_w = np.broadcast_to(np.asarray(light.direction, np.float32), p.shape)
        e = np.broadcast_to(np.asarray(light.radiance, np.float32), p.shape)
    elif isinstance(light, PointLight):
        d = np.asarray(light.position, np.float32) - p
        r2 = np.maximum(np.sum(d * d, axis=1, keepdims=True), np.float32(1e-12))
        wi_w, e = d / np.sqrt(r2), np.asarray(light.intensity, np.float32) / r2
    else:
        raise TypeError(f"unsupported light {type(light).__name__}")
    wo_w = _normalize(np.asarray(eye, np.float32) - p)

    def local(v):
        return np.stack([np.sum(v * t, 1), np.sum(v * b, 1), np.sum(v * n, 1)], 1).astype(np.float32)

    return local(wi_w), local(wo_w), np.asarray(e, np.float32), idx


def reference_infer(bundle: Bundle, gbuffer: dict[str, np.ndarray], eye, light,
                    feature_lod: bool | None = None, synthesizer=None) -> dict[str, np.ndarray]:
    """The infer pass in numpy.

    Args:
        bundle: triple-plane bundle.
        gbuffer: ``{"uv", "normal", "tangent", "position", "mask"}`` float32 ``[H, W, C]``.
        eye: camera position (scene units).
        light: the primary light.
        feature_lod: the U plane through its mip chain by ``uv.w`` (:mod:`neumat.material.mips`,
            as :attr:`~neumat.render.passes.infer.InferPass.feature_lod`); None: the bundle's
            default (:func:`~neumat.material.mips.trained_for_lod`). With a synthesizer, the
            synthesized U features and relief slope prefiltered by ``uv.w`` instead
            (:mod:`neumat.synthesis.prefilter`, :mod:`neumat.synthesis.relief`), as the
            synthesis pass writes them.
        synthesizer: the synthesis pass's :class:`~neumat.synthesis.Synthesizer` (synthesis
            on: U features and, for relief-frame bundles, the relief slope synthesized), or None
            (the bundle's planes tile).

    Returns:
        ``{"btf", "irradiance"}`` float32 ``[H, W, 4]`` as the pass writes them, and for the
        masked pixels only: ``"index"`` ``[N]`` flat pixel ids, ``"features"`` ``[N, n_0]``,
        ``"wi"``, ``"wo"`` ``[N, 3]``, ``"mlp"`` ``[N, 3]`` (INT8 MLP outputs).
    """
    h, w = gbuffer["mask"].shape[:2]
    if feature_lod is None:
        feature_lod = trained_for_lod(bundle.provenance)
    wi, wo, e, idx = shading_directions(gbuffer, eye, light)
    uv = gbuffer["uv"].reshape(-1, 4)[idx]
    footprint = uv[:, 3] if feature_lod else None
    if synthesizer is None:
        hc, dc = DirectionCoding(bundle.angle_param, bundle_relief(bundle)).coords(uv[:, :2], wi, wo, footprint)
    else:
        extent, normals = bundle.height_range[1] - bundle.height_range[0], interpolates_normals(bundle.angle_param)
        relief = bundle_relief(bundle)
        slope = synthesizer.relief_slope(uv[:, :2], extent, footprint, normals) if relief is not None else None
        if slope is not None and footprint is not None and relief.visible_gain:
            slope = relief.visible_of(slope, footprint, wo, synthesizer.relief_covariances(extent, normals))
        hc, dc = (c.astype(np.float32) for c in plane_coords(wi, wo, bundle.angle_param, slope))
    coords = {"U": uv[:, :2], "H": hc, "D": dc}

    def lookup(p):
        if p == "U" and synthesizer is not None:
            return synthesizer.synthesize(uv[:, :2], footprint=footprint).features
        if p == "U" and feature_lod:
            return trilinear_lookup_np(u_chain(bundle), uv[:, :2], uv[:, 3])
        return bilinear_lookup_np(bundle.planes[p], coords[p], p in WRAP_PLANES)

    feats = np.concatenate([lookup(p) for p in bundle.feature_order("rgb")], axis=1)
    mlp = forward(bundle.mlps["rgb"], feats)
    lit = (wi[:, 2] > 0).astype(np.float32)
    btf = np.zeros((h * w, 4), np.float32)
    btf[idx, :3] = bundle_output_encoding(bundle).decode(mlp) * lit[:, None]
    btf[idx, 3] = lit
    irr = np.zeros((h * w, 4), np.float32)
    irr[idx, :3] = e
    return {"btf": btf.reshape(h, w, 4), "irradiance": irr.reshape(h, w, 4), "index": idx,
            "features": feats, "wi": wi, "wo": wo, "mlp": mlp}


def tone_map(x: np.ndarray, op: str) -> np.ndarray:
    """The tone-map operators of :mod:`neumat.render.passes.compose`."""
    x = np.asarray(x, np.float32)
    if op == "reinhard":
        return x / (1 + x)
    if op == "aces":
        return x * (np.float32(2.51) * x + np.float32(0.03)) / (x * (np.float32(2.43) * x + np.float32(0.59)) + np.float32(0.14))
    if op == "clamp":
        return x
    raise ValueError(f"unknown tone map {op!r}")


def srgb_encode(c: np.ndarray) -> np.ndarray:
    """sRGB OETF of linear values in [0, 1]."""
    c = np.asarray(c, np.float32)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055).astype(np.float32)


def display_values(radiance: np.ndarray, exposure: float = 0.0, tonemap: str = "aces") -> np.ndarray:
    """Float32 display values in [0, 1] of linear radiance, as the compose pass computes them
    before quantizing: exposure (stops), tone map, clamp, sRGB encoding."""
    return srgb_encode(np.clip(tone_map(radiance * np.float32(2.0 ** exposure), tonemap), 0, 1))


def reference_compose(btf: np.ndarray, irradiance: np.ndarray, mask: np.ndarray, background=(0.02, 0.02, 0.025),
                      exposure: float = 0.0, tonemap: str = "aces") -> tuple[np.ndarray, np.ndarray]:
    """The compose pass: (linear radiance float32 ``[H, W, 3]``, sRGB uint8 ``[H, W, 3]``)."""
    on = mask[..., :1] > 0.5
    radiance = np.where(on, btf[..., :3] * irradiance[..., :3], np.asarray(background, np.float32)).astype(np.float32)
    return radiance, np.floor(display_values(radiance, exposure, tonemap) * 255 + 0.5).astype(np.uint8)
