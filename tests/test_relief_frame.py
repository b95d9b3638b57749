"""The relief frame (neumat.material.relief, shaders/relief_frame.slang): the slope of a
material's height map at any uv, on the host and in the passes, and its use by v3 and v4 bundles
(v3: the bilinear slope texels; v4: the slope of the bilinear unit texel normals).

Tolerances: the tiled slope is the same float32 arithmetic in the same order in numpy and Slang
(``precise``), compared exactly for v3. v4's adds a square root and three divisions per texel and
two at the end, which Vulkan does not round correctly everywhere (lavapipe: 1-2 ulp apart,
|diff| <= 9e-8 on slopes <= 0.75), so v4 is compared to 8 ulp of max(1, |slope|). The synthesized relief's slope differs from numpy's by the
synthesized heights' float32 rounding (tests/test_synthesis_slang.py: <= 1e-4 per height),
times the central-difference factor ``extent * res / 2``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from neumat.angles import MINROT_PLANE_PARAMETERIZATION, PLANE_PARAMETERIZATION, RELIEF_SLOPE_PLANE_PARAMETERIZATION
from neumat.angles import plane_coords
from neumat.bundle import make_random_bundle
from neumat.material import DirectionCoding, EvalError, ReliefSlope, bilinear_lookup_np, slope_texels
from neumat.material.heightfield import HeightField
from neumat.material.mips import lookup_at_lod_np, slope_level_of_detail
from neumat.material.triple_plane import bundle_features, bundle_relief, check_triple_plane
from neumat.render.passes.synthesis import RELIEF_SLOPE, SynthesisPass
from neumat.synthesis import SynthesisConfig

KERNELS = Path(__file__).with_name("test_relief_frame.slang")


def test01_slope_texels_are_central_differences():
    """A sine ridge along u: G_u = extent * d/du of the height, within the central difference's
    O(texel^2) error; G_v = 0; wrapping at the tile border; bilinear between texel centres."""
    rows, cols, extent = 16, 64, 0.05
    c = np.arange(cols)
    height = np.tile(0.5 + 0.5 * np.sin(2 * np.pi * (c + 0.5) / cols), (rows, 1)).astype(np.float32)
    g = slope_texels(height, (0.01, 0.01 + extent))
    exact = extent * 0.5 * 2 * np.pi * np.cos(2 * np.pi * (c + 0.5) / cols)
    assert g.shape == (rows, cols, 2) and g.dtype == np.float32
    assert np.max(np.abs(g[0, :, 0] - exact)) < 0.01 * np.max(np.abs(exact))
    assert np.all(g[..., 1] == 0)
    relief = ReliefSlope.from_height(height, (0.01, 0.01 + extent))
    centres = np.stack([(c + 0.5) / cols, np.full(cols, 0.5 / rows)], -1).astype(np.float32)
    np.testing.assert_array_equal(relief.at(centres), g[0])
    np.testing.assert_array_equal(relief.at(centres + 1), g[0])  # the relief repeats
    mid = relief.at(np.array([[1.0 / cols, 0.5]], np.float32))[0, 0]  # halfway between texels 0 and 1
    assert mid == pytest.approx((g[0, 0, 0] + g[0, 1, 0]) / 2, rel=1e-6)


def test02_bundles_choose_their_frame():
    """v3 bundles read their height map's relief; bundles without one are flat (v3 = v2 there);
    v2 bundles have none; a height range in scene units is refused with a clear error."""
    rng = np.random.default_rng(2)
    bundle = make_random_bundle(rng, u_res=16, channels=4)
    assert bundle.angle_param == PLANE_PARAMETERIZATION
    relief = bundle_relief(bundle)
    np.testing.assert_array_equal(relief.texels, slope_texels(bundle.height, bundle.height_range))
    uv = rng.uniform(-1, 2, (500, 2)).astype(np.float32)
    wi = np.tile([[0.3, -0.2, 0.93]], (500, 1)).astype(np.float32)
    wo = np.tile([[-0.5, 0.1, 0.86]], (500, 1)).astype(np.float32)
    v3 = bundle_features(bundle, uv, wi, wo)
    flat = bundle_features(bundle, uv, wi, wo, relief=None)
    assert np.abs(v3 - flat).max() > 1e-3  # the relief turns the directions
    v2 = make_random_bundle(np.random.default_rng(2), u_res=16, channels=4)
    v2.angle_param = MINROT_PLANE_PARAMETERIZATION
    assert bundle_relief(v2) is None
    np.testing.assert_array_equal(bundle_features(v2, uv, wi, wo), flat)
    no_height = make_random_bundle(np.random.default_rng(3), u_res=16, channels=4, with_height=False)
    assert bundle_relief(no_height) is None
    world = make_random_bundle(np.random.default_rng(4), u_res=16, channels=4)
    world.height_units = "world"
    with pytest.raises(EvalError, match="UV units"):
        check_triple_plane(world)
    h, d = DirectionCoding(PLANE_PARAMETERIZATION, relief).coords(uv, wi, wo)
    assert h.dtype == np.float32 and h.shape == (500, 2)
    assert relief.normals  # v4 by default
    v3 = make_random_bundle(np.random.default_rng(2), u_res=16, channels=4)
    v3.angle_param = RELIEF_SLOPE_PLANE_PARAMETERIZATION
    assert not bundle_relief(v3).normals


def test02b_v3_reads_the_bilinear_slope_exactly_as_before():
    """v3 bundles: features from the bilinear slope texels, and with footprints the trilinear
    slope chain, bit for bit as before v4 existed (bilinear / lookup_at_lod_np of the texels)."""
    rng = np.random.default_rng(12)
    bundle = make_random_bundle(rng, u_res=16, channels=4)
    bundle.angle_param = RELIEF_SLOPE_PLANE_PARAMETERIZATION
    relief = bundle_relief(bundle)
    uv = rng.uniform(-1, 2, (2000, 2)).astype(np.float32)
    footprint = rng.uniform(-9, 1, 2000).astype(np.float32)
    wi = np.tile([[0.3, -0.2, 0.93]], (2000, 1)).astype(np.float32)
    wo = np.tile([[-0.5, 0.1, 0.86]], (2000, 1)).astype(np.float32)
    point = bilinear_lookup_np(relief.texels, uv, wrap=True)
    np.testing.assert_array_equal(relief.at(uv), point)
    cols = relief.texels.shape[1]
    lod = slope_level_of_detail(footprint, 16, cols, len(relief.chain))
    np.testing.assert_array_equal(relief.at(uv, footprint), lookup_at_lod_np(relief.chain, uv, lod))
    h, d = plane_coords(wi, wo, RELIEF_SLOPE_PLANE_PARAMETERIZATION, point)
    h3, d3 = DirectionCoding(bundle.angle_param, relief).coords(uv, wi, wo)
    np.testing.assert_array_equal(h3, h.astype(np.float32))
    np.testing.assert_array_equal(d3, d.astype(np.float32))


def test02c_v4_slope_is_the_interpolated_shading_normal():
    """v4's point slope is that of HeightField.normal_at (the bilinear unit texel normals,
    renormalized: the BTF's and the fidelity reference's shading normal) within float32
    rounding; v3's differs from it on a steep relief; with footprints, level 0 is the v4 point
    slope and the coarser levels are the slope chain's (same as v3 from level 1 on)."""
    rng = np.random.default_rng(13)
    res, scale = 32, 0.08
    height = rng.uniform(size=(res, res)).astype(np.float32)
    v4 = ReliefSlope.from_height(height, (0.0, scale), normals=True)
    v3 = ReliefSlope.from_height(height, (0.0, scale))
    uv = rng.uniform(-1, 2, (5000, 2)).astype(np.float32)
    n = HeightField(height, scale).normal_at(uv.astype(np.float64) % 1.0)
    ref = -n[:, :2] / n[:, 2:3]
    s4 = v4.at(uv)
    assert np.abs(s4 - ref).max() < 1e-5 * (1 + np.abs(ref).max())
    assert np.abs(v3.at(uv) - ref).max() > 0.05  # the two rules differ on steep texels
    centres = ((np.stack(np.meshgrid(np.arange(res), np.arange(res), indexing="xy"), -1).reshape(-1, 2) + 0.5)
               / res).astype(np.float32)
    np.testing.assert_allclose(v4.at(centres), v3.at(centres), rtol=1e-5, atol=1e-6)  # at texel centres: G
    footprint = np.full(len(uv), np.float32(np.log2(4.0 / res)))  # lod 2: levels 2 and 3 alone
    np.testing.assert_array_equal(v4.at(uv, footprint), v3.at(uv, footprint))
    footprint = np.full(len(uv), np.float32(np.log2(1.5 / res)))  # 0 < lod < 1: level 0 blended
    lod = slope_level_of_detail(footprint, res, res, len(v4.chain))
    f = (lod - np.floor(lod))[:, None]
    one = bilinear_lookup_np(v4.chain[1], uv, True)
    np.testing.assert_array_equal(v4.at(uv, footprint), s4 + (one - s4) * f)


