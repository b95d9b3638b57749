"""With synthesis on, hf_trace marches the synthesized height (the same ACF tile shifts and
blend as the U features): the traced ``height`` AOV equals the synthesized height at the traced
uv — numpy reference :meth:`neumat.synthesis.Synthesizer.synthesize` — and no longer the tiled
map's. By default that relief is precomputed ("baked") at the map's texel centres over the
mesh's UV box; boxes over the texel budget fall back to the exact per-sample synthesis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neumat.bundle import load_bundle
from neumat.material.interp import bilinear
from neumat.render import shapes
from neumat.render.camera import Camera
from neumat.render.lights import DirectionalLight
from neumat.render.passes import MASK, UV, HfTracePass, RenderContext, ShellPass, SynthesisPass
from neumat.render.passes.shadow import SHADOW, ShadowPass
from neumat.render.renderer import Renderer
from neumat.render.scene import HeightSpec, Scene

LEATHER = Path(__file__).resolve().parents[1] / "assets" / "materials" / "leather.nmat"
CAMERA = Camera.orbit(azimuth=-60.0, elevation=35.0, distance=2.5)
TOLERANCE = 0.01
"""h01 units, traced height vs the relief the trace marches (the tiled map; the bilinear
interpolation of exact synthesized samples at the texel centres when baked). The hit's height is
linearly interpolated between two fine samples of the march: measured 99th percentile 0.0016
(tiled map: 0.0012); a few pixels (< 1%) where the fine steps step over a thin crest hit a
farther surface (as with the tiled map)."""
BAKED_TOLERANCE = 0.025
"""h01 units, traced height of the baked relief vs the exact synthesized height at the hit: the
synthesis maps a bilinear Gaussian read through a nonlinear inverse histogram, so the bilinear
interpolation of its texel-centre values differs from it inside a texel (as the tiled map is
the bilinear interpolation of its texels). Measured: 99th percentile 0.0167 (max 0.036) between
the two reliefs; traced vs exact 0.0178."""


def texel_bilinear(synthesizer, uv: np.ndarray, res: int) -> np.ndarray:
    """Bilinear interpolation at ``uv`` of the exact synthesized height at the texel centres of a
    ``res``-texels-per-UV-unit grid (what the baked relief holds)."""
    g = uv.astype(np.float64) * res - 0.5
    g0 = np.floor(g)
    f = g - g0
    c = {(dx, dy): synthesizer.synthesize(((g0 + (dx, dy) + 0.5) / res).astype(np.float32)).height
         for dx in (0, 1) for dy in (0, 1)}
    top = c[0, 0] * (1 - f[:, 0]) + c[1, 0] * f[:, 0]
    bottom = c[0, 1] * (1 - f[:, 0]) + c[1, 1] * f[:, 0]
    return top * (1 - f[:, 1]) + bottom * f[:, 1]


@pytest.mark.parametrize("synthesis", [True, False], ids=["synthesized", "tiled"])
def test01_traced_height_is_the_synthesized_height(device, synthesis):
    r = Renderer(LEATHER, "plane", (64, 64), device=device)
    res = r.render(CAMERA, [DirectionalLight()], synthesis=synthesis, aovs=("uv", "height", "mask"))
    mask = res.aovs["mask"][..., 0] > 0.5
    assert mask.mean() > 0.5
    height, uv = res.aovs["height"][mask, 0], res.aovs["uv"][mask]
    synthesizer = r.synthesis_pass().synthesizer
    synthesized = synthesizer.synthesize(uv).height
    tiled = bilinear(r.bundle.height.astype(np.float64), uv.astype(np.float64))
    if synthesis:
        marched = texel_bilinear(synthesizer, uv, r.bundle.height.shape[0])
        err = np.abs(height - synthesized)
        assert np.percentile(err, 99) < BAKED_TOLERANCE and np.mean(err > 0.05) < 0.01
        other = tiled
    else:
        marched, other = tiled, synthesized
    err = np.abs(height - marched)
    assert np.percentile(err, 99) < TOLERANCE and np.mean(err > 0.05) < 0.01
    assert np.percentile(np.abs(height - other), 50) > 0.05  # the two reliefs differ


def trace_synthesized(device, mesh, max_baked_texels, size=48):
    """shell + hf_trace of leather's synthesized relief on ``mesh``; (trace pass, g-buffer)."""
    bundle = load_bundle(LEATHER)
    cam = Camera.orbit(azimuth=-60.0, elevation=35.0, distance=2.5, width=size, height=size)
    scene = Scene(mesh, cam, height=HeightSpec.from_bundle(bundle, mesh))
    ctx = RenderContext(device, size, size)
    shell = ShellPass(device, scene)
    trace = HfTracePass(device, scene, shell=shell, max_baked_texels=max_baked_texels)
    trace.synthesis = SynthesisPass.from_bundle(device, bundle)
    return trace, trace.execute(ctx, shell.execute(ctx, {}))


