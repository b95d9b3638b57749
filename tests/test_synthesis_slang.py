"""shaders/acf_synthesis.slang (through neumat.render.passes.synthesis) against the numpy
reference neumat.synthesis: identical tile shifts, features and heights within
FEATURE_TOLERANCE.

Runs on whatever device neumat.device picks (Vulkan on lavapipe on CPU-only machines);
skipped with the reason when no device can be created.
"""

from __future__ import annotations

import numpy as np
import pytest

from neumat.bundle import make_random_bundle
from neumat.data.materials import make_material
from neumat.render.passes.base import MASK, UV, RenderContext, Resource, SlotSpec
from neumat.render.passes.synthesis import RELIEF_SLOPE, SYNTH_HEIGHT, TILE_SHIFTS, U_FEATURES, SynthesisPass
from neumat.synthesis import SynthesisConfig, Synthesizer

FEATURE_TOLERANCE = 1e-4
"""Absolute tolerance on features / heights (float32 rounding of sqrt, division and the
bilinear / LUT interpolation may differ by an ulp; measured max 4.7e-6 on stone_tiles)."""


def _uv_grid(n: int, origin: float, step: float) -> np.ndarray:
    """float32 [n, n, 2] UVs starting at ``origin`` (negative: tiles with negative indices)."""
    g = origin + step * (np.arange(n) + 0.37)
    return np.stack(np.meshgrid(g, g * 1.03), -1).astype(np.float32)


def _compare(synth: Synthesizer, gpu: dict[str, np.ndarray], uv: np.ndarray) -> float:
    ref = synth.synthesize(uv)
    shifts = gpu[TILE_SHIFTS].reshape(*uv.shape[:2], 2, 2).transpose(2, 0, 1, 3)
    np.testing.assert_array_equal(shifts, ref.sample.shift)
    err = float(np.abs(gpu[U_FEATURES] - ref.features).max())
    assert err < FEATURE_TOLERANCE
    if ref.height is not None:
        assert np.abs(gpu[SYNTH_HEIGHT][..., 0] - ref.height).max() < FEATURE_TOLERANCE
    return err


def test01_material_plane_matches_reference(device):
    m = make_material("stone_tiles", 128, 0)
    u = np.concatenate([m.albedo, m.height[..., None], m.roughness[..., None]], -1)
    synth = Synthesizer.from_planes(u, m.height, SynthesisConfig(tile_size=0.5, seed=5))
    uv = _uv_grid(256, -1.3, 4.0 / 256)
    gpu = SynthesisPass(device, synth).synthesize(uv)
    assert gpu[U_FEATURES].shape == (256, 256, 5) and gpu[TILE_SHIFTS].dtype == np.int32
    _compare(synth, gpu, uv)
    distinct = np.unique(gpu[TILE_SHIFTS].reshape(-1, 2), axis=0)
    assert len(distinct) > 20  # offsets really vary over the 4x4 exemplar area


def test02_bundle_and_unequal_resolutions_match_reference(device):
    bundle = make_random_bundle(np.random.default_rng(1), u_res=32, channels=8)
    config = SynthesisConfig(tile_size=0.3, gamma=3.0, seed=123456789)
    pass_ = SynthesisPass.from_bundle(device, bundle, config)
    uv = _uv_grid(96, -0.7, 2.5 / 96)
    _compare(pass_.synthesizer, pass_.synthesize(uv), uv)
    # non-square U plane, height map at twice its resolution (shift = 2 height texels / texel)
    rng = np.random.default_rng(2)
    u = rng.normal(size=(24, 40, 3)).astype(np.float16)
    height = rng.uniform(size=(48, 80)).astype(np.float32)
    synth = Synthesizer.from_planes(u, height, SynthesisConfig(tile_size=0.25, seed=9))
    _compare(synth, SynthesisPass(device, synth).synthesize(uv), uv)


def test03_execute_follows_the_pass_interface(device):
    bundle = make_random_bundle(np.random.default_rng(4), u_res=16, channels=4, with_height=False)
    pass_ = SynthesisPass.from_bundle(device, bundle)
    specs = pass_.reflect()
    assert specs[U_FEATURES] == SlotSpec("float32", 4) and specs[TILE_SHIFTS] == SlotSpec("int32", 4)
    width, height = 7, 5
    uv = np.zeros((height, width, 4), np.float32)
    uv[..., :2] = _uv_grid(7, 0.1, 0.2)[:height]
    import slangpy as spy

    buffer = device.create_buffer(usage=spy.BufferUsage.shader_resource, data=uv.reshape(-1))
    covered = np.arange(width * height).reshape(height, width) % 3 != 0  # pixels showing the material
    mask = device.create_buffer(usage=spy.BufferUsage.shader_resource, data=covered.astype(np.float32).ravel())
    ctx = RenderContext(device, width, height)
    out = pass_.execute(ctx, {UV: Resource(buffer, SlotSpec("float32", 4), width, height),
                              MASK: Resource(mask, SlotSpec("float32", 1), width, height)})
    assert set(out) == {U_FEATURES, SYNTH_HEIGHT, TILE_SHIFTS, RELIEF_SLOPE}
    ref = pass_.synthesizer.synthesize(uv[..., :2])
    got = out[U_FEATURES].numpy()
    assert np.abs(got[covered] - ref.features[covered]).max() < FEATURE_TOLERANCE
    assert not got[~covered].any() and not out[TILE_SHIFTS].numpy()[~covered].any()  # skipped: zeros
    with pytest.raises(ValueError, match="missing inputs"):
        pass_.execute(ctx, {})