@pytest.fixture(scope="module")
def device():
    from neumat.device import DeviceError, default_device

    try:
        return default_device()
    except DeviceError as e:
        pytest.skip(f"no slangpy device on this machine: {e}")


@pytest.mark.parametrize("normals", [False, True], ids=["v3", "v4"])
def test03_slang_tiled_slope_is_bit_exact(device, normals):
    """reliefPointSlope of the tiled height map equals ReliefSlope.at bit for bit, at uvs inside,
    outside and on the border of the tile, on a non-square map, for v3's and v4's point slope."""
    import slangpy as spy

    rng = np.random.default_rng(3)
    height = rng.uniform(size=(24, 40)).astype(np.float32)
    extent = 0.037
    uv = np.concatenate([rng.uniform(-2, 3, (20000, 2)),
                         np.array([[0, 0], [1, 1], [0.5 / 40, 0.5 / 24], [-1e-7, 1 - 1e-7]])]).astype(np.float32)
    module = device.load_module_from_source("neumat_test_relief_frame", KERNELS.read_text(), path=str(KERNELS))
    kernel = device.create_compute_kernel(device.link_program([module], [module.entry_point("relief_slopes")]))
    usage = spy.BufferUsage.shader_resource
    result = device.create_buffer(usage=spy.BufferUsage.unordered_access, size=8 * len(uv))
    kernel.dispatch(thread_count=[len(uv), 1, 1], uv=device.create_buffer(usage=usage, data=uv.ravel()),
                    height={"heights": device.create_buffer(usage=usage, data=height.ravel()), "rows": 24, "cols": 40},
                    extent=float(np.float32(extent)), normals=int(normals), result=result, count=len(uv))
    got = result.to_numpy().view(np.float32).reshape(-1, 2)
    ref = ReliefSlope.from_height(height, (0.0, extent), normals=normals).at(uv)
    if normals:
        assert np.all(np.abs(got - ref) <= 8 * np.finfo(np.float32).eps * np.maximum(1, np.abs(ref)))
    else:
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("angle_param", [RELIEF_SLOPE_PLANE_PARAMETERIZATION, PLANE_PARAMETERIZATION],
                         ids=["v3", "v4"])
