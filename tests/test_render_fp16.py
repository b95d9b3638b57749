"""The FP16 inference path (``precision="fp16"``: dequantized weights rounded to float16, float16
activations and accumulation) against a numpy float16 evaluation of the same network on the
pass's own features (debug AOV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from neumat.material.triple_plane import bundle_output_encoding
from neumat.render.camera import Camera
from neumat.render.lights import DirectionalLight
from neumat.render.passes.infer import check_fp16, dequantized_weights
from neumat.render.renderer import Renderer

LEATHER = Path(__file__).resolve().parents[1] / "assets" / "materials" / "leather.nmat"
CAMERA = Camera.orbit(azimuth=-60.0, elevation=40.0, distance=3.0)
TOLERANCE = 4e-3
"""MLP output units ([0, 1]): a few float16 ulps (2^-11 relative) of the last layer's sum; the
device may round sums differently from numpy (float32 then float16) by one ulp per step."""


def mlp_fp16(bundle, features: np.ndarray) -> np.ndarray:
    """[N, 3] float16 MLP: products and running sums rounded to float16 in input order."""
    a = features.astype(np.float16)
    weights = [w.astype(np.float16) for w in dequantized_weights(bundle.mlps["rgb"])]
    for l, w in enumerate(weights):
        acc = np.zeros((a.shape[0], w.shape[0]), np.float16)
        for i in range(w.shape[1]):
            acc = (acc + (a[:, i:i + 1] * w[None, :, i]).astype(np.float16)).astype(np.float16)
        a = np.clip(acc, 0, 1) if l == len(weights) - 1 else np.maximum(acc, np.float16(0))
    return a.astype(np.float32)


def test01_fp16_matches_numpy_float16(device):
    try:
        check_fp16(device)
    except ValueError as e:
        pytest.skip(str(e))
    r = Renderer(LEATHER, "sphere", (48, 48), device=device)
    light = DirectionalLight((0.5, -0.4, 0.75), (1.0, 1.0, 1.0))
    half = r.render(CAMERA, [light], synthesis=False, precision="fp16", aovs=("btf", "mask"), debug=True)
    full = r.render(CAMERA, [light], synthesis=False, fp32=True, aovs=("btf",))
    mask = half.aovs["mask"][..., 0] > 0.5
    lit = half.aovs["directions"][..., 2] > 0
    sel = mask & lit
    assert sel.mean() > 0.2
    encoding = bundle_output_encoding(r.bundle)  # compared in MLP output units: encode(btf)
    got = encoding.encode(half.aovs["btf"][sel])
    expect = mlp_fp16(r.bundle, half.aovs["features"][sel])
    err = np.abs(got - expect)
    twin = np.abs(got - encoding.encode(full.aovs["btf"][sel]))
    print(f"fp16 vs numpy float16: max {err.max():.2e}, mean {err.mean():.2e}; vs fp32: max {twin.max():.2e}")
    assert err.max() < TOLERANCE
    assert twin.max() < 0.05  # float16 stays near the FP32 twin


def test02_unknown_precision(device):
    r = Renderer(LEATHER, "plane", (16, 16), device=device)
    with pytest.raises(ValueError, match="precision"):
        r.render(precision="int4")
