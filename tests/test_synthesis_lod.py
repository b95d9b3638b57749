"""Prefiltered synthesis (feature LoD of the synthesized planes: neumat.synthesis.prefilter,
relief; acf_synthesis.slang synthesizeLod / reliefSlopeLod): level 0 unchanged to the bit
below a texel, the level statistics of the shipped gravel against its own mip chain, the
prefiltered relief flattening to the macro frame, and the Slang pass against numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neumat.bundle import load_bundle, make_random_bundle
from neumat.material import bilinear_lookup_np
from neumat.material.mips import mip_chain
from neumat.render.passes.synthesis import RELIEF_SLOPE, U_FEATURES, SynthesisPass
from neumat.synthesis import SynthesisConfig, Synthesizer
from neumat.synthesis.prefilter import blend_level
from neumat.synthesis.tiling import dual_tile_sample

GRAVEL = Path(__file__).resolve().parents[1] / "assets" / "materials" / "gravel.nmat"
FEATURE_TOLERANCE = 1e-5
"""Slang vs numpy, features (plane units): float32 rounding of the trilinear blend; measured
max 3.7e-7 on the random bundle below."""
SLOPE_TOLERANCE = 1e-5
"""Slang vs numpy, relief slope (UV per UV): measured max 1.5e-7 (slopes up to 0.6)."""


@pytest.fixture(scope="module")
def random_synth():
    bundle = make_random_bundle(np.random.default_rng(5), u_res=32, channels=4)
    extent = bundle.height_range[1] - bundle.height_range[0]
    return bundle, Synthesizer.from_bundle(bundle, SynthesisConfig(tile_size=0.3, seed=11)), extent


def _points(n: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.5, 2.5, (n, 2)).astype(np.float32), rng


def test01_below_a_texel_is_level_zero_to_the_bit(random_synth):
    _, synth, extent = random_synth
    uv, _ = _points(300, 0)
    for small in (np.full(300, -np.log2(32) - 0.01, np.float32), np.full(300, np.nan, np.float32),
                  np.full(300, -np.inf, np.float32)):
        assert np.array_equal(synth.synthesize(uv, footprint=small).features, synth.synthesize(uv).features)
        assert np.array_equal(synth.relief_slope(uv, extent, small), synth.relief_slope(uv, extent))
    with pytest.raises(ValueError, match="histogram"):
        synth.synthesize(uv, "linear", footprint=small)


def test02_prefiltered_relief_flattens_to_the_macro_frame(random_synth):
    """Mean |slope| falls with the footprint and is 0 at the last (1 x 1) level. The slope is
    read one level finer than the footprint's lod (synthesis/relief.py SLOPE_LEVEL_SHIFT): up to
    two U texels (32 wide: footprint -4) it is the level-0 slope, and the 1 x 1 level (5) is
    reached at footprint 1."""
    _, synth, extent = random_synth
    uv, _ = _points(300, 1)
    means = [float(np.abs(synth.relief_slope(uv, extent, np.full(300, f, np.float32))).mean())
             for f in (-5.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0)]
    assert means[0] == means[1], means  # level 0 up to two U texels
    assert all(b < a for a, b in zip(means[1:], means[2:5])), means
    assert means[0] > 0.05 and means[-1] == 0.0, means
    # trilinear: half-way between two levels is the mean of the two
    mid = synth.relief_slope(uv, extent, np.full(300, -2.5, np.float32))
    ends = [synth.relief_slope(uv, extent, np.full(300, f, np.float32)) for f in (-3.0, -2.0)]
    np.testing.assert_allclose(mid, 0.5 * (ends[0] + ends[1]), atol=1e-6)


def test03_gravel_levels_match_its_own_mip_chain():
    """Synthesized level l of the shipped gravel's U plane against level l of the exemplar's
    chain read (bilinear) at the same points — the features LoD without synthesis reads: per
    channel std ratio and mean. Measured (seed 0, 256² points over 4 x 4 UV), worst channel of
    |std ratio - 1| at levels 1-5: 0.02, 0.08, 0.12, 0.12, 0.23 (the v4 gravel of 2026-12-07; the
    v3 one read 0.06, 0.14, 0.12, 0.19, 0.18: level 5 has 8 x 8 texels, a noisy std); means
    within 0.17 % of the channel's range; the 1 x 1 level gives the exemplar mean to 7e-5 of the range (prefilter.py's
    table has levels 1-7 over 3 seeds; levels 6-7, 16 and 4 texels, are not bounded here)."""
    bundle = load_bundle(GRAVEL)
    u = np.asarray(bundle.planes["U"], np.float32)
    synth = Synthesizer.from_planes(u, None, SynthesisConfig())
    g = (np.arange(256) + 0.37) * 4.0 / 256
    uv = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2).astype(np.float32)
    sample = dual_tile_sample(uv, 0.5, synth.tables, 0)
    chain, span = mip_chain(u), u.max(axis=(0, 1)) - u.min(axis=(0, 1))
    for level in range(1, 6):
        got = blend_level(synth.u_prefiltered, level, uv, sample, synth.tables.shape)
        ref = bilinear_lookup_np(chain[level], uv, True)
        ratio = got.std(axis=0) / ref.std(axis=0)
        assert np.all(np.abs(ratio - 1) < 0.25), (level, ratio)
        assert np.all(np.abs(got.mean(axis=0) - ref.mean(axis=0)) < 0.005 * span), level
    last = blend_level(synth.u_prefiltered, len(chain) - 1, uv, sample, synth.tables.shape)
    assert np.abs(last - u.mean(axis=(0, 1))).max() < 1e-3 * span.max()


def test04_slang_matches_numpy_with_lod(device, random_synth):
    bundle, synth, extent = random_synth
    pass_ = SynthesisPass(device, synth, extent)
    uv, rng = _points(16 * 24, 2)
    uv = uv.reshape(16, 24, 2)
    footprint = rng.uniform(-8, 1, (16, 24)).astype(np.float32)  # lod -3 .. 6: every level
    off = pass_.synthesize(uv, footprint)  # feature_lod off: the footprint is not read
    pass_.feature_lod = True
    small = pass_.synthesize(uv, np.full((16, 24), -5.5, np.float32))
    assert all(np.array_equal(off[k], small[k]) for k in off)  # below a texel: level 0, bit for bit
    on = pass_.synthesize(uv, footprint)
    ref = synth.synthesize(uv, footprint=footprint).features
    assert np.abs(on[U_FEATURES] - ref).max() < FEATURE_TOLERANCE
    assert np.abs(on[U_FEATURES] - off[U_FEATURES]).max() > 0.1  # prefiltered where minified
    slope = synth.relief_slope(uv.reshape(-1, 2), extent, footprint.ravel())
    assert np.abs(on[RELIEF_SLOPE].reshape(-1, 2) - slope).max() < SLOPE_TOLERANCE


def test09_learned_levels_get_histogram_matched_luts():
    """A bundle with stored (learned) U levels: level l's LUT maps the box chain of the
    Gaussianized plane onto the stored level's values (per channel, quantiles within 2 % of
    the channel's range); level 0 and bundles without levels keep the analytic LUTs."""
    import dataclasses

    from neumat.bundle import make_random_bundle
    from neumat.synthesis.histogram import inverse_histogram
    from neumat.synthesis.synthesizer import Synthesizer

    rng = np.random.default_rng(21)
    bundle = make_random_bundle(rng, u_res=64, channels=3, plane_dtype=np.float32)
    levels = tuple((2.0 * lv + 0.3).astype(np.float32) for lv in mip_chain(bundle.planes["U"])[1:])
    plain = Synthesizer.from_bundle(bundle).u_prefiltered
    learned = Synthesizer.from_bundle(dataclasses.replace(bundle, u_levels=levels)).u_prefiltered
    assert np.array_equal(plain.luts[0], learned.luts[0]) and not np.array_equal(plain.luts[1], learned.luts[1])
    for level in (1, 2, 3):
        t = learned.chain[level]
        got = inverse_histogram(learned.luts[level], t.reshape(-1, t.shape[2]))
        want = levels[level - 1].reshape(-1, t.shape[2])
        span = want.max(axis=0) - want.min(axis=0)
        q = np.linspace(0.05, 0.95, 19)
        assert np.all(np.abs(np.quantile(got, q, axis=0) - np.quantile(want, q, axis=0)) < 0.02 * span)