HEIGHT_AGREEMENT = 0.025
"""h01 units, 99th percentile of |baked - exact| traced height: the baked relief's interpolation
error (BAKED_TOLERANCE). Measured 0.020 (max 0.06)."""
MASK_AGREEMENT = 0.005
"""Fraction of pixels whose mask differs (silhouette pixels where the slightly different relief
is or is not met). Measured: 0."""
SHADOW_AGREEMENT = 0.03
"""Fraction of pixels (on both masks) whose shadow bit differs: shadow boundaries move with the
relief's interpolation error. Measured: 0.011 (5.9% of the pixels shadowed)."""


def test02_baked_relief_agrees_with_the_exact_fallback(device):
    mesh = shapes.plane(2.0, segments=8)
    baked, out_baked = trace_synthesized(device, mesh, max_baked_texels=4096 ** 2)
    exact, out_exact = trace_synthesized(device, mesh, max_baked_texels=0)
    assert (baked.relief, exact.relief) == ("baked", "exact")
    mask_b, mask_e = (o[MASK].numpy()[..., 0] > 0.5 for o in (out_baked, out_exact))
    assert mask_b.mean() > 0.3
    assert np.mean(mask_b != mask_e) <= MASK_AGREEMENT
    both = mask_b & mask_e
    dh = np.abs(out_baked[UV].numpy()[both, 2] - out_exact[UV].numpy()[both, 2])
    print(f"mask differs {np.mean(mask_b != mask_e):.4f}; |dh| 99% {np.percentile(dh, 99):.4f} max {dh.max():.4f}")
    assert np.percentile(dh, 99) < HEIGHT_AGREEMENT and np.mean(dh > 0.05) < 0.01
    visibility = []
    for trace, gbuffer in ((baked, out_baked), (exact, out_exact)):
        shadow = ShadowPass(device, trace)
        shadow.lights = [DirectionalLight((0.8, 0.3, 0.52))]  # ~58° from the normal
        visibility.append(shadow.execute(RenderContext(device, 48, 48), gbuffer)[SHADOW].numpy()[both, 0])
    shadowed = 1.0 - visibility[1].mean()
    differ = np.mean(visibility[0] != visibility[1])
    print(f"shadowed {shadowed:.3f}, shadow bits differ {differ:.4f}")
    assert shadowed > 0.02 and differ <= SHADOW_AGREEMENT


def test03_fallback_when_the_uv_box_exceeds_the_budget(device):
    """A plane whose UVs span 20 x 20 tiles needs (20 * 256 + pad)^2 > 4096^2 texels: exact."""
    huge = shapes.plane(2.0, segments=2, uv_per_unit=10.0)
    trace, out = trace_synthesized(device, huge, max_baked_texels=4096 ** 2, size=16)
    assert trace.relief == "exact"
    assert (out[MASK].numpy() > 0.5).mean() > 0.3  # and it still traces
    small, _ = trace_synthesized(device, shapes.plane(2.0, segments=2), max_baked_texels=4096 ** 2, size=16)
    assert small.relief == "baked"
