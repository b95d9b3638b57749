"""Evaluate a triple-plane bundle exactly as a renderer computes it (numpy, no torch).

The reference "infer" of a ``.nmat`` triple-plane material: float32 bilinear plane lookups
(:func:`bilinear_lookup_np`, the twin of :func:`neumat.models.triple_plane.bilinear_lookup`),
H/D coordinates from :func:`neumat.angles.plane_coords` in the bundle's ``angle_param`` (in the
relief frame of its height map for v3, :func:`bundle_relief`),
features concatenated in the bundle's input order, the INT8 MLP through the numpy reference :func:`neumat.quant.forward`, and the
result decoded to BTF values by the bundle's output encoding (:mod:`neumat.output_encoding`:
``"linear"`` multiplies by the provenance ``value_scale``, :data:`VALUE_SCALE_KEY`). Only the
MLP is INT8; features are float32. The held-out helpers
(:func:`render_heldout`, :func:`evaluate_heldout`) also take NeuMIP bundles, evaluated by
:mod:`neumat.neumip`.

Metrics are in BTF value units (linear Rec.709, see :mod:`neumat.data.source`):
``l1 = mean |pred - target|`` over pixels and channels, ``rel_l1 = sum |pred - target| /
sum |target|``, ``psnr = 10 log10(1 / mse)`` dB with a fixed peak of 1.0 (independent of
``value_scale``, so runs of a material compare; it flatters dark materials — read ``rel_l1``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .angles import PLANE_PARAMETERIZATIONS
from .bundle import NEUMIP, TRIPLE_PLANE, Bundle, BundleError
from .output_encoding import VALUE_SCALE_KEY, OutputEncoding, OutputEncodingError
from .material import DirectionCoding, ReliefFrameError, ReliefSlope, bilinear_lookup_np, has_relief_frame
from .quant import forward

SOURCE_KEY = "source"
"""Provenance key: the data source spec (see :mod:`neumat.train.sources`) to rebuild held-out data."""
WRAP_PLANES = ("U",)
"""Triple-plane planes addressed with wrap; the others (H, D) clamp to edge."""


class EvalError(ValueError):
    """A bundle cannot be evaluated (wrong kind, angle parameterization, output encoding or scale)."""


def positive_provenance_number(bundle: Bundle, key: str, default: float | None = None) -> float:
    """The bundle provenance's ``key`` as a finite float > 0 (``default`` when absent; None:
    required); :class:`EvalError` naming the key otherwise."""
    value = bundle.provenance.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise EvalError(f"provenance {key!r} must be a finite number > 0, got {value!r}")
    return float(value)


def bundle_value_scale(bundle: Bundle) -> float:
    """The bundle's ``value_scale`` (1.0 when the provenance does not record one)."""
    return positive_provenance_number(bundle, VALUE_SCALE_KEY, 1.0)


def bundle_output_encoding(bundle: Bundle) -> OutputEncoding:
    """The triple-plane bundle's output encoding (:mod:`neumat.output_encoding`; ``"linear"``
    with ``value_scale`` when the provenance records none); :class:`EvalError` if unknown or bad."""
    try:
        return OutputEncoding.from_provenance(bundle.provenance)
    except OutputEncodingError as e:
        raise EvalError(str(e)) from e


def check_triple_plane(bundle: Bundle) -> None:
    """Raise :class:`EvalError` unless ``bundle`` is a triple-plane material this module evaluates."""
    if bundle.kind != TRIPLE_PLANE:
        raise EvalError(f"expected a {TRIPLE_PLANE!r} bundle, got {bundle.kind!r}")
    if bundle.angle_param not in PLANE_PARAMETERIZATIONS:
        raise EvalError(
            f"bundle H/D planes use angle parameterization {bundle.angle_param!r}; this neumat "
            f"evaluates {', '.join(map(repr, PLANE_PARAMETERIZATIONS))} (neumat.angles)"
        )
    bundle_has_relief(bundle)


def bundle_has_relief(bundle: Bundle) -> bool:
    """:func:`neumat.material.has_relief_frame` (the slope is not computed), with
    :class:`EvalError` if the relief is unusable."""
    try:
        return has_relief_frame(bundle)
    except ReliefFrameError as e:
        raise EvalError(str(e)) from e


def bundle_relief(bundle: Bundle) -> ReliefSlope | None:
    """The relief whose frame the bundle's H/D coordinates are measured in: its height map's
    slope for the relief-frame parameterizations (:mod:`neumat.material.relief`), ``None`` for
    the others and for bundles without height map (flat); :class:`EvalError` if unusable."""
    return ReliefSlope.of_bundle(bundle) if bundle_has_relief(bundle) else None


FROM_BUNDLE = "bundle"
"""``relief`` argument of :func:`bundle_features`: compute the bundle's relief there."""


def bundle_features(bundle: Bundle, uv: np.ndarray, wi: np.ndarray, wo: np.ndarray,
                    relief: ReliefSlope | None | str = FROM_BUNDLE) -> np.ndarray:
    """Decoder input features ``[B, n_0]`` float32 of a triple-plane bundle.

    Args:
        uv: float32 ``[B, 2]`` texture coordinates.
        wi, wo: float32 ``[B, 3]`` unit directions, local shading frame (+z = normal), pointing
            away from the surface.
        relief: the bundle's :func:`bundle_relief` when the caller has it at hand
            (:data:`FROM_BUNDLE`: computed here; ``None``: a flat relief).
    """
    uv = np.asarray(uv, dtype=np.float32)
    coding = DirectionCoding(bundle.angle_param, bundle_relief(bundle) if relief == FROM_BUNDLE else relief)
    h, d = coding.coords(uv, wi, wo)
    coords = {"U": uv, "H": h, "D": d}
    parts = [bilinear_lookup_np(bundle.planes[p], coords[p], p in WRAP_PLANES) for p in bundle.feature_order("rgb")]
    return np.concatenate(parts, axis=1)


