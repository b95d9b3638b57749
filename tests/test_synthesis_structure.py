"""Large-area synthesis keeps the exemplar's ACF structure but not its repetition.

Over 4 x 4 exemplar sizes (a 128² exemplar synthesized on 512² texel centres): the main peaks
of the exemplar's ACF reappear at the same lags in the synthesized plane's ACF, more strongly
than with uniformly random tile offsets (the ACF guidance is what keeps them), while the
correlation at the exemplar period — exactly 1 for plain tiling — drops below half, and the
blend leaves no seams at tile edges.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from neumat.data.materials import make_material
from neumat.synthesis import (OffsetTables, SynthesisConfig, Synthesizer, autocovariance, bilinear_wrap,
                              central_lobe)

R = 128
PEAK_TOLERANCE = {"fabric": (1, 1), "stone_tiles": (3, 1)}
"""Texels (u, v) between an exemplar ACF peak and the synthesized ACF's local maximum. The
stone_tiles peaks are broad along u (exemplar ACF 0.905 at (32, 32), 0.892 / 0.859 one / two
texels to either side), so the maximum of a finite synthesis wanders a few texels there."""


def _setup(name: str, seed: int) -> tuple[Synthesizer, np.ndarray]:
    m = make_material(name, R, 0)
    u = np.concatenate([m.albedo, m.height[..., None], m.roughness[..., None]], -1)
    g = (np.arange(4 * R) + 0.5) / R
    uv = np.stack(np.meshgrid(g, g), -1).astype(np.float32)
    return Synthesizer.from_planes(u, m.height, SynthesisConfig(tile_size=0.5, seed=seed)), uv


def _main_peaks(acf: np.ndarray, count: int) -> list[tuple[int, int]]:
    """The ``count`` highest local maxima (dx, dy) outside the central lobe, dy >= 0 half."""
    local = (acf == ndimage.maximum_filter(acf, size=5, mode="wrap")) & ~central_lobe(acf)
    rows, cols = acf.shape
    found = []
    for index in np.argsort(np.where(local, acf, -np.inf).ravel())[::-1]:
        dy, dx = divmod(int(index), cols)
        dy, dx = (dy + rows // 2) % rows - rows // 2, (dx + cols // 2) % cols - cols // 2
        if (dy > 0 or (dy == 0 and dx > 0)) and (dx, dy) not in found:
            found.append((dx, dy))
        if len(found) == count:
            return found
    raise AssertionError("not enough ACF peaks")


def _peak_near(acf: np.ndarray, dx: int, dy: int, tolerance: tuple[int, int]) -> tuple[float, bool]:
    """Largest ACF value within ``tolerance`` of lag (dx, dy), and whether it is a local
    maximum (3 x 3) of the whole ACF."""
    rows, cols = acf.shape
    ys = (dy + np.arange(-tolerance[1], tolerance[1] + 1)) % rows
    xs = (dx + np.arange(-tolerance[0], tolerance[0] + 1)) % cols
    window = acf[np.ix_(ys, xs)]
    oy, ox = np.unravel_index(np.argmax(window), window.shape)
    y, x = ys[oy], xs[ox]
    neighbourhood = acf[np.ix_((y + np.arange(-1, 2)) % rows, (x + np.arange(-1, 2)) % cols)]
    return float(window.max()), bool(acf[y, x] >= neighbourhood.max())


def _acf_map_correlation(exemplar: np.ndarray, synthesized: np.ndarray, lobe: np.ndarray) -> float:
    """Pearson correlation of two ACFs over lags |dx|, |dy| < R/2 outside the central lobe."""
    lags = np.r_[0 : R // 2, -R // 2 : 0]
    keep = ~lobe[np.ix_(lags, lags)]
    a = exemplar[np.ix_(lags, lags)][keep]
    b = synthesized[np.ix_(lags, lags)][keep]
    return float(np.corrcoef(a, b)[0, 1])


@pytest.mark.parametrize("name", ["stone_tiles", "fabric"])
def test01_synthesized_acf_matches_the_exemplar_acf(name):
    """Measured (seed 0): ACF-map correlation with the exemplar 0.96 (stone_tiles) / 0.98
    (fabric); with uniformly random offsets 0.66 / 0.42."""
    synth, uv = _setup(name, seed=0)
    uniform = dataclasses.replace(synth, tables=OffsetTables.from_pdf(np.ones(synth.tables.shape)))
    guided = _acf_map_correlation(synth.pdf.acf, autocovariance(synth.synthesize(uv).features), synth.pdf.excluded)
    unguided = _acf_map_correlation(synth.pdf.acf, autocovariance(uniform.synthesize(uv).features), synth.pdf.excluded)
    assert guided > 0.9 and unguided < 0.75 and guided > unguided + 0.2, (guided, unguided)


@pytest.mark.parametrize("name", ["stone_tiles", "fabric"])
def test02_synthesis_keeps_the_exemplar_acf_peaks(name):
    """Measured (seed 0, gamma 2, tile 0.5; exemplar -> synthesized -> uniform offsets):
    stone_tiles (±32, 32) 0.91 -> 0.47-0.48 -> 0.09-0.10, (0, 32) 0.52 -> 0.45 -> 0.18,
    (-64, 32) 0.52 -> 0.41 -> 0.02, synthesized maxima 0-2 texels off along u, 0 along v;
    fabric (16, 0)/(0, 16) 0.92 -> 0.73 -> 0.54, (32, 0) 0.90 -> 0.57 -> 0.23, maxima exactly
    at the exemplar's lags."""
    synth, uv = _setup(name, seed=0)
    uniform = dataclasses.replace(synth, tables=OffsetTables.from_pdf(np.ones(synth.tables.shape)))
    acf = autocovariance(synth.synthesize(uv).features)
    acf_uniform = autocovariance(uniform.synthesize(uv).features)
    tolerance = PEAK_TOLERANCE[name]
    for dx, dy in _main_peaks(synth.pdf.acf, 4):
        value, is_peak = _peak_near(acf, dx, dy, tolerance)
        assert is_peak, f"no ACF peak within {tolerance} texels of {(dx, dy)}"
        assert value > 0.35 and value > 0.4 * synth.pdf.acf[dy % R, dx % R], (dx, dy, value)
        assert value > _peak_near(acf_uniform, dx, dy, tolerance)[0] + 0.1, (dx, dy)


