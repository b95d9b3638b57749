"""Relief self-shadowing on curved meshes (sphere, rounded cube, draped cloth) against Mitsuba 3:
the truly displaced mesh (4 vertices per texel), neumat's camera rays, one shadow ray per pixel
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
FRACTION_TOLERANCE = 0.02
"""Shadowed fractions within the issue's 2 percentage points. Measured at this test's 96² with
the default shadow mode (``prisms``: shadow rays through the shell prisms): at most 0.9 points
(the cloth and the polar cap at 30°); with the osculating-circle march (``march``) at most 1.8
points. Before the per-pixel metric and any curved shadow path (one mesh-wide uv_to_world,
straight tangent-plane rays), at 128²: sphere polar cap 48.5 / 21.5 / 5.6 % against Mitsuba's
61.2 / 39.0 / 18.9 %, equator band 59.0 / 56.8 / 57.1 % against 49.5 / 44.9 / 44.3 %."""
IOU_BOUND = 0.9
"""IoU of the shadow masks, every region and elevation but the polar cap's (issue 12's bound).
Measured here (96², Mitsuba mesh at 4 vertices per texel, converged: see
mitsuba_shadows.VERTICES_PER_TEXEL), prisms: sphere 0.97 / 0.96 / 0.96, equator band 0.97 /
0.98 / 0.98, cube flat faces 0.95 / 0.92 / 0.97, cloth 0.97 / 0.95 / 0.95. The march: sphere
0.93 / 0.92 / 0.92, equator band 0.94 / 0.95 / 0.95, cloth 0.93 / 0.93 / 0.93."""
POLAR_CAP_IOU_BOUND = {30.0: 0.9, 50.0: 0.85, 70.0: 0.78}
"""The sphere's polar cap (|lat| > 60°), measured 0.95 / 0.89 / 0.82 here (the march: 0.88 /
0.89 / 0.78). With ``python -m neumat.bench.shadow_fidelity`` it reads 0.96 / 0.93 / 0.87 at
256² and 0.96 / 0.93 / 0.86 at 512², where the flat plane at 70° reads 0.87 and 0.86 too: the
gap left at 70° is not curvature (only 9 % of the cap's and 1.5 % of the plane's pixels are
shadowed there, in specks a few texels wide). At 96² the cap holds few pixels of each speck;
its errors are balanced (at 128², 12 pixels falsely lit and 12 falsely shadowed of 1651)."""
HIT_UV_MEDIAN, HIT_UV_P90 = 0.01, 0.15
"""Texels between neumat's hits and Mitsuba's (the exact prism map) per region, median and 90th
percentile (the tail includes the reference's own facets). Measured: median <= 0.004, p90 <=
0.114 (the polar cap); with one straight line per curved prism (128², 8 vertices per texel)
medians were 0.05-0.06 and p90 0.16 (equator) to 0.32 (polar cap)."""
NORMAL_MEDIAN_DEG = 12.0
"""Median angle between neumat's relief normal and the displaced mesh's facet normal at the
hits, degrees. The plane itself reads 10.9° (the relief normal interpolates central-difference
texel normals, the facets are the bilinear surface's own); measured here 9.9 (sphere), 10.1
(cube), 10.7 (cloth): curvature and the UV metric add nothing. The base mesh's normal reads 54°."""


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
        polar = r["region"].startswith("sphere, polar cap")
        assert r["iou"] >= (POLAR_CAP_IOU_BOUND[r["elevation"]] if polar else IOU_BOUND), r
        assert r["uv_median"] <= HIT_UV_MEDIAN and r["uv_p90"] <= HIT_UV_P90, r
        assert r["normal_median_deg"] <= NORMAL_MEDIAN_DEG, r
