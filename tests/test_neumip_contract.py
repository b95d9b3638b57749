"""The NeuMIP evaluation contract (neumat.material.neumip): offsets, shifted lookups, validation."""

import dataclasses

import numpy as np
import pytest
from directions import upper_hemisphere
from neumat.bundle import make_random_bundle
from neumat.material import EvalError, bilinear_lookup_np
from neumat.material.neumip import (
    DIRECTION_ENCODING,
    MAX_OFFSET_KEY,
    check_neumip,
    encode_direction,
    network_input,
    offsets_int8,
    render_neumip_int8,
)
from neumat.quant import forward


@pytest.fixture(scope="module")
def bundle():
    return make_random_bundle(np.random.default_rng(7), "neumip", channels=12, hidden=(64,) * 4)


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(8)
    return rng.uniform(0, 1, (4096, 2)).astype(np.float32), upper_hemisphere(rng, 4096), upper_hemisphere(rng, 4096)


def test_offsets_are_bounded_and_vary(bundle, samples):
    uv, _, wo = samples
    du = offsets_int8(bundle, uv, wo)
    m = bundle.provenance[MAX_OFFSET_KEY]
    assert du.dtype == np.float32 and du.shape == (len(uv), 2)
    assert np.all(np.abs(du) <= np.float32(m))
    assert du.std() > 1e-3 * m, "a random offset network must give non-constant offsets"


def test_render_is_rgb_mlp_at_shifted_uv(bundle, samples):
    """Spelled out by hand: offset net -> (2o-1)*max_offset -> rgb net at uv+du, x value_scale."""
    uv, wi, wo = samples
    o = forward(bundle.mlps["offset"], np.concatenate(
        [bilinear_lookup_np(bundle.planes["offset"], uv, True), wo[:, :2]], axis=1))
    shifted = uv + (o * np.float32(2) - np.float32(1)) * np.float32(bundle.provenance[MAX_OFFSET_KEY])
    feats = np.concatenate([bilinear_lookup_np(bundle.planes["rgb"], shifted, True), wi[:, :2], wo[:, :2]], axis=1)
    expected = forward(bundle.mlps["rgb"], feats)  # value_scale defaults to 1
    np.testing.assert_array_equal(render_neumip_int8(bundle, uv, wi, wo, chunk=1000), expected)


def test_input_order_follows_the_bundle(bundle, samples):
    uv, wi, wo = samples
    swapped = dataclasses.replace(bundle, inputs={**bundle.inputs, "rgb": (("wo", 2), ("rgb", 12), ("wi", 2))})
    x = network_input(swapped, "rgb", uv[:4], wi[:4], wo[:4])
    np.testing.assert_array_equal(x[:, :2], encode_direction(wo[:4]))
    np.testing.assert_array_equal(x[:, 14:], encode_direction(wi[:4]))


@pytest.mark.parametrize("change, message", [
    ({"angle_param": "rusinkiewicz-concentric-v1"}, DIRECTION_ENCODING),
    ({"provenance": {}}, MAX_OFFSET_KEY),
    ({"provenance": {MAX_OFFSET_KEY: -1.0}}, MAX_OFFSET_KEY),
    ({"provenance": {MAX_OFFSET_KEY: float("nan")}}, MAX_OFFSET_KEY),
])
def test_bad_bundles_are_refused(bundle, change, message):
    with pytest.raises(EvalError, match=message):
        check_neumip(dataclasses.replace(bundle, **change))


def test_triple_plane_is_refused():
    with pytest.raises(EvalError, match="neumip"):
        check_neumip(make_random_bundle(np.random.default_rng(0)))
