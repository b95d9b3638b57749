"""Several lights: the renderer shades every light (one MLP evaluation each) and radiance is
linear in the lights — render([A, B]) = render([A]) + render([B]) — with and without the
traced self-shadowing; the ``btf`` AOV stays the first light's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neumat.render.camera import Camera
from neumat.render.lights import DirectionalLight, PointLight
from neumat.render.renderer import Renderer

LEATHER = Path(__file__).resolve().parents[1] / "assets" / "materials" / "leather.nmat"
SIZE = 64
LIGHT_A = DirectionalLight((0.6, -0.3, 0.35), (2.0, 1.5, 1.0))
LIGHT_B = PointLight((-0.8, 0.9, 0.6), (4.0, 5.0, 6.0))
REL_TOL = 1e-5
"""float32 sums of two terms: relative error ~1e-7 (one rounding)."""


@pytest.fixture(scope="module")
def renderer(device):
    return Renderer(LEATHER, "plane", (SIZE, SIZE), device=device)


CAMERA = Camera.orbit(azimuth=-60.0, elevation=40.0, distance=3.0)


@pytest.mark.parametrize("shadows", [False, True], ids=["no_shadows", "shadows"])
def test01_radiance_is_additive_in_lights(renderer, shadows):
    def render(lights):
        return renderer.render(CAMERA, lights, hf=True, synthesis=False, shadows=shadows, aovs=("btf", "mask"))

    both, a, b = render([LIGHT_A, LIGHT_B]), render([LIGHT_A]), render([LIGHT_B])
    mask = both.aovs["mask"][..., 0] > 0.5
    assert mask.mean() > 0.5
    expect = a.image[mask] + b.image[mask]
    assert np.all(b.image[mask].max(axis=-1) >= 0) and b.image[mask].mean() > 0.05 * a.image[mask].mean()
    assert np.allclose(both.image[mask], expect, rtol=REL_TOL, atol=1e-7)
    assert np.array_equal(both.aovs["btf"], a.aovs["btf"])  # the first light's BTF value
    assert ("shadow" in both.timings_ms) == shadows


def test02_shadows_darken_only_where_traced(renderer):
    grazing = DirectionalLight((0.95, 0.0, 0.12), (1.0, 1.0, 1.0))
    on = renderer.render(CAMERA, [grazing], synthesis=False, shadows=True, aovs=("mask",))
    off = renderer.render(CAMERA, [grazing], synthesis=False, shadows=False)
    mask = on.aovs["mask"][..., 0] > 0.5
    darker = on.image[mask].sum(-1) < off.image[mask].sum(-1) * (1 - 1e-6)
    assert np.all(on.image[mask] <= off.image[mask] * (1 + 1e-6) + 1e-9)
    assert 0.02 < darker.mean() < 0.98  # grazing light: part of the relief is in shadow


def test03_too_many_lights(renderer):
    with pytest.raises(ValueError, match="at most 4"):
        renderer.render(CAMERA, [LIGHT_A] * 5)
