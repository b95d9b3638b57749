"""The relief frame (neumat.material.relief, shaders/relief_frame.slang): the slope of a
material's height map at any uv, on the host and in the passes, and its use by v3 bundles.

Tolerances: the tiled slope is the same float32 arithmetic in the same order in numpy and Slang
(``precise``), compared exactly. The synthesized relief's slope differs from numpy's by the
synthesized heights' float32 rounding (tests/test_synthesis_slang.py: <= 1e-4 per height),
times the central-difference factor ``extent * res / 2``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from neumat.angles import MINROT_PLANE_PARAMETERIZATION, PLANE_PARAMETERIZATION
from neumat.bundle import make_random_bundle
from neumat.material import DirectionCoding, EvalError, ReliefSlope, slope_texels
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


@pytest.fixture(scope="module")
def device():
    from neumat.device import DeviceError, default_device

    try:
        return default_device()
    except DeviceError as e:
        pytest.skip(f"no slangpy device on this machine: {e}")


def test03_slang_tiled_slope_is_bit_exact(device):
    """reliefSlope of the tiled height map equals ReliefSlope.at bit for bit, at uvs inside,
    outside and on the border of the tile, on a non-square map."""
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
                    extent=float(np.float32(extent)), result=result, count=len(uv))
    got = result.to_numpy().view(np.float32).reshape(-1, 2)
    np.testing.assert_array_equal(got, ReliefSlope.from_height(height, (0.0, extent)).at(uv))


def test04_synthesis_pass_writes_the_synthesized_relief_slope(device):
    """The synthesis pass's relief_slope is the relief slope of the synthesized height at the
    texel centres (numpy Synthesizer), for v3 bundles; v2 bundles get no slope written."""
    bundle = make_random_bundle(np.random.default_rng(5), u_res=32, channels=4)
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
    ref = np.stack([np.sum(w * np.stack([x[:, 0, 0], x[:, 0, 1], x[:, 1, 0], x[:, 1, 1]], -1), -1) for x in (du, dv)], -1)
    tolerance = 2 * 1e-4 * extent * max(rows, cols) / 2
    assert np.abs(got - ref).max() < tolerance
    assert np.abs(ref).max() > 100 * tolerance  # a relief worth the name
    v2 = make_random_bundle(np.random.default_rng(5), u_res=32, channels=4)
    v2.angle_param = MINROT_PLANE_PARAMETERIZATION
    assert SynthesisPass.from_bundle(device, v2).relief_extent == 0.0
