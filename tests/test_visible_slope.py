"""The visible relief frame (neumat.material.visible_slope; shaders/visible_slope.slang, compared
with it through the infer pass in tests/test_render_feature_lod.py test04 / 07 / 09): the closed
form against Monte Carlo, a point's slope kept bit for bit, the gain, the normal CDF, the
synthesized relief's covariances, and ReliefSlope.at on a real height map."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from neumat.material.visible_slope import (
    moment_texels,
    normal_cdf_and_density,
    synthesized_moments,
    visible_slope,
)

GRAVEL = Path(__file__).resolve().parents[1] / "assets" / "materials" / "gravel.nmat"


def view(elevation_deg: float, azimuth_deg: float = -90.0) -> np.ndarray:
    """Unit direction [1, 3] at an elevation above the macro surface (azimuth -90°: toward -v)."""
    e, a = math.radians(elevation_deg), math.radians(azimuth_deg)
    return np.array([[math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)]], np.float32)


def gaussian_moments(mu, cov) -> np.ndarray:
    """[1, 5] moments of N(mu, cov): (mu, E[s_u²], E[s_v²], E[s_u s_v])."""
    mu, cov = np.asarray(mu, np.float64), np.asarray(cov, np.float64)
    return np.array([[mu[0], mu[1], cov[0, 0] + mu[0] ** 2, cov[1, 1] + mu[1] ** 2, cov[0, 1] + mu[0] * mu[1]]],
                     np.float32)


@pytest.mark.parametrize("mu, cov, elevation", [
    ((0.0, 0.0), ((1.0, 0.0), (0.0, 1.0)), 20.0),
    ((0.0, 0.0), ((1.0, 0.0), (0.0, 1.0)), 60.0),
    ((0.2, -0.1), ((0.3, 0.1), (0.1, 0.5)), 10.0),
    ((0.0, 0.3), ((0.05, 0.0), (0.0, 0.05)), 35.0),
])
def test01_closed_form_is_the_projected_area_weighted_mean_of_gaussian_slopes(mu, cov, elevation):
    """gain 1: the mean of 2M Gaussian slopes weighted by max(1 - s·t, 0) to 1 % of the slope
    scale (sampling error ~0.2 %; Φ's approximation 1.5e-7)."""
    rng = np.random.default_rng(0)
    s = rng.multivariate_normal(mu, cov, 2_000_000)
    wo = view(elevation)
    t = wo[0, :2] / wo[0, 2]
    w = np.maximum(1.0 - s @ t, 0.0)
    expect = (w[:, None] * s).sum(0) / w.sum()
    got = visible_slope(gaussian_moments(mu, cov), wo, gain=1.0)[0]
    scale = math.sqrt(np.trace(np.asarray(cov)))
    assert np.abs(got - expect).max() < 0.01 * scale, (got, expect)
    assert got[1] > mu[1] + 0.05 * scale  # tilted toward the viewer (at -v): +dz/dv faces it


def test02_a_point_keeps_its_slope_bit_for_bit_and_the_gain_scales_the_tilt():
    rng = np.random.default_rng(1)
    slopes = rng.normal(0, 2, (1000, 2)).astype(np.float32)
    wo = np.repeat(view(15.0), 1000, axis=0)
    assert np.array_equal(visible_slope(moment_texels(slopes), wo), slopes)
    m = gaussian_moments((0.1, 0.0), ((0.4, 0.0), (0.0, 0.4)))
    full = visible_slope(m, view(25.0), gain=1.0)[0]
    assert np.array_equal(visible_slope(m, view(25.0), gain=0.0)[0], m[0, :2])
    np.testing.assert_allclose(visible_slope(m, view(25.0), gain=0.6)[0], m[0, :2] + 0.6 * (full - m[0, :2]), atol=1e-6)
    # straight down the normal: no tilt; below the horizon: finite (read at the smallest view z)
    np.testing.assert_allclose(visible_slope(m, np.array([[0, 0, 1]], np.float32), gain=1.0)[0], m[0, :2], atol=1e-6)
    assert np.isfinite(visible_slope(m, np.array([[0, -1, -0.2]], np.float32), gain=1.0)).all()


def test03_normal_cdf_and_density():
    z = np.linspace(-8, 8, 2001, dtype=np.float32)
    cdf, density = normal_cdf_and_density(z)
    exact = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in z.astype(np.float64)])
    assert np.abs(cdf - exact).max() < 5e-7
    np.testing.assert_allclose(density, np.exp(-0.5 * z.astype(np.float64) ** 2) / math.sqrt(2 * math.pi), atol=1e-7)


