"""SyntheticBtf: caching (disk + memory), splits, sampling semantics, uv spaces."""

import dataclasses
import logging

import numpy as np
import pytest

from neumat.data import (DataError, SliceRenderer, SyntheticBtf, SyntheticBtfConfig,
                         held_out_split, make_material, ubo_like_directions)
from neumat.material.interp import bilinear


@pytest.fixture(scope="module")
def material():
    return make_material("stone_tiles", 32, seed=0)


def config(tmp_path, **kw):
    base = dict(resolution=16, n_views=4, n_lights=5, cache_dir=str(tmp_path),
                show_progress=False)
    base.update(kw)
    return SyntheticBtfConfig(**base)


def test_disk_cache_hit_is_identical_and_renders_nothing(tmp_path, material):
    first = SyntheticBtf(material, config(tmp_path))
    first.prerender()
    assert first.render_count == 4
    files = sorted(first.disk.directory.glob("block_*.safetensors"))
    assert len(files) == 4 and (first.disk.directory / "manifest.json").exists()
    second = SyntheticBtf(material, config(tmp_path))
    for k in range(second.directions.n_configs):
        np.testing.assert_array_equal(second.slice(k), first.slice(k))
    assert second.render_count == 0
    second.sample(1000, np.random.default_rng(0))
    assert second.render_count == 0


def test_memory_cache_and_lazy_rendering(tmp_path, material):
    btf = SyntheticBtf(material, config(tmp_path, disk_cache=False, frames_per_batch=1))
    btf.slice(7)  # view 1 (5 lights per view)
    assert btf.render_count == 1 and btf.disk is None
    btf.slice(9)
    assert btf.render_count == 1  # same view: served from memory
    btf.slice(0)
    assert btf.render_count == 2


def test_cache_key_covers_what_changes_pixels(tmp_path, material):
    keys = {SyntheticBtf(material, config(tmp_path)).cache_key}
    for change in (dict(resolution=8), dict(uv_space="surface"), dict(shadows=False),
                   dict(supersample=2), dict(direction_seed=1)):
        keys.add(SyntheticBtf(material, config(tmp_path, **change)).cache_key)
    keys.add(SyntheticBtf(dataclasses.replace(material, height_scale=0.01),
                          config(tmp_path)).cache_key)
    assert len(keys) == 7
    same = SyntheticBtf(material, config(tmp_path, heldout_fraction=0.3, cache_views=2))
    assert same.cache_key in keys  # sampling settings do not change pixels


def test_corrupt_cache_file_is_rerendered(tmp_path, material, caplog):
    btf = SyntheticBtf(material, config(tmp_path))
    good = btf.slice(0).copy()
    btf.disk.path(0).write_bytes(b"not a safetensors file")
    again = SyntheticBtf(material, config(tmp_path))
    with caplog.at_level(logging.WARNING):
        np.testing.assert_array_equal(again.slice(0), good)
    assert again.render_count == 1 and "re-rendering" in caplog.text


def test_heldout_configurations_never_trained_on(tmp_path, material):
    btf = SyntheticBtf(material, config(tmp_path, n_views=5, n_lights=6, heldout_fraction=0.2))
    mask = held_out_split(30, 0.2, 1234)
    np.testing.assert_array_equal(btf.heldout_mask, mask)
    wi, wo = btf.directions.pair(np.arange(30))
    pairs = np.concatenate([wi, wo], axis=1).astype(np.float32)
    held = {tuple(p) for p in pairs[mask]}
    batch = btf.sample(20000, np.random.default_rng(1), "train")
    seen = {tuple(p) for p in np.concatenate([batch.wi, batch.wo], axis=1)}
    assert seen.isdisjoint(held) and len(seen) == 30 - mask.sum()
    test = btf.sample(2000, np.random.default_rng(2), "heldout")
    assert {tuple(p) for p in np.concatenate([test.wi, test.wo], axis=1)} == held
    images = btf.heldout_images()
    assert len(images) == mask.sum()
    for (wi_k, wo_k, img), k in zip(images, np.flatnonzero(mask), strict=True):
        assert img.shape == (16, 16, 3) and img.dtype == np.float32
        np.testing.assert_array_equal(img, btf.slice(k))
        np.testing.assert_allclose(np.concatenate([wi_k, wo_k]), pairs[k])


