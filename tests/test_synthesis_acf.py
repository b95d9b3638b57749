"""The ACF, the curved-ACF offset pdf and the per-tile offsets (neumat.synthesis.acf/offsets).

Guards the failure of seed 003's replication (its ACF was zero everywhere, so synthesis did
nothing): the pdf must have mass, wide support, and the drawn offsets must be non-trivial.
"""

from __future__ import annotations

import numpy as np
import pytest

from neumat.bundle import make_random_bundle
from neumat.data.materials import make_material
from neumat.synthesis import (OffsetTables, SynthesisConfig, Synthesizer, autocovariance, hash32, local_maxima,
                              offset_pdf, tile_uniforms)

R = 128


def _u_plane(name: str, res: int = R) -> np.ndarray:
    """A structured stand-in for a trained U plane: albedo, height, roughness [res, res, 5]."""
    m = make_material(name, res, 0)
    return np.concatenate([m.albedo, m.height[..., None], m.roughness[..., None]], -1)


def test01_acf_of_a_cosine_is_a_cosine():
    # Closed form: the autocovariance of cos(2 pi k x / n) is cos(2 pi k dx / n) / 2, normalized 1.
    n, k = 64, 5
    x = np.arange(n)
    plane = np.cos(2 * np.pi * k * x / n)[None, :, None].repeat(32, axis=0)
    acf = autocovariance(plane)
    assert acf[0, 0] == pytest.approx(1.0)
    np.testing.assert_allclose(acf[0], np.cos(2 * np.pi * k * x / n), atol=1e-12)
    np.testing.assert_allclose(acf[:, 3], np.cos(2 * np.pi * k * 3 / n), atol=1e-12)  # constant in dy
    assert np.all(autocovariance(np.full((8, 8, 2), 3.0)) == 0)


@pytest.mark.parametrize("name", ["stone_tiles", "fabric", "brick"])
def test02_pdf_has_mass_and_wide_support(name):
    pdf = offset_pdf(autocovariance(_u_plane(name)))
    assert not pdf.fallback
    assert pdf.pdf.sum() == pytest.approx(1.0) and pdf.pdf.min() >= 0
    assert pdf.support > 1000, f"support {pdf.support} of {R * R} shifts"
    assert pdf.pdf[0, 0] == 0 and not pdf.pdf[pdf.excluded].any()
    # the mode is a real structural peak, not the zero shift
    assert pdf.acf.ravel()[np.argmax(pdf.pdf)] > 0.85


def test03_random_bundle_and_constant_planes_still_give_offsets():
    bundle = make_random_bundle(np.random.default_rng(3), u_res=32)
    pdf = offset_pdf(autocovariance(bundle.planes["U"]))
    assert pdf.pdf.sum() == pytest.approx(1.0) and pdf.support > 100
    flat = offset_pdf(autocovariance(np.ones((16, 16, 3))))
    assert flat.fallback and flat.support == 16 * 16 - flat.excluded.sum() > 200


def test04_tile_offsets_are_nontrivial_and_deterministic():
    synth = Synthesizer.from_planes(_u_plane("stone_tiles"))
    i, j = np.meshgrid(np.arange(-8, 8), np.arange(-8, 8))
    dx, dy = synth.tables.tile_offsets(i, j, grid=0, seed=7)
    shifts = np.stack([dx, dy], -1).reshape(-1, 2)
    assert not np.any((dx == 0) & (dy == 0))
    assert not synth.pdf.excluded[dy, dx].any()
    assert len(np.unique(shifts, axis=0)) >= 40, "256 tiles should use many distinct shifts"
    assert shifts.std(axis=0).min() > R / 8
    again = synth.tables.tile_offsets(i, j, grid=0, seed=7)
    np.testing.assert_array_equal(again[0], dx)
    other = synth.tables.tile_offsets(i, j, grid=1, seed=7)
    assert np.mean(other[0] != dx) > 0.8  # grid B draws independently of grid A


def _lowbias32(x: int) -> int:
    """Plain-Python lowbias32 (C. Wellons), the definition the numpy and Slang hashes follow."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def test05_hash_uniforms_are_uniform_and_exact():
    values = [0, 1, 12345, 0x80000000, 0xFFFFFFFF]
    assert hash32(np.array(values, np.uint32)).tolist() == [_lowbias32(v) for v in values]
    i, j = np.meshgrid(np.arange(-150, 150), np.arange(-150, 150))
    u1, u2 = tile_uniforms(i, j, 0, 1)
    for u in (u1, u2):
        assert u.dtype == np.float32 and u.min() >= 0 and u.max() < 1
        assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    assert abs(np.corrcoef(u1.ravel(), u2.ravel())[0, 1]) < 0.01


def test06_inverse_cdf_sampling_follows_the_pdf():
    rng = np.random.default_rng(0)
    pdf = rng.uniform(size=(6, 5)) ** 3
    pdf[2] = 0  # a row without mass is never drawn
    pdf[4, :3] = 0
    pdf /= pdf.sum()
    tables = OffsetTables.from_pdf(pdf)
    assert tables.marginal[-1] == 1 and np.all(tables.conditional[:, -1] == 1)
    n = 400_000
    u = rng.uniform(size=(2, n)).astype(np.float32)
    dx, dy = tables.sample(u[0], u[1])
    counts = np.zeros_like(pdf)
    np.add.at(counts, (dy, dx), 1)
    assert counts[2].sum() == 0 and counts[4, :3].sum() == 0
    assert 0.5 * np.abs(counts / n - pdf).sum() < 0.01  # total variation


def test07_peak_window_keeps_only_acf_maxima():
    """fabric 128²: 255 of 16384 shifts are 3 x 3 ACF maxima with positive ACF outside the
    central lobe; every drawn offset is one of them."""
    u = _u_plane("fabric")
    synth = Synthesizer.from_planes(u, config=SynthesisConfig(peak_window=3))
    support = synth.pdf.pdf > 0
    assert 100 < support.sum() < 1000
    assert np.all(local_maxima(synth.pdf.acf, 3)[support])
    i, j = np.meshgrid(np.arange(-8, 8), np.arange(-8, 8))
    dx, dy = synth.tables.tile_offsets(i, j, grid=1, seed=3)
    assert np.all(support[dy, dx]) and len(np.unique(dx * R + dy)) > 30
    with pytest.raises(ValueError, match="peak_window"):
        SynthesisConfig(peak_window=4)