def test04_synthesized_relief_covariances_and_moments():
    """The synthesized relief's per-level covariances: zero at level 0, growing with the level,
    and at the last (1 x 1) level, whose slope is flat, the synthesized relief's whole slope
    covariance (measured independently at other points, to sampling error). Its moments add
    them between levels."""
    from neumat.bundle import load_bundle
    from neumat.synthesis import Synthesizer
    from neumat.synthesis.relief import level_slope

    bundle = load_bundle(GRAVEL)
    synth = Synthesizer.from_bundle(bundle)
    extent = bundle.height_range[1] - bundle.height_range[0]
    cov = synth.relief_covariances(extent, normals=True)
    assert cov is synth.relief_covariances(extent, normals=True)  # computed once
    assert cov.shape == (synth.height_prefiltered.levels, 3) and np.array_equal(cov[0], np.zeros(3, np.float32))
    assert np.all(np.diff(cov[:, 0]) >= 0) and np.all(np.diff(cov[:, 1]) >= 0)
    uv = (np.random.default_rng(5).random((8192, 2)) * 16).astype(np.float32)
    whole = np.cov(level_slope(synth, uv, extent, 0, True).astype(np.float64).T, bias=True)
    np.testing.assert_allclose(cov[-1, :2], np.diag(whole), rtol=0.05)
    rng = np.random.default_rng(2)
    s = rng.normal(0, 1, (4, 2)).astype(np.float32)
    m = synthesized_moments(s, np.array([-1.0, 0.0, 1.5, 99.0], np.float32), cov)
    np.testing.assert_array_equal(m[:2], moment_texels(s[:2]))  # lod <= 0: the point
    np.testing.assert_allclose(m[2, 2:] - moment_texels(s[2:3])[0, 2:], 0.5 * (cov[1] + cov[2]), atol=1e-5)
    np.testing.assert_allclose(m[3, 2:] - moment_texels(s[3:4])[0, 2:], cov[-1], atol=1e-5)


def test05_relief_slope_on_the_shipped_gravel():
    """ReliefSlope.at with the visible gain on gravel's height map: the point slope where the
    footprint is at most a U texel, continuous as it grows past one, and at the tile's footprint
    the visible frame of the whole map, within 10 % of the projected-area-weighted mean of its
    slope texels at 20° elevation (the Gaussian closed form of a non-Gaussian relief)."""
    from neumat.bundle import load_bundle
    from neumat.material import ReliefSlope

    bundle = load_bundle(GRAVEL)
    relief = ReliefSlope.for_parameterization(bundle.angle_param, bundle.height, bundle.height_range,
                                              bundle.planes["U"].shape[1], visible_gain=1.0)
    rng = np.random.default_rng(3)
    uv = rng.random((64, 2), dtype=np.float32)
    wo = np.repeat(view(20.0), 64, axis=0)
    cols = bundle.planes["U"].shape[1]
    np.testing.assert_array_equal(relief.at(uv, np.full(64, -math.log2(cols), np.float32), wo), relief.point(uv))
    just_past = relief.at(uv, np.full(64, 1e-4 - math.log2(cols), np.float32), wo)
    assert np.abs(just_past - relief.point(uv)).max() < 0.01
    tile = relief.at(uv, np.zeros(64, np.float32), wo)
    g = relief.texels.reshape(-1, 2).astype(np.float64)
    t = wo[0, :2] / wo[0, 2]
    w = np.maximum(1 - g @ t, 0)
    expect = (w[:, None] * g).sum(0) / w.sum()
    assert expect[1] > 0.5  # strongly tilted toward the viewer
    np.testing.assert_allclose(tile, np.repeat(expect[None], 64, axis=0), atol=0.1 * abs(expect[1]))
    mean = ReliefSlope.for_parameterization(bundle.angle_param, bundle.height, bundle.height_range, cols)
    assert np.abs(mean.at(uv, np.zeros(64, np.float32), wo)).max() < 0.05  # the mean slope: flat