def render_int8(bundle: Bundle, uv: np.ndarray, wi: np.ndarray, wo: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """BTF values float32 ``[B, 3]`` (linear Rec.709) of a triple-plane bundle, INT8 MLP.

    Evaluated in chunks of ``chunk`` samples to bound memory.
    """
    check_triple_plane(bundle)
    encoding = bundle_output_encoding(bundle)
    mlp, relief = bundle.mlps["rgb"], bundle_relief(bundle)
    out = np.empty((len(uv), 3), dtype=np.float32)
    for a in range(0, len(uv), chunk):
        b = a + chunk
        out[a:b] = encoding.decode(forward(mlp, bundle_features(bundle, uv[a:b], wi[a:b], wo[a:b], relief)))
    return out


def error_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """``{"l1", "rel_l1", "mse", "psnr", "valid"}`` of ``pred`` vs ``target`` (``[..., 3]``, BTF units).

    ``rel_l1 = sum |pred - target| / sum |target|`` (scale-free: PSNR with peak 1 flatters dark
    materials); ``psnr`` has peak 1.
    Target pixels holding NaN (points masked from the view in ``"surface"``-space sources)
    are left out; ``valid`` counts the pixels used.
    """
    p = np.asarray(pred, dtype=np.float64).reshape(-1, 3)
    t = np.asarray(target, dtype=np.float64).reshape(-1, 3)
    keep = np.all(np.isfinite(t), axis=1)
    if not keep.any():
        raise EvalError("no valid (non-NaN) target pixels to compare with")
    diff = p[keep] - t[keep]
    mse = float(np.mean(diff * diff))
    rel = float(np.sum(np.abs(diff)) / max(float(np.sum(np.abs(t[keep]))), 1e-30))
    return {"l1": float(np.mean(np.abs(diff))), "rel_l1": rel, "mse": mse, "psnr": psnr(mse), "valid": int(keep.sum())}


HEADLINE_KEYS = ("rel_l1", "psnr", "l1", "mse", "valid")
"""Keys of the held-out figures every report shows, in reading order (relative L1 first)."""


def headline_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The :data:`HEADLINE_KEYS` of an :func:`error_metrics` / :func:`evaluate_heldout` dict, in order."""
    return {k: metrics[k] for k in HEADLINE_KEYS}


def psnr(mse: float) -> float:
    """``10 log10(1 / mse)`` in dB (peak 1.0 in BTF units); capped at 200 dB for mse = 0."""
    return 200.0 if mse <= 1e-20 else float(-10.0 * math.log10(mse))


def image_uv(rows: int, cols: int) -> np.ndarray:
    """float32 ``[rows * cols, 2]`` pixel-centre uv of an image, row-major (row = v, col = u)."""
    v, u = np.meshgrid((np.arange(rows) + 0.5) / rows, (np.arange(cols) + 0.5) / cols, indexing="ij")
    return np.stack([u.ravel(), v.ravel()], axis=1).astype(np.float32)


def render_heldout(
    bundle: Bundle, images: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> list[np.ndarray]:
    """INT8 renders ``[H, W, 3]`` of each held-out ``(wi, wo, image)`` (see ``BtfSource.heldout_images``);
    triple-plane bundles through :func:`render_int8`, NeuMIP ones through
    :func:`neumat.neumip.render_neumip_int8`."""
    from .neumip import render_neumip_int8  # imports this module

    render = render_neumip_int8 if bundle.kind == NEUMIP else render_int8
    renders = []
    for wi, wo, image in images:
        rows, cols = image.shape[:2]
        uv = image_uv(rows, cols)
        w_i = np.broadcast_to(np.asarray(wi, np.float32), (len(uv), 3))
        w_o = np.broadcast_to(np.asarray(wo, np.float32), (len(uv), 3))
        renders.append(render(bundle, uv, w_i, w_o).reshape(rows, cols, 3))
    return renders


def evaluate_heldout(bundle: Bundle, images: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """Held-out error of a bundle: overall ``l1``/``mse``/``psnr`` over all valid pixels of all
    images (``valid``; NaN target pixels are masked points, left out), ``pixels`` (all), and
    ``per_direction`` (one metrics dict each, with ``wi``/``wo``)."""
    if not images:
        raise EvalError("no held-out images to evaluate")
    renders = render_heldout(bundle, images)
    preds = np.concatenate([r.reshape(-1, 3) for r in renders])
    targets = np.concatenate([np.asarray(img, np.float32).reshape(-1, 3) for _, _, img in images])
    report: dict[str, Any] = error_metrics(preds, targets)
    report["pixels"] = int(len(preds))
    report["per_direction"] = [
        {"wi": np.asarray(wi).tolist(), "wo": np.asarray(wo).tolist(), **error_metrics(r, img)}
        for (wi, wo, img), r in zip(images, renders)
        if np.isfinite(img).all(axis=-1).any()
    ]
    return report


def require_source_spec(bundle: Bundle) -> dict[str, Any]:
    """The data source spec recorded in the bundle's provenance; :class:`BundleError` if absent."""
    spec = bundle.provenance.get(SOURCE_KEY)
    if not isinstance(spec, dict):
        raise BundleError(
            f"bundle provenance has no {SOURCE_KEY!r} record of its training data; "
            "pass --material/--maps/--btf to say which material to evaluate against"
        )
    return spec
