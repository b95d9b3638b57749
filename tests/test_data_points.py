"""Point-sampled synthetic BTFs: per-sample directions, exact values, fixed held-out pairs."""

from __future__ import annotations

import numpy as np
import pytest

from neumat.angles import rusinkiewicz
from neumat.data import HELDOUT_PAIRS, DataError, PointBtf, PointBtfConfig, SliceRenderer, make_material
from neumat.data.points import sample_directions, uniform_cap

RES = 32


@pytest.fixture(scope="module")
def material():
    return make_material("leather", RES, 0)


def test01_render_samples_equals_render_points_per_direction(material):
    """Per-sample directions give the same values as the per-view renderer, sample by sample."""
    renderer = SliceRenderer(material)
    rng = np.random.default_rng(0)
    uv = rng.random((200, 2))
    wi, wo = uniform_cap(200, 80.0, rng), uniform_cap(200, 80.0, rng)
    for shadows in (False, True):
        got = renderer.render_samples(uv, wi, wo, "surface", shadows)
        for k in range(0, 200, 23):
            ref = renderer.render_points(uv[k:k + 1], wo[k], wi[k][None], "surface", shadows)[0, 0]
            np.testing.assert_array_equal(got[k], ref)
    assert np.isnan(got).any(axis=1).sum() < 40  # a few points are masked from grazing views


def test02_training_directions_cover_the_cap_and_concentrate_near_the_mirror():
    cfg = PointBtfConfig(theta_max_deg=85.0, specular_fraction=0.35, specular_spread_deg=20.0)
    wi, wo = sample_directions(200_000, cfg, np.random.default_rng(1))
    for w in (wi, wo):
        assert np.allclose(np.linalg.norm(w, axis=1), 1.0)
        assert w[:, 2].min() >= np.cos(np.radians(85.0)) - 1e-12
    # wo uniform in solid angle: cos θ uniform on [cos 85°, 1] (mean 0.5436)
    assert wo[:, 2].mean() == pytest.approx((1 + np.cos(np.radians(85))) / 2, abs=0.005)
    assert (wo[:, 2] > np.cos(np.radians(10))).mean() > 0.01  # head-on views are trained
    theta_h = rusinkiewicz(wi, wo)[0]
    uniform_h = rusinkiewicz(uniform_cap(200_000, 85.0, np.random.default_rng(2)),
                             uniform_cap(200_000, 85.0, np.random.default_rng(3)))[0]
    near = np.radians(5.0)
    # the mirrored share puts several times more samples within 5° of the mirror configuration
    assert (theta_h < near).mean() > 4 * (uniform_h < near).mean()


def test02b_back_scatter_share_is_opt_in():
    """``retro_fraction`` puts its share of ωi within a few degrees of ωo (θd ≈ 0 at every θh);
    at 0 (the default) the directions are those drawn before it existed, bit for bit."""
    base = PointBtfConfig()
    wi0, wo0 = sample_directions(100_000, base, np.random.default_rng(4))
    wi, wo = sample_directions(100_000, PointBtfConfig(retro_fraction=0.1), np.random.default_rng(4))
    np.testing.assert_array_equal(wo, wo0)
    assert np.allclose(np.linalg.norm(wi, axis=1), 1.0) and wi[:, 2].min() >= np.cos(np.radians(85.0)) - 1e-12
    td0, td = rusinkiewicz(wi0, wo0)[2], rusinkiewicz(wi, wo)[2]
    near = np.radians(5.0)
    assert (td < near).mean() > (td0 < near).mean() + 0.05  # ~10 % share, ~70 % of it within 5°
    changed = np.any(wi != wi0, axis=1)
    assert 0.08 < changed.mean() < 0.11 and np.median(td[changed]) < np.radians(10.0)
    with pytest.raises(DataError, match="retro_fraction"):
        PointBtfConfig(specular_fraction=0.95, retro_fraction=0.1)