def test04_synthesis_pass_writes_the_synthesized_relief_slope(device, angle_param):
    """The synthesis pass's relief_slope is the relief slope of the synthesized height at the
    texel centres (numpy Synthesizer), for v3 bundles (bilinear slope) and v4 ones (slope of the
    bilinear unit normals); v2 bundles get no slope written."""
    bundle = make_random_bundle(np.random.default_rng(5), u_res=32, channels=4)
    bundle.angle_param = angle_param
    extent = bundle.height_range[1] - bundle.height_range[0]
    pass_ = SynthesisPass.from_bundle(device, bundle, SynthesisConfig(tile_size=0.3, seed=11))
    assert pass_.relief_extent == pytest.approx(extent)
    rng = np.random.default_rng(6)
    uv = rng.uniform(-1.5, 2.5, (16, 24, 2)).astype(np.float32)
    got = pass_.synthesize(uv)[RELIEF_SLOPE].reshape(-1, 2)
    rows, cols = bundle.height.shape
    flat = uv.reshape(-1, 2)
    g = flat * np.float32([cols, rows]) - np.float32(0.5)
    base = np.floor(g).astype(np.int64)
    # synthesized heights on the 4 x 4 texels around each uv, then the same arithmetic as tiled
    ij = np.stack(np.meshgrid(np.arange(-1, 3), np.arange(-1, 3), indexing="xy"), -1).reshape(-1, 2)
    texels = base[:, None, :] + ij[None]
    centres = ((texels + 0.5) / np.array([cols, rows])).astype(np.float32)
    heights = pass_.synthesizer.synthesize(centres.reshape(-1, 2)).height.reshape(len(flat), 4, 4)
    du = (heights[:, 1:3, 2:4] - heights[:, 1:3, 0:2]) * np.float32(cols / 2) * np.float32(extent)
    dv = (heights[:, 2:4, 1:3] - heights[:, 0:2, 1:3]) * np.float32(rows / 2) * np.float32(extent)
    f = (g - base).astype(np.float32)
    w = np.stack([(1 - f[:, 0]) * (1 - f[:, 1]), f[:, 0] * (1 - f[:, 1]), (1 - f[:, 0]) * f[:, 1], f[:, 0] * f[:, 1]], -1)
    if angle_param == PLANE_PARAMETERIZATION:
        length = np.sqrt(du.astype(np.float64) ** 2 + dv.astype(np.float64) ** 2 + 1)
        du, dv, dz = -du / length, -dv / length, 1 / length
    corners = [np.sum(w * np.stack([x[:, 0, 0], x[:, 0, 1], x[:, 1, 0], x[:, 1, 1]], -1), -1) for x in (du, dv)]
    ref = np.stack(corners, -1)
    if angle_param == PLANE_PARAMETERIZATION:
        mz = np.sum(w * np.stack([dz[:, 0, 0], dz[:, 0, 1], dz[:, 1, 0], dz[:, 1, 1]], -1), -1)
        ref = -ref / mz[:, None]
    np.testing.assert_allclose(pass_.synthesizer.relief_slope(flat, extent, normals=pass_.relief_normals), ref,
                               rtol=1e-4, atol=1e-4)
    tolerance = 2 * 1e-4 * extent * max(rows, cols) / 2
    assert np.abs(got - ref).max() < tolerance
    assert np.abs(ref).max() > 100 * tolerance  # a relief worth the name
    v2 = make_random_bundle(np.random.default_rng(5), u_res=32, channels=4)
    v2.angle_param = MINROT_PLANE_PARAMETERIZATION
    assert SynthesisPass.from_bundle(device, v2).relief_extent == 0.0
