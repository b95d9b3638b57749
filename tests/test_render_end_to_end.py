"""End to end: the shipped leather bundle rendered by neumat (shell → hf_trace → infer →
compose, INT8, synthesis off) against the ground truth of the same synthetic material.

Ground truth: the material the bundle was trained on, rebuilt from its provenance
(:func:`neumat.material.require_source_spec` → :func:`neumat.train.sources.make_source`), and the
slice renderer that produced its training data (:class:`neumat.data.slice_renderer.SliceRenderer`,
``uv_space="surface"``, shadows on): every camera ray is intersected exactly with the
displaced height field (:meth:`neumat.material.heightfield.HeightField.first_hit`) and the BTF
value of the hit's uv under (ωi, ωo) is the reference pixel. The scene is a plane (uv = scene
units, relief = the material's height_scale, so the renderer's parallax is the data's) seen
by a distant narrow-FOV camera at (θo, φo) and lit by a unit-irradiance DirectionalLight at
(θi, φi), so radiance = BTF value and ωo varies by < 1° over the image.

PSNR uses :func:`neumat.metrics.psnr` (peak 1, BTF units) over the pixels both see (and where the
reference point is not masked from ωo), on the radiance (traced shadows on). Measured (64²,
INT8) with the leather of 2026-12-04 (point-sampled, self-shadowing left to the renderer): 51.5
dB (top view), 46.8 dB (oblique), 44.1 dB (θo = 65°), 49.7 dB (θi = 78°; 42.6 dB without
traced shadows); the leather before it (slices, shadows in the data): 37.5 / 32.3 / 30.8 /
37.9 dB. This is the trained model's own error (the renderer's ``btf`` AOV matches the numpy
evaluation of the bundle at 90+ dB); bound 28 dB.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from neumat.bundle import load_bundle
from neumat.material import require_source_spec
from neumat.material.triple_plane import render_int8
from neumat.metrics import error_metrics
from neumat.render.camera import Camera
from neumat.render.lights import DirectionalLight
from neumat.render.renderer import Renderer
from neumat.render.shapes import plane
from neumat.train.sources import make_source

LEATHER = Path(__file__).resolve().parents[1] / "assets" / "materials" / "leather.nmat"
SIZE = 64
PSNR_BOUND_DB = 28.0
"""Measured 44.1–51.5 dB (module docstring)."""
CONFIGS = [(0.0, 0.0, 30.0, 40.0), (40.0, 120.0, 35.0, -60.0), (65.0, 30.0, 45.0, 200.0), (30.0, 0.0, 78.0, 180.0)]
"""(θo, φo, θi, φi) degrees, in the plane's frame (x = u, y = v, z = normal): top, oblique,
grazing view, grazing light."""


def spherical(theta: float, phi: float) -> np.ndarray:
    t, p = math.radians(theta), math.radians(phi)
    return np.array([math.sin(t) * math.cos(p), math.sin(t) * math.sin(p), math.cos(t)])


@pytest.fixture(scope="module")
def setup(device):
    bundle = load_bundle(LEATHER)
    spec = require_source_spec(bundle)
    assert spec["points"]["uv_space"] == "surface"  # the renderer's hf tracing adds the parallax
    source = make_source(spec)
    from neumat.data.slice_renderer import SliceRenderer

    truth = SliceRenderer(source.material, source.config.normal_source)
    # plane of side 2 centred at 0: u = x + 1, v = y + 1 (whole periods: the same tile as u = x)
    renderer = Renderer(bundle, plane(2.0, segments=8), (SIZE, SIZE), device=device)
    # the btf check compares with the level-0 model (render_int8); oblique views' footprints
    # exceed a texel, where feature LoD would blend mip levels (tests/test_render_feature_lod.py)
    for debug in (False, True):
        renderer.infer_pass(debug).feature_lod = False
    assert renderer.height_spec.d_hi == pytest.approx(source.material.height_scale)
    return bundle, truth, renderer


def render_vs_truth(setup, config, shadows: bool) -> float:
    """PSNR (dB) of neumat's radiance against the ground truth for one (θo, φo, θi, φi); also
    checks the shading frame and the btf AOV on the way."""
    bundle, truth, renderer = setup
    wo, wi = spherical(*config[:2]), spherical(*config[2:])
    up = (0.0, 1.0, 0.0) if config[0] == 0 else (0.0, 0.0, 1.0)
    cam = Camera(eye=tuple(20.0 * wo), target=(0.0, 0.0, 0.0), up=up, fov_y=2.0, width=SIZE, height=SIZE)
    res = renderer.render(cam, [DirectionalLight(tuple(wi), (1.0, 1.0, 1.0))], hf=True, synthesis=False,
                          shadows=shadows, aovs=("uv", "mask", "btf"), debug=True)
    # ground truth: exact first hit of every camera ray, BTF value there
    origin, direction = cam.rays()
    t = truth.field.first_hit(origin.reshape(-1, 3), direction.reshape(-1, 3))
    hit = np.isfinite(t)
    p = origin.reshape(-1, 3) + np.where(hit, t, 0.0)[:, None] * direction.reshape(-1, 3)
    mask = res.aovs["mask"].reshape(-1) > 0.5
    assert np.mean(mask == hit) > 0.999
    both = mask & hit
    gt = truth.render_points(p[both, :2], wo, wi[None], "surface", shadows=True)[0]
    valid = np.all(np.isfinite(gt), axis=1)  # NaN: the point is masked from ωo (grazing only)
    assert valid.mean() > 0.99
    # the renderer's shading frame is the plane's: its directions are the analytic ones
    d = res.aovs["directions"].reshape(-1, 8)[both]
    assert np.abs(d[:, :3] - wi).max() < 1e-4
    assert np.abs(d[:, 4:7] + direction.reshape(-1, 3)[both]).max() < 2e-3
    # the btf AOV equals the numpy evaluation of the bundle at the true configuration
    btf = res.aovs["btf"].reshape(-1, 3)[both]
    model = render_int8(bundle, res.aovs["uv"].reshape(-1, 2)[both],
                        np.broadcast_to(wi, btf.shape).astype(np.float32), d[:, 4:7])
    assert error_metrics(btf, model)["psnr"] > 80.0
    radiance = res.image.reshape(-1, 3)[both]  # unit irradiance: the BTF value × traced visibility
    got = error_metrics(radiance[valid], gt[valid])
    print(f"{config} shadows {shadows}: PSNR {got['psnr']:.2f} dB over {got['valid']} px")
    return got["psnr"]


@pytest.mark.parametrize("config", CONFIGS, ids=["top", "oblique", "grazing", "grazing_light"])
def test01_render_matches_ground_truth(setup, config):
    assert render_vs_truth(setup, config, shadows=True) > PSNR_BOUND_DB


def test02_traced_shadows_bring_the_render_closer(setup):
    """At a grazing light the relief casts shadows (42% of the pixels): the material leaves
    self-shadowing to the renderer, so the traced shadows make them (measured +7.1 dB)."""
    config = CONFIGS[-1]
    assert render_vs_truth(setup, config, shadows=True) > render_vs_truth(setup, config, shadows=False) + 0.5
