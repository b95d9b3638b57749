"""MVInverse figures (neumat.inverse.evaluate): hand-checked metric values, perfect predictions
scoring perfectly, the reprojection consistency of the seed's Table 2 on a rendered scene, the
trivial baselines and the markdown table."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

pytest.importorskip("mitsuba")
pytest.importorskip("skimage")

from neumat.inverse.dataset import DataSettings, read_scene, render_data, scene_materials  # noqa: E402
from neumat.inverse.evaluate import (aligned_albedo, angular_error_deg, baselines, consistency_rmse,  # noqa: E402
                                     evaluate, margins, markdown_table, reprojection_pairs, rmse, scene_figures,
                                     ssim, summarize, training_constants)
from neumat.inverse.views import camera_from_world  # noqa: E402


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaldata")
    settings = DataSettings(size=42, views=3, spp=2, resolution=16, metal_probability=1.0, variant="scalar_rgb")
    return read_scene(render_data(out, scene_materials(["stone_tiles"], [], 16), 1, settings, seed=1)[0])


def _truth(scene):
    return {k: scene.arrays[k].astype(np.float64) for k in ("albedo", "metallic", "roughness", "normal")}


def test01_hand_checked_values():
    assert rmse(np.zeros(2), np.array([3.0, 4.0])) == pytest.approx(math.sqrt(12.5))
    n = angular_error_deg(np.array([[1.0, 0, 0], [2.0, 2.0, 0]]), np.array([[0, 1.0, 0], [1.0, 0, 0]]))
    np.testing.assert_allclose(n, [90.0, 45.0], atol=1e-9)
    gt = np.random.default_rng(0).uniform(0.1, 0.9, (8, 8, 3))
    np.testing.assert_allclose(aligned_albedo(gt * np.array([2.0, 0.5, 3.0]), gt), gt, atol=1e-12)  # per-channel scale
    const = aligned_albedo(np.full_like(gt, 0.3), gt)  # a constant aligns to the per-channel mean
    np.testing.assert_allclose(const, np.broadcast_to(gt.mean(axis=(0, 1)), gt.shape), atol=1e-12)
    assert ssim(gt, gt) == pytest.approx(1.0)
    assert ssim(np.clip(gt + 0.2, 0, 1), gt) < 0.999


def test02_perfect_predictions_score_perfectly(scene):
    m = summarize([scene_figures(scene, _truth(scene))])
    assert m["albedo_rel_l1"] < 1e-12 and m["albedo_psnr"] == 200.0 and m["albedo_ssim"] == pytest.approx(1.0)
    assert m["metallic_rmse"] == 0 and m["roughness_rmse"] == 0
    assert m["normal_mean_deg"] < 0.01 and m["normal_within_11.25_pct"] == 100.0
    # ground truth is itself consistent across views only up to its pixel footprint (tile edges, metal
    # borders): measured 0.012 albedo, 0.028 metallic, 0.015 roughness, the floor of this figure here
    assert m["consistency_albedo"] < 0.05 and m["consistency_roughness"] < 0.1


def test03_reprojection_consistency(scene):
    """A quantity of the surface point (its u coordinate) predicted in every view is consistent
    to < 1e-3 (bilinear reading of a smooth field); adding 0.1 x the view index makes every
    ordered pair (i, j) differ by 0.1·|i − j|, so the RMSE is 0.1·sqrt(mean (i − j)²) over the
    overlapping pixels (hand-computed from the pair sizes)."""
    pairs = reprojection_pairs(scene)
    assert {(i, j) for i, j, *_ in pairs} <= {(i, j) for i in range(3) for j in range(3) if i != j}
    assert sum(len(p) for *_, p in pairs) > 0.3 * 6 * 42 * 42  # views overlap on most of the sample
    u = scene.arrays["points"][..., :1].astype(np.float32)
    assert consistency_rmse(u, pairs) < 1e-3
    shifted = u + 0.1 * np.arange(3, dtype=np.float32)[:, None, None, None]
    expected = 0.1 * math.sqrt(sum(len(p) * (i - j) ** 2 for i, j, p, _ in pairs) / sum(len(p) for *_, p in pairs))
    assert consistency_rmse(shifted, pairs) == pytest.approx(expected, rel=0.01)


def test04_baselines_margins_and_table(scene):
    """Baselines from training-set constants: ``mean`` aligns to each view's per-channel mean
    albedo (hand-computed), faces the camera; ``flat`` holds the plane's normal in each camera
    frame; constants are trivially consistent (0). Margins: the truth as the "model" beats the
    best baseline on every figure (ties only where the flat normal is already within a threshold
    everywhere), consistency compared with ``image`` only (metallic / roughness: no comparison)."""
    constants = training_constants([scene])
    assert constants["metallic"] == pytest.approx(scene.arrays["metallic"].astype(np.float64).mean())
    base = baselines(constants)
    flat = base["flat"](scene)["normal"]
    np.testing.assert_allclose(flat[1, 5, 7], camera_from_world(scene.poses[1])[:, 2])
    report = evaluate([scene], {"mvinverse": _truth, **base})
    const, truth = report["methods"]["mean"], report["methods"]["mvinverse"]
    gt = scene.arrays["albedo"].astype(np.float64)
    hand = np.mean([np.abs(g.mean(axis=(0, 1)) - g).sum() / g.sum() for g in gt])
    assert const["albedo_rel_l1"] == pytest.approx(hand, rel=1e-9)
    assert const["consistency_albedo"] == 0.0 and report["methods"]["flat"]["consistency_roughness"] == 0.0
    normals = scene.arrays["normal"].astype(np.float64)
    assert const["normal_mean_deg"] == pytest.approx(angular_error_deg(normals, np.array([0, 0, -1.0])).mean())
    assert report["methods"]["flat"]["normal_mean_deg"] < const["normal_mean_deg"]  # the pose helps
    report["margins"], report["margins_posed"] = free, posed = margins(report), margins(report, against=("flat",))
    assert free["normal_mean_deg"]["baseline"] == "mean" and posed["normal_mean_deg"]["baseline"] == "flat"
    assert free["consistency_albedo"]["baseline"] == "image" and free["consistency_metallic"]["baseline"] is None
    assert posed["consistency_albedo"]["baseline"] is None and posed["roughness_rmse"]["baseline"] == "flat"
    for m in (free, posed):
        compared = {k: v for k, v in m.items() if v["baseline"] is not None}
        assert all(v["margin"] >= 0 for v in compared.values()), m
        # strictly better except where the flat plane normal is already within the thresholds everywhere
        assert [k for k, v in compared.items() if not v["margin"] > 0] == [
            k for k in ("normal_within_11.25_pct", "normal_within_30_pct") if m[k]["baseline_value"] == 100.0]
    m = free
    assert m["albedo_psnr"]["margin"] == pytest.approx(truth["albedo_psnr"] - max(
        report["methods"][n]["albedo_psnr"] for n in ("mean", "flat", "image")))
    table = markdown_table(report)
    assert table.splitlines()[0].startswith("| method | albedo rel. L1")
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:8]] == [
        "mvinverse", "mean", "flat", "image", "**margin**", "**margin vs posed**"]
    assert "1 scenes, 3 views" in table and "vs image" in table and "n/a" in table
    assert "constant prediction scores 0" in table


def test06_masked_figures(scene):
    """With a ``mask`` (curved shapes), nothing outside it counts: a prediction wrecked there
    scores as the intact one; the consistency pairs keep to the mask."""
    masked = dataclasses.replace(scene, arrays={**scene.arrays})
    mask = np.zeros(scene.arrays["image"].shape[:3] + (1,), np.uint8)
    mask[:, 8:34, 6:30] = 1
    masked.arrays["mask"] = mask
    pred = {k: v + 0.05 for k, v in _truth(scene).items()}
    wrecked = {k: v.copy() for k, v in pred.items()}
    for v in wrecked.values():
        v[mask[..., 0] == 0] = 0.9 * np.array([1.0, -1.0, 0.5])[:v.shape[-1]]
    a, b = summarize([scene_figures(masked, pred)]), summarize([scene_figures(masked, wrecked)])
    assert a == pytest.approx(b, rel=1e-9)
    assert a != pytest.approx(summarize([scene_figures(scene, wrecked)]), rel=1e-3)
    for i, j, pix, xy in reprojection_pairs(masked):
        assert mask[i, pix[:, 0], pix[:, 1], 0].all()
        assert np.all((xy >= [6, 8]) & (xy <= [29, 33]))


def test05_eval_command(scene, tmp_path):
    from typer.testing import CliRunner

    from neumat.cli import app

    data = scene.folder.parent
    js, md = tmp_path / "eval.json", tmp_path / "eval.md"
    result = CliRunner().invoke(app, ["inverse", "eval", str(data), "--baselines-only", "--json", str(js),
                                      "--markdown", str(md)])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(js.read_text())
    assert set(report["methods"]) == {"mean", "flat", "image"} and report["views"] == 3
    assert "oracle" in report["constants_from"] and "margins" not in report
    assert md.read_text().startswith("| method |")
    missing = CliRunner().invoke(app, ["inverse", "eval", str(data)])
    assert missing.exit_code == 2 and "needs trained weights" in " ".join(missing.output.replace("│", " ").split())