def test03_repetition_at_the_exemplar_period_is_gone():
    """Measured (stone_tiles, tile 0.5, gamma 2): ACF at lag R = 0.39 / 0.42 / 0.44 (seeds 0-2)
    against exactly 1.0 for plain tiling."""
    for seed in range(3):
        synth, uv = _setup("stone_tiles", seed)
        plain = autocovariance(synth.plain_tiling(uv))
        acf = autocovariance(synth.synthesize(uv).features)
        assert plain[0, R] == pytest.approx(1.0, abs=1e-9) and plain[R, 0] == pytest.approx(1.0, abs=1e-9)
        at_period = 0.5 * (acf[0, R] + acf[R, 0])
        assert at_period < 0.5 * 0.5 * (plain[0, R] + plain[R, 0]), (seed, at_period)


@pytest.mark.parametrize("name", ["stone_tiles", "fabric"])
def test04_no_seams_at_tile_edges(name):
    """Mean neighbour difference across grid-A tile edges / everywhere. Measured (seed 0):
    blended 1.01 (stone_tiles) / 1.18 (fabric); grid A alone with its offsets, unblended:
    4.0 / 2.3 (visible seams)."""
    synth, uv = _setup(name, seed=0)
    blended = synth.synthesize(uv)
    hard = bilinear_wrap(synth.u_raw, uv, blended.sample.shift[0], synth.tables.shape)
    edge = int(round(synth.config.tile_size * R))  # texels per tile

    def edge_ratio(f: np.ndarray) -> float:
        du = np.abs(np.diff(f, axis=1)).sum(-1)  # du[:, k]: between texel columns k and k + 1
        dv = np.abs(np.diff(f, axis=0)).sum(-1)
        cut = np.arange(edge - 1, du.shape[1], edge)
        at_edges = np.concatenate([du[:, cut].ravel(), dv[cut].ravel()])
        return float(at_edges.mean() / np.concatenate([du.ravel(), dv.ravel()]).mean())

    seam, hard_seam = edge_ratio(blended.features), edge_ratio(hard)
    assert seam < 1.35 and hard_seam > 2.0 and hard_seam > 1.7 * seam, (seam, hard_seam)


def test05_peak_window_aligns_structure_exactly():
    """Offsets only at ACF maxima (peak_window=3), fabric seed 0: ACF-map correlation 0.99
    (0.98 with every shift allowed); structure kept, repetition at the period 0.84."""
    synth, uv = _setup("fabric", seed=0)
    peaks = Synthesizer.from_planes(synth.u_raw, config=SynthesisConfig(tile_size=0.5, seed=0, peak_window=3))
    acf = autocovariance(peaks.synthesize(uv).features)
    assert _acf_map_correlation(synth.pdf.acf, acf, synth.pdf.excluded) > 0.985
    for dx, dy in _main_peaks(synth.pdf.acf, 4):
        value, is_peak = _peak_near(acf, dx, dy, (0, 0))
        assert is_peak and value > 0.8, (dx, dy, value)