def test03_samples_are_finite_deterministic_and_pool_backed(material):
    src = PointBtf(material, PointBtfConfig(pool_size=5000, pool_seed=3))
    a = src.sample(3000, np.random.default_rng(7))
    b = PointBtf(material, PointBtfConfig(pool_size=5000, pool_seed=3)).sample(3000, np.random.default_rng(7))
    for k in ("uv", "wi", "wo", "rgb"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
        assert getattr(a, k).dtype == np.float32
    assert np.isfinite(a.rgb).all() and (a.rgb >= 0).all()
    pool = src.pool()
    assert len(pool) == 5000
    # every training sample is a pool row, and the pool values are the exact renders
    rows = {tuple(r) for r in np.concatenate([pool.uv, pool.wi], axis=1)}
    assert all(tuple(r) in rows for r in np.concatenate([a.uv, a.wi], axis=1)[:200])
    exact = src.renderer.render_samples(pool.uv[:50].astype(np.float64), pool.wi[:50].astype(np.float64),
                                        pool.wo[:50].astype(np.float64), "surface", False)
    np.testing.assert_allclose(pool.rgb[:50], exact, rtol=1e-6)


def test04_heldout_pairs_cover_head_on_grazing_mirror_and_back_scatter(material):
    src = PointBtf(material, PointBtfConfig(heldout_resolution=16, pool_size=0))
    images = src.heldout_images()
    assert len(images) == len(HELDOUT_PAIRS) >= 10
    wi = np.array([w for w, _, _ in images], dtype=np.float64)
    wo = np.array([w for _, w, _ in images], dtype=np.float64)
    theta_h, _, theta_d, _ = rusinkiewicz(wi, wo)
    assert np.any((wi[:, 2] > 0.9999) & (wo[:, 2] > 0.9999))                 # head-on
    assert np.any(wo[:, 2] < np.cos(np.radians(70))) and np.any(wi[:, 2] < np.cos(np.radians(70)))
    assert np.sum(theta_h < np.radians(1e-3)) >= 3                            # exact mirrors
    assert np.any((theta_h > np.radians(0.1)) & (theta_h < np.radians(1.0)))  # near mirror
    assert np.any(theta_d < 1e-6) and np.any((theta_d < 1e-6) & (wo[:, 2] < 0.9))  # back-scatter
    renderer = SliceRenderer(material)
    for w_i, w_o, image in images[:3]:
        assert image.shape == (16, 16, 3)
        ref = renderer.render_view(w_o.astype(np.float64), w_i[None].astype(np.float64), 16, "surface",
                                   shadows=False)[0]
        np.testing.assert_array_equal(image, ref)
    heldout = src.sample(500, np.random.default_rng(0), "heldout")
    pairs = {tuple(np.round(np.concatenate([a, b]), 6)) for a, b, _ in images}
    assert all(tuple(np.round(np.concatenate([a, b]), 6)) in pairs for a, b in zip(heldout.wi, heldout.wo))


def test05_bad_settings_are_clear_errors(material):
    with pytest.raises(DataError, match="uv_space"):
        PointBtfConfig(uv_space="screen")
    with pytest.raises(DataError, match="theta_max_deg"):
        PointBtfConfig(theta_max_deg=90.0)
    with pytest.raises(DataError, match="split"):
        PointBtf(material, PointBtfConfig(pool_size=0)).sample(4, np.random.default_rng(0), "test")


def test06_prefiltered_samples_average_their_box(material):
    """lod_fraction: that share of a training draw is prefiltered — box side log-uniform from one
    map texel to the tile, value = mean of lod_taps² point values in the box (a box far below a
    texel gives the point value to 1e-3 relative; the whole tile's box, the tile mean)."""
    src = PointBtf(material, PointBtfConfig(pool_size=0, lod_fraction=0.25, lod_taps=2))
    batch = src.sample(4000, np.random.default_rng(5))
    boxes = np.isfinite(batch.footprint)
    assert boxes.sum() == 1000 and np.all(np.isfinite(batch.rgb))
    assert batch.footprint[boxes].min() >= -np.log2(RES) and batch.footprint[boxes].max() <= 0.0
    assert np.all(np.isinf(batch.footprint[~boxes]))
    pooled = PointBtf(material, PointBtfConfig(pool_size=4000, lod_fraction=0.25)).sample(2000, np.random.default_rng(5))
    assert 0.2 < np.isfinite(pooled.footprint).mean() < 0.3  # the pool keeps its footprints
    rng = np.random.default_rng(6)
    uv = rng.random((300, 2), dtype=np.float32)
    wi = np.tile(np.array([[0.3, 0.1, 0.95]], np.float32), (300, 1))
    wo = np.tile(np.array([[-0.2, 0.2, 0.96]], np.float32), (300, 1))
    wi, wo = wi / np.linalg.norm(wi, axis=1, keepdims=True), wo / np.linalg.norm(wo, axis=1, keepdims=True)
    point = src._render(uv, wi, wo)
    tiny = src._box_mean(uv, wi, wo, np.full(300, -20.0, np.float32), 2, rng)
    seen = np.isfinite(point).all(axis=1)
    np.testing.assert_allclose(tiny[seen], point[seen], rtol=1e-3, atol=1e-6)
    tile = src._box_mean(uv[:1].repeat(64, 0), wi[:64], wo[:64], np.zeros(64, np.float32), 8, rng)
    grid = (np.stack(np.meshgrid(np.arange(64), np.arange(64)), -1).reshape(-1, 2) + 0.5) / 64
    mean = np.nanmean(src._render(grid.astype(np.float32), wi[:1].repeat(4096, 0), wo[:1].repeat(4096, 0)), axis=0)
    np.testing.assert_allclose(tile.mean(axis=0), mean, rtol=0.03)
    with pytest.raises(DataError, match="lod_fraction"):
        PointBtfConfig(lod_fraction=1.5)


def test07_prefiltered_split_has_its_own_pool_and_u_texel_boxes(material):
    """Split "prefiltered" (the learned LoD pyramid's samples): boxes only, sides from one texel of
    lod_res (the U plane) to the tile, from a pool of their own, so the point pool and the point
    draws are the same with or without it."""
    cfg = dict(pool_size=3000, lod_pool_size=500, lod_res=RES // 4)
    src = PointBtf(material, PointBtfConfig(**cfg))
    boxes = src.sample(800, np.random.default_rng(1), "prefiltered")
    assert np.all(np.isfinite(boxes.rgb)) and np.all(np.isfinite(boxes.footprint))
    assert boxes.footprint.min() >= -np.log2(RES // 4) and boxes.footprint.max() <= 0.0
    assert len(src.lod_pool()) == 500
    plain = PointBtf(material, PointBtfConfig(pool_size=3000))
    a, b = src.sample(600, np.random.default_rng(2)), plain.sample(600, np.random.default_rng(2))
    assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.uv, b.uv)
    fresh = PointBtf(material, PointBtfConfig(pool_size=0, lod_pool_size=0, lod_res=RES // 4))
    assert np.all(np.isfinite(fresh.sample(50, np.random.default_rng(3), "prefiltered").footprint))