def test_sample_values_are_bilinear_lookups(tmp_path, material):
    btf = SyntheticBtf(material, config(tmp_path, frames_per_batch=1))
    batch = btf.sample(500, np.random.default_rng(3))
    assert batch.uv.dtype == batch.rgb.dtype == np.float32 and len(batch) == 500
    assert batch.uv.min() >= 0 and batch.uv.max() < 1
    np.testing.assert_allclose(np.linalg.norm(batch.wi, axis=1), 1, atol=1e-6)
    assert np.all(batch.wi[:, 2] > 0) and np.all(batch.wo[:, 2] > 0)
    assert np.unique(batch.wi, axis=0).shape[0] == 1  # one configuration per batch
    k = next(k for k in range(btf.directions.n_configs)
             if np.allclose(btf.directions.pair(k)[0], batch.wi[0])
             and np.allclose(btf.directions.pair(k)[1], batch.wo[0]))
    np.testing.assert_array_equal(batch.rgb, bilinear(btf.slice(k), batch.uv, wrap=True))
    assert np.all(batch.rgb >= 0) and np.all(np.isfinite(batch.rgb))


def test_frames_per_batch_limits_configurations(tmp_path, material):
    btf = SyntheticBtf(material, config(tmp_path, frames_per_batch=3))
    batch = btf.sample(3000, np.random.default_rng(4))
    pairs = np.unique(np.concatenate([batch.wi, batch.wo], axis=1), axis=0)
    assert pairs.shape[0] == 3


def test_surface_space_masks_are_nan_and_never_sampled(tmp_path, material):
    steep = dataclasses.replace(material, height_scale=0.08)
    btf = SyntheticBtf(steep, config(tmp_path, uv_space="surface", theta_max_deg=80))
    btf.prerender()
    slices = np.stack([btf.slice(k) for k in range(btf.directions.n_configs)])
    assert 0.0 < np.isnan(slices).mean() < 0.5
    batch = btf.sample(20000, np.random.default_rng(5))
    assert np.all(np.isfinite(batch.rgb))
    ref = SyntheticBtf(steep, config(tmp_path, uv_space="reference", theta_max_deg=80))
    assert not np.isnan(ref.slice(0)).any()


def test_slices_match_the_renderer(tmp_path, material):
    btf = SyntheticBtf(material, config(tmp_path, supersample=2))
    k = 13
    view, light = btf.directions.split_index(k)
    direct = SliceRenderer(material).render_view(btf.directions.views[view],
                                                 btf.directions.lights[light][None], 16,
                                                 supersample=2)[0]
    np.testing.assert_array_equal(btf.slice(k), direct)


def test_direction_sets_are_stratified_and_seeded():
    a, b = ubo_like_directions(16, 16, 75.0, seed=0), ubo_like_directions(16, 16, 75.0, seed=0)
    np.testing.assert_array_equal(a.views, b.views)
    assert not np.allclose(a.views, ubo_like_directions(16, 16, 75.0, seed=1).views)
    cos_t = np.sort(a.lights[:, 2])
    strata = (1 - cos_t[::-1]) / (1 - np.cos(np.radians(75)))  # one per equal-area stratum
    assert np.all((strata >= np.arange(16) / 16) & (strata <= np.arange(1, 17) / 16))


def test_bad_arguments_raise(tmp_path, material):
    with pytest.raises(DataError, match="uv_space"):
        SyntheticBtfConfig(uv_space="screen")
    btf = SyntheticBtf(material, config(tmp_path))
    with pytest.raises(DataError, match="split"):
        btf.sample(4, np.random.default_rng(0), "validation")
    assert len(btf.sample(0, np.random.default_rng(0))) == 0


def test_source_builders(tmp_path, material):
    import imageio.v3 as iio

    from neumat.data import maps_source, material_source

    btf = material_source("fabric", 32, seed=2, config=config(tmp_path))
    assert btf.material.content_hash() == make_material("fabric", 32, 2).content_hash()
    d = tmp_path / "set"
    d.mkdir()
    iio.imwrite(d / "m_Color.png", (material.albedo ** (1 / 2.2) * 255).astype(np.uint8))
    iio.imwrite(d / "m_Displacement.png", (material.height * 65535).astype(np.uint16))
    src = maps_source(str(d), resolution=16, seed=3, config=config(tmp_path), height_scale=0.02)
    assert src.material.resolution == 16 and src.material.height_scale == 0.02
    assert src.config.direction_seed == 3 and src.material.meta["resized_from"] == 32
    assert np.isfinite(src.sample(100, np.random.default_rng(0)).rgb).all()
