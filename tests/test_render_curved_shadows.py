"""Relief self-shadowing on curved meshes (sphere, rounded cube, draped cloth) against Mitsuba 3:
the truly displaced mesh (4 vertices per texel), neumat's camera rays, one shadow ray per pixel
(neumat.render.reference.mitsuba_shadows), gravel, light azimuth 30°, elevations 30/50/70°,
over the pixels both see where the base mesh faces the light (neumat.bench.shadow_fidelity;
the full-size table: ``python -m neumat.bench.shadow_fidelity [--supersample 4]``): the binary
shadow masks at one ray per pixel (test01) and the per-pixel shadowed coverage of 4 × 4 rays
per pixel (test02, test03).

Near the UV sphere's poles the displaced mesh has curtains: the faces of the pole row with two
coincident corners cover a UV triangle each but no area, and Mitsuba's mesh displaces them into
vertical sheets holding that triangle's relief (fins up to 8 texels of the map wide). Until
neumat traced them too (``shaders/prism.slang``), within 5° of the pole (256², 217 pixels,
4 × 4 rays) it shadowed 47.1 / 33.6 / 18.5 % of the rays against Mitsuba's 58.9 / 47.4 /
35.2 % (soft IoU 0.75 / 0.63 / 0.49); now 59.1 / 48.1 / 37.6 % against 59.0 / 47.5 / 35.3 %
(0.96 / 0.93 / 0.89), and the relief normal there is 3.9° from the mesh's (14.9° before)."""

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
the default shadow mode (``prisms``: shadow rays through the shell prisms, curtains traced)
against the fixed-lift reference (mitsuba_shadows.SHADOW_LIFT_TEXELS): at most 0.8 points (the
polar cap at 50°; 1.7 before the curtains), elsewhere at most 0.5.
Before the per-pixel metric and any curved shadow path (one mesh-wide uv_to_world, straight
tangent-plane rays), at 128²: sphere polar cap 48.5 / 21.5 / 5.6 % against Mitsuba's 61.2 /
39.0 / 18.9 %, equator band 59.0 / 56.8 / 57.1 % against 49.5 / 44.9 / 44.3 %."""
IOU_BOUND = 0.9
"""IoU of the shadow masks, every region and elevation but the polar cap's (issue 12's bound).
Measured here (96², Mitsuba mesh at 4 vertices per texel, shadow rays lifted 0.01 texel along
the facet normal), prisms with the attached-shadow start test: sphere 0.97 / 0.96 / 0.96,
equator band 0.97 / 0.98 / 0.98, cube flat faces 0.95 / 0.95 / 0.97, cloth 0.98 / 0.96 / 0.96."""
POLAR_CAP_IOU_BOUND = {30.0: 0.9, 50.0: 0.9, 70.0: 0.85}
"""The sphere's polar cap (|lat| > 60°), measured 0.97 / 0.93 / 0.88 here (0.96 / 0.90 / 0.80
before the curtains, module docstring). With ``python -m neumat.bench.shadow_fidelity`` (256²)
it reads 0.97 / 0.94 / 0.89 (0.97 / 0.93 / 0.86 before), where the flat plane at 70° reads
0.91: at 70° few pixels are shadowed (9.5 %), and the cap at 60-85° latitude reads 0.90 with
one ray per pixel and with 4² rays alike, as before; within 5° of the pole 0.86 (0.49
before)."""
HIT_UV_MEDIAN, HIT_UV_P90 = 0.01, 0.15
"""Texels between neumat's hits and Mitsuba's (the exact prism map) per region, median and 90th
percentile (the tail includes the reference's own facets, and on a curtain any uv of the
sheet's fold at the hit's height is exact). Measured: median <= 0.004, p90 <= 0.106 (the polar
cap); with one straight line per curved prism (128², 8 vertices per texel)
medians were 0.05-0.06 and p90 0.16 (equator) to 0.32 (polar cap)."""
NORMAL_MEDIAN_DEG = 12.0
"""Median angle between neumat's relief normal and the displaced mesh's facet normal at the
hits, degrees. The plane itself reads 10.9° (the relief normal interpolates central-difference
texel normals, the facets are the bilinear surface's own); measured here 9.9 (sphere), 9.8
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


SUPERSAMPLE_SIZE, SUPERSAMPLE = 64, 4
"""The supersampled comparison: 64² pixels of 4 × 4 rays each (a 256² frame for both
renderers), per pixel the fraction of its counted rays shadowed
(``shadow_agreement(..., supersample=4)``)."""
SOFT_IOU_BOUND = 0.9
"""Soft IoU of the per-pixel shadowed coverage, Σ min / Σ max over the pixels (issue 12's 0.9
for the masks), every region and elevation; the fractions of the rays shadowed within
FRACTION_TOLERANCE. Measured here: sphere 0.98 / 0.97 / 0.97, equator band 0.98 / 0.98 / 0.98,
polar cap 0.98 / 0.95 / 0.91, cube flat faces 0.98 / 0.96 / 0.97, cloth 0.98 / 0.97 / 0.95
(slack >= 0.05 but for the polar cap at 70°, test03); fractions within 0.4 points (the polar
cap at 50°). Before the curtains the polar cap read 0.97 / 0.94 / 0.87 (0.86 at 256² × 4²,
0.87 at 128² × 8², 0.885 at 64² × 16² rays; module docstring); now 0.90 at 256² × 4², where the
cap's 60-85° band reads 0.90 too (POLAR_CAP_IOU_BOUND)."""
POLAR_CAP_70 = ("sphere, polar cap (|lat| > 60°)", 70.0)


@pytest.fixture(scope="module")
def supersampled(device, gravel):
    """Rows of ``measure_scene(..., SUPERSAMPLE_SIZE, supersample=SUPERSAMPLE)`` per scene,
    measured once per module."""
    rows = {}

    def measure(scene: str) -> list[dict]:
        if scene not in rows:
            rows[scene] = measure_scene(device, gravel, scene, SUPERSAMPLE_SIZE, supersample=SUPERSAMPLE)
            print("\n" + markdown(rows[scene]))
        return rows[scene]

    return measure


@pytest.mark.parametrize("scene", ["sphere", "cube", "cloth"])
def test02_supersampled_coverage_matches_mitsuba(supersampled, scene):
    for r in supersampled(scene):
        assert r["ss_pixels"] > 300, r  # each region holds enough pixels to measure
        assert abs(r["ss_ours"] - r["ss_mitsuba"]) <= FRACTION_TOLERANCE, r
        if (r["region"], r["elevation"]) != POLAR_CAP_70:  # test03
            assert r["soft_iou"] >= SOFT_IOU_BOUND, r


def test03_supersampled_polar_cap_at_70_degrees(supersampled):
    """The row with the least slack (0.91 against 0.9; SOFT_IOU_BOUND), apart from test02 so
    that it reads by itself."""
    (row,) = [r for r in supersampled("sphere") if (r["region"], r["elevation"]) == POLAR_CAP_70]
    assert row["soft_iou"] >= SOFT_IOU_BOUND, row
