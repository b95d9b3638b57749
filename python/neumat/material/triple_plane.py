"""The triple-plane material kind's numpy reference: evaluate a bundle exactly as a renderer does.

The reference "infer" of a ``.nmat`` triple-plane material: float32 bilinear plane lookups
(:func:`~neumat.material.common.bilinear_lookup_np`, the twin of
:func:`neumat.models.triple_plane.bilinear_lookup`), H/D coordinates from
:func:`neumat.angles.plane_coords` in the bundle's ``angle_param`` (in the relief frame of its
height map for v3, :func:`bundle_relief`), features concatenated in the bundle's input order,
the INT8 MLP through the numpy reference :func:`neumat.quant.forward`, and the result decoded to
BTF values by the bundle's output encoding (:mod:`neumat.output_encoding`: ``"linear"``
multiplies by the provenance ``value_scale``). Only the MLP is INT8; features are float32.
Values are linear Rec.709 BTF values (cosine included, see :mod:`neumat.data.source`).
"""

from __future__ import annotations

import numpy as np

from ..angles import PLANE_PARAMETERIZATIONS
from ..bundle import TRIPLE_PLANE, Bundle
from ..output_encoding import OutputEncoding, OutputEncodingError
from ..quant import forward
from .common import EvalError, bilinear_lookup_np
from .relief import DirectionCoding, ReliefFrameError, ReliefSlope, has_relief_frame

WRAP_PLANES = ("U",)
"""Triple-plane planes addressed with wrap; the others (H, D) clamp to edge."""


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
