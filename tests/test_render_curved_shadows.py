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

from neumat.fidelity.reference import same_ray_available  # noqa: E402

pytestmark = pytest.mark.skipif(not same_ray_available(), reason="the shadow reference runs Mitsuba's llvm_ad_rgb, "
                                "which needs libLLVM >= 16 (scripts/ensure_llvm.sh)")

GRAVEL = Path(__file__).resolve().parents[1] / "assets" / "materials" / "gravel.nmat"
SIZE = 96
FRACTION_TOLERANCE = 0.02
"""Shadowed fractions within the issue's 2 percentage points. Measured at this test's 96² with
the default shadow mode (``prisms``: shadow rays through the shell prisms) against the
fixed-lift reference (mitsuba_shadows.SHADOW_LIFT_TEXELS): at most 1.7 points (the polar cap
at 50°: see POLAR_CAP_IOU_BOUND), elsewhere at most 0.3.
Before the per-pixel metric and any curved shadow path (one mesh-wide uv_to_world, straight
tangent-plane rays), at 128²: sphere polar cap 48.5 / 21.5 / 5.6 % against Mitsuba's 61.2 /
39.0 / 18.9 %, equator band 59.0 / 56.8 / 57.1 % against 49.5 / 44.9 / 44.3 %."""
IOU_BOUND = 0.9
"""IoU of the shadow masks, every region and elevation but the polar cap's (issue 12's bound).
Measured here (96², Mitsuba mesh at 4 vertices per texel, shadow rays lifted 0.01 texel along
the facet normal), prisms with the attached-shadow start test: sphere 0.97 / 0.96 / 0.96,
equator band 0.97 / 0.98 / 0.98, cube flat faces 0.95 / 0.95 / 0.97, cloth 0.98 / 0.96 / 0.96."""
POLAR_CAP_IOU_BOUND = {30.0: 0.9, 50.0: 0.85, 70.0: 0.78}
"""The sphere's polar cap (|lat| > 60°), measured 0.96 / 0.90 / 0.80 here. With ``python -m
neumat.bench.shadow_fidelity`` (256²) it reads 0.97 / 0.93 / 0.86, where the flat plane at 70°
reads 0.92 (0.87 against the old ``spawn_ray`` reference, whose offset lit pits). What is left
at 70° are sparse specks (9 % of the cap is shadowed): at 192², 60-75° latitude reads 0.855 (27
mismatched pixels of 2774) and the 101 pixels within 5° of the pole 0.55, where a pixel spans
tens of u texels and neumat's and Mitsuba's hits there lie 0.5-15 u texels apart (the cap's
median is 0.004)."""
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
