"""Small random valid bundles, for tests, ``neumat doctor`` self-checks and demos.

The planes are smooth-ish random fields (not trained), the MLPs are random INT8 networks
whose scales keep activations in a useful range (:func:`neumat.quant.testvectors.random_mlp`).
"""

from __future__ import annotations

import numpy as np

from ..quant.testvectors import random_mlp
from .errors import BundleError
from .bundle import NEUMIP, TRIPLE_PLANE, Bundle


def make_random_bundle(
    rng: np.random.Generator,
    kind: str = TRIPLE_PLANE,
    u_res: int = 16,
    hd_res: int = 8,
    channels: int = 8,
    hidden: tuple[int, ...] = (32, 32, 32),
    plane_dtype: type | np.dtype = np.float16,
    order: tuple[str, ...] = ("U", "H", "D"),
    with_height: bool = True,
    direction_width: int = 2,
) -> Bundle:
    """A random valid :class:`Bundle`.

    Args:
        rng: the random source (results are reproducible from its seed).
        kind: ``"triple_plane"`` or ``"neumip"``.
        u_res: side of the spatial planes (U; NeuMIP's offset and rgb textures), texels.
        hd_res: side of the H and D planes (triple_plane only), texels.
        channels: channels per plane (the INM layout packs them 4 per RGBA layer).
        hidden: hidden-layer widths of every MLP.
        plane_dtype: float16 or float32.
        order: triple_plane input order of the planes (a permutation of U, H, D).
        with_height: add a float32 ``[u_res, u_res]`` height map in [0, 1] with range
            (-0.02, 0.03) UV units.
        direction_width: NeuMIP only: values per encoded direction (wi, wo).
    """

    def plane(res: int) -> np.ndarray:
        return rng.normal(0.0, 0.5, size=(res, res, channels)).astype(plane_dtype)

    extras: dict = {"provenance": {"source": "neumat.bundle.random_bundle"}}
    if with_height:
        extras["height"] = rng.uniform(0.0, 1.0, size=(u_res, u_res)).astype(np.float32)
        extras["height_range"] = (-0.02, 0.03)
    if kind == TRIPLE_PLANE:
        mlp = random_mlp((3 * channels, *hidden, 3), rng)
        return Bundle.triple_plane(plane(u_res), plane(hd_res), plane(hd_res), mlp, order=order, **extras)
    if kind == NEUMIP:
        offset_mlp = random_mlp((channels + direction_width, *hidden, 2), rng)
        rgb_mlp = random_mlp((channels + 2 * direction_width, *hidden, 3), rng)
        extras["provenance"]["max_offset"] = 0.05  # neumat.material.neumip.MAX_OFFSET_KEY, UV units
        return Bundle.neumip(plane(u_res), plane(u_res), offset_mlp, rgb_mlp, direction_width,
                             angle_param="local-xy-v1", **extras)  # neumat.material.neumip.DIRECTION_ENCODING
    raise BundleError(f"unknown model kind {kind!r}; use {TRIPLE_PLANE!r} or {NEUMIP!r}")
