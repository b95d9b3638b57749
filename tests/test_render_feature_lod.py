"""Feature LoD (neumat.render.feature_mips, infer.slang uPlaneInto): the U plane's mip chain and
trilinear lookup, the close-up render unchanged to the bit, and a plane receding to the horizon
closer to a 16x supersampled render with LoD than without."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from neumat.material import bilinear_lookup_np
from neumat.render import shapes
from neumat.render.camera import Camera
from neumat.render.feature_mips import mip_chain, trilinear_lookup_np
from neumat.render.lights import DirectionalLight
from neumat.render.reference.pipeline import srgb_encode, tone_map

GRAVEL = Path(__file__).resolve().parents[1] / "assets" / "materials" / "gravel.nmat"
LIGHTS = [DirectionalLight((0.3, 0.2, 0.9))]


def test01_mip_chain_and_trilinear_lookup():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(16, 8, 3)).astype(np.float32)
    chain = mip_chain(plane)
    assert [c.shape[:2] for c in chain] == [(16, 8), (8, 4), (4, 2), (2, 1)]  # stops at odd sizes
    assert np.allclose(chain[1][2, 3], plane[4:6, 6:8].mean(axis=(0, 1)), atol=1e-6)
    assert np.allclose(chain[-1][0, 0], plane[:8].mean(axis=(0, 1)), atol=1e-6)
    st = rng.uniform(-1, 2, (200, 2)).astype(np.float32)
    cols = plane.shape[1]
    # footprint at most a texel: exactly the level-0 bilinear lookup
    small = np.full(200, -np.log2(cols) - 0.1, np.float32)
    assert np.array_equal(trilinear_lookup_np(chain, st, small), bilinear_lookup_np(plane, st, True))
    # integer lod: that level's bilinear lookup; half-way: the mean of two levels; beyond: the last
    for lod in (1, 2):
        got = trilinear_lookup_np(chain, st, np.full(200, lod - np.log2(cols), np.float32))
        assert np.allclose(got, bilinear_lookup_np(chain[lod], st, True), atol=1e-6)
    half = trilinear_lookup_np(chain, st, np.full(200, 1.5 - np.log2(cols), np.float32))
    mean = 0.5 * (bilinear_lookup_np(chain[1], st, True) + bilinear_lookup_np(chain[2], st, True))
    assert np.allclose(half, mean, atol=1e-6)
    far = trilinear_lookup_np(chain, st, np.full(200, 10.0, np.float32))
    assert np.allclose(far, bilinear_lookup_np(chain[-1], st, True), atol=1e-6)
    with pytest.raises(ValueError, match="rows, cols, C"):
        mip_chain(plane[..., 0])


@pytest.fixture(scope="module")
def renderer_factory(device):
    from neumat.bundle import load_bundle
    from neumat.render.renderer import Renderer

    bundle = load_bundle(GRAVEL)

    def make(mesh, size):
        return Renderer(bundle, mesh, size, device=device)

    return make


def render(r, camera, lod: bool, hf: bool = False):
    r.infer_pass(debug=True).feature_lod = lod  # the pass debug frames run (features AOV)
    return r.render(camera, LIGHTS, hf=hf, synthesis=False, shadows=False, aovs=("uv",), debug=True)


@pytest.mark.parametrize("hf", [False, True], ids=["plain", "relief"])
def test02_close_up_is_unchanged_to_the_bit(renderer_factory, hf):
    """Head-on, 0.15 units away: ~28 texels across 64 pixels, every footprint below a texel."""
    r = renderer_factory(shapes.plane(2.0, segments=2), (64, 64))
    cam = Camera(eye=(0.0, 0.0, 0.15), target=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0), fov_y=40, width=64, height=64)
    on, off = render(r, cam, True, hf), render(r, cam, False, hf)
    # uv.w: the ray cone (t * spread) cut by the plane, stretched 1/cos along the view (UV = scene
    # units here): log2 of the geometric mean of the axes
    _, d = cam.rays()
    t = on.aovs["gbuffer.position"][..., 3]
    expect = np.log2(t * cam.spread_angle / np.sqrt(np.abs(d[..., 2])))
    assert np.abs(on.aovs["gbuffer.uv"][..., 3] - expect).max() < 1e-3
    footprint = on.aovs["gbuffer.uv"][..., 3] + np.log2(256)  # level-0 texels (U plane 256 wide)
    assert footprint.max() < 0.0  # the premise: magnified everywhere
    assert np.array_equal(on.image, off.image) and np.array_equal(on.aovs["features"], off.aovs["features"])


def ldr(x: np.ndarray) -> np.ndarray:
    """Display values in [0, 1] (compose's ACES + sRGB) of linear radiance."""
    return np.clip(srgb_encode(np.clip(tone_map(x, "aces"), 0, 1)), 0, 1).astype(np.float32)


@pytest.mark.xfail(strict=True, reason="feature-space prefiltering does not average the appearance of "
                   "bundles trained on exact point samples: with the shipped gravel of 2026-12-04 LoD is "
                   "worse (FLIP 0.197 vs 0.109), so InferPass.feature_lod is off by default")
def test03_receding_plane_is_closer_to_supersampled_with_lod(renderer_factory):
    """A 40-unit plane (40 repeats of the 256-texel U plane) seen from 0.5 units up toward the
    horizon, 96x64, against the 384x256 render box-filtered 4x4 (16 samples per pixel). Measured
    with the gravel trained on 64² slices: FLIP 0.077 with LoD, 0.092 without; relative L1 0.10
    and 0.27. With the point-sampled gravel: FLIP 0.197 with LoD, 0.109 without."""
    import flip_evaluator

    w, h, s = 96, 64, 4
    mesh = shapes.plane(40.0, segments=8)
    cam = Camera(eye=(0.0, -19.0, 0.5), target=(0.0, -10.0, 0.0), fov_y=40, width=w, height=h)
    low = renderer_factory(mesh, (w, h))
    high = renderer_factory(mesh, (w * s, h * s))
    ref = render(high, dataclasses.replace(cam, width=w * s, height=h * s), False).image
    ref = ref.reshape(h, s, w, s, 3).mean(axis=(1, 3))
    errors = {}
    for lod in (True, False):
        img = render(low, cam, lod).image
        flip, _, _ = flip_evaluator.evaluate(ldr(ref), ldr(img), "LDR")
        errors[lod] = (float(np.mean(flip)), float(np.abs(img - ref).sum() / np.abs(ref).sum()))
    print(errors)
    assert errors[True][0] < 0.9 * errors[False][0]  # FLIP
    assert errors[True][1] < 0.6 * errors[False][1]  # relative L1
