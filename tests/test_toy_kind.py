"""A third material kind added in one module (tests/toy_kind.py): bundles of it save, load and
validate, ``neumat.metrics`` evaluates it through its numpy reference, and the Renderer draws it
with its own pass — no edit to the bundle format, the renderer or the metrics."""

from __future__ import annotations

import numpy as np
import pytest

from neumat.bundle import BundleError, load_bundle, save_bundle
from neumat.material import kind_of
from neumat.metrics import evaluate_heldout
from neumat.render import shapes
from neumat.render.camera import Camera
from neumat.render.lights import DirectionalLight
from neumat.render.renderer import Renderer
from toy_kind import KIND, TOY, make_constant_bundle

COLOUR = (0.25, 0.5, 0.125)


def test01_bundle_round_trip_and_declaration(tmp_path):
    bundle = make_constant_bundle(COLOUR)
    path = save_bundle(bundle, tmp_path / "toy.nmat")
    loaded = load_bundle(path)
    assert loaded.kind == TOY and kind_of(loaded) is KIND
    assert np.array_equal(loaded.planes["colour"], bundle.planes["colour"])
    loaded.planes["U"] = loaded.planes.pop("colour")
    with pytest.raises(BundleError, match="plane"):
        loaded.validate()  # the registered layout is enforced like the shipped kinds'


def test02_metrics_use_the_kinds_reference():
    bundle = make_constant_bundle(COLOUR)
    up, down = np.float32([0, 0.6, 0.8]), np.float32([0, 0.6, -0.8])
    image = np.broadcast_to(np.float32(COLOUR), (4, 4, 3))
    report = evaluate_heldout(bundle, [(up, up, image), (up, up, 2 * image)])
    assert report["per_direction"][0]["rel_l1"] == 0.0
    assert report["per_direction"][1]["rel_l1"] == pytest.approx(0.5)
    dark = evaluate_heldout(bundle, [(down, up, image)])
    assert dark["rel_l1"] == pytest.approx(1.0)  # no light from below


def test03_renderer_draws_it_with_its_own_pass(device):
    renderer = Renderer(make_constant_bundle(COLOUR), shapes.plane(2.0, segments=2), (32, 32), device=device)
    cam = Camera.orbit(azimuth=-60, elevation=55, distance=3.0, width=32, height=32)
    light = DirectionalLight((0.0, 0.0, 1.0), (2.0, 2.0, 2.0))
    res = renderer.render(cam, [light], aovs=("btf", "mask"), tonemap="clamp")
    mask = res.aovs["mask"][..., 0] > 0.5
    assert 0.2 < mask.mean() < 1.0
    np.testing.assert_array_equal(res.aovs["btf"][mask], np.tile(np.float32(COLOUR), (mask.sum(), 1)))
    np.testing.assert_allclose(res.image[mask], np.tile(2 * np.float32(COLOUR), (mask.sum(), 1)), rtol=1e-6)
    assert not np.any(res.image[~mask] == 2 * np.float32(COLOUR)[0])  # background elsewhere
