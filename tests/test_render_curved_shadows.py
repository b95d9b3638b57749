"""Relief self-shadowing on curved meshes (sphere, rounded cube, draped cloth) against Mitsuba 3:
the truly displaced mesh (~2 vertices per texel), neumat's camera rays, one shadow ray per pixel
(neumat.render.reference.mitsuba_shadows), gravel, light azimuth 30°, elevations 30/50/70°,
over the pixels both see where the base mesh faces the light (neumat.bench.shadow_fidelity;
the full-size table: ``python -m neumat.bench.shadow_fidelity``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from neumat.bench.shadow_fidelity import markdown, measure_scene

pytest.importorskip("mitsuba", reason="the shadow reference is a Mitsuba 3 render")

GRAVEL = Path(__file__).resolve().parents[1] / "assets" / "materials" / "gravel.nmat"
SIZE = 96
FRACTION_TOLERANCE = 0.025
"""Shadowed fractions within 2.5 percentage points at this test's 96² (measured after the change,
here: at most 2.2 points, the equator band at 50°; at 128², python -m neumat.bench.shadow_fidelity:
at most 2.0 points on every row). Before the per-pixel metric and the curved shadow path (one
mesh-wide uv_to_world, straight tangent-plane rays), at 128²: sphere polar cap 48.5 / 21.5 /
5.6 % against Mitsuba's 61.2 / 39.0 / 18.9 %, equator band 59.0 / 56.8 / 57.1 % against 49.5 /
44.9 / 44.3 %; with the metric but straight rays the equator band still read 58.8 / 55.5 /
55.0 % against 53.0 / 48.7 / 46.1 %. Mitsuba's faceted mesh itself reads ~1 point less shadow
than the exact bilinear surface (the plane: 46.1 / 19.7 / 1.5 % against 47.4 / 20.9 / 1.7 %)."""
IOU_BOUND = {30.0: 0.85, 50.0: 0.80, 70.0: 0.65}
"""IoU of the shadow masks per light elevation. The reference itself bounds it: on the plane,
where neumat's march is exact (IoU 0.97–0.99 against the exact bilinear shadow test,
neumat.data.heightfield.HeightField.occluded, at the same hit points), Mitsuba's faceted mesh
scores 0.96 / 0.92 / 0.82 against that exact test (0.97 / 0.94 / 0.84 at 4 vertices per texel):
the facets move the shadow terminators of grazing micro-slopes. Measured here after the change
(128²): cube flat faces 0.95 / 0.93 / 0.94, sphere 0.91 / 0.87 / 0.89 (equator band 0.92 / 0.90 /
0.92, polar cap 0.87 / 0.81 / 0.72), cloth 0.91 / 0.91 / 0.86; before: polar cap 0.64 / 0.42 /
0.19."""


@pytest.fixture(scope="module")
def gravel():
    from neumat.bundle import load_bundle

    return load_bundle(GRAVEL)


@pytest.mark.parametrize("scene", ["sphere", "cube", "cloth"])
def test01_shadows_match_mitsuba(device, gravel, scene):
    rows = measure_scene(device, gravel, scene, SIZE)
    print("\n" + markdown(rows))
    for r in rows:
        assert r["pixels"] > 300, r  # each region holds enough pixels to measure
        assert abs(r["ours"] - r["mitsuba"]) <= FRACTION_TOLERANCE, r
        assert r["iou"] >= IOU_BOUND[r["elevation"]], r
