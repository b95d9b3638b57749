"""SynthesisPass.bake_relief_levels (shaders/acf_synthesis.slang BakedReliefLevels): the
synthesized relief's texels computed once per mesh give the relief_slope slot the same bits as
synthesizing them per pixel, inside the baked boxes, across their edges, outside them, and with
levels left out by the texel budget. Runs on the shipped leather (a relief-frame bundle)."""

from __future__ import annotations

import numpy as np
import pytest

from neumat.assets import DEFAULT_MATERIAL
from neumat.bundle import load_bundle
from neumat.render.passes.synthesis import RELIEF_SLOPE, SynthesisPass

MESH_UV = np.array([[0.3, 0.35], [0.75, 0.35], [0.3, 0.8], [0.75, 0.8]])
"""The UV corners of a mesh's texture box the bake covers."""


@pytest.fixture(scope="module")
def points():
    """float32 [24, 24, 2] UVs over [0.1, 0.95]² (inside the box, across its edges, outside)
    and footprints [24, 24] from a point (-inf) to the whole tile (log2 UV units)."""
    rng = np.random.default_rng(5)
    uv = rng.uniform(0.1, 0.95, (24, 24, 2)).astype(np.float32)
    footprint = rng.uniform(-12.0, 0.0, (24, 24)).astype(np.float32)
    footprint[::5] = -np.inf
    return uv, footprint


def synthesized_slope(device, uv, footprint, bake=None, max_texels=None) -> np.ndarray:
    synth = SynthesisPass.from_bundle(device, load_bundle(DEFAULT_MATERIAL))
    synth.feature_lod = True
    if bake is not None:
        kwargs = {} if max_texels is None else {"max_texels": max_texels}
        boxes = synth.bake_relief_levels(bake, **kwargs)
        assert len(boxes) == synth._height["levels"]
    return synth.synthesize(uv, footprint)[RELIEF_SLOPE]


def test01_baked_slope_equals_the_synthesized_one_to_the_bit(device, points):
    uv, footprint = points
    plain = synthesized_slope(device, uv, footprint)
    baked = synthesized_slope(device, uv, footprint, bake=MESH_UV)
    assert np.isfinite(plain).all() and np.abs(plain).max() > 0  # a real relief slope
    np.testing.assert_array_equal(baked, plain)


def test02_levels_beyond_the_texel_budget_are_synthesized_per_pixel(device, points):
    uv, footprint = points
    synth = SynthesisPass.from_bundle(device, load_bundle(DEFAULT_MATERIAL))
    boxes = synth.bake_relief_levels(MESH_UV, max_texels=3000)
    widths = [box[2] for box in boxes]
    assert widths[0] == 0 and widths[-1] > 0  # the finest levels do not fit, the coarsest do
    assert sum(box[2] * box[3] for box in boxes) <= 3000
    plain = synthesized_slope(device, uv, footprint)
    np.testing.assert_array_equal(synthesized_slope(device, uv, footprint, bake=MESH_UV, max_texels=3000), plain)


def test03_boxes_cover_the_slope_reads_of_the_uv_box(device):
    synth = SynthesisPass.from_bundle(device, load_bundle(DEFAULT_MATERIAL))
    cols = synth._height["cols"]
    for level, (x0, y0, w, h) in enumerate(synth.bake_relief_levels(MESH_UV)):
        n = cols >> level
        lo = np.floor(MESH_UV.min(0) * n - 0.5) - 1  # the first texel a slope at the box's corner reads
        hi = np.floor(MESH_UV.max(0) * n - 0.5) + 2
        assert x0 <= lo[0] and y0 <= lo[1] and x0 + w - 1 >= hi[0] and y0 + h - 1 >= hi[1]


def test04_bad_texture_coordinates_are_refused(device):
    synth = SynthesisPass.from_bundle(device, load_bundle(DEFAULT_MATERIAL))
    with pytest.raises(ValueError, match="finite texture coordinates"):
        synth.bake_relief_levels(np.array([[0.1, np.nan]]))
