"""NeuMIP training (neumat.train.neumip): texture-only fitting, parallax, shipped assets, CLI.

The heavy checks use the shipped assets (``make assets``): the universal decoders
``assets/neumip/universal_mlps.safetensors`` (pretrained on leather, fabric, brick, gravel,
grass) and ``assets/materials/stone_tiles_neumip.nmat`` (stone_tiles, unseen in pretraining,
textures fitted with the decoders frozen). Other runs are tiny (a few hundred steps at most).
"""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from neumat.bundle import load_bundle
from neumat.cli import app
from neumat.data import SliceRenderer, make_material
from neumat.material import SOURCE_KEY
from neumat.material.neumip import (
    bundle_max_offset,
    check_neumip,
    offsets_int8,
    render_neumip_int8,
)
from neumat.metrics import error_metrics
from neumat.models.neumip import NeuMipField
from neumat.train.neumip import (
    NeuMipConfig,
    load_decoders,
    load_material,
    material_metrics,
    optimize,
)
from neumat.train.neumip.export import grazing, predict
from neumat.train.neumip.fit import (
    cross_view_offset_penalty,
    normal_view_offset_penalty,
)
from neumat.train.sampling import validation_batch
from neumat.train.sources import make_source
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
DECODERS = ROOT / "assets" / "neumip" / "universal_mlps.safetensors"
SHIPPED = ROOT / "assets" / "materials" / "stone_tiles_neumip.nmat"
TINY = NeuMipConfig(texture_resolution=16, steps=6, batch_size=256, val_samples=1024)


@pytest.fixture(scope="module")
def decoders():
    return load_decoders(DECODERS)


@pytest.fixture(scope="module")
def shipped():
    return load_bundle(SHIPPED)


def _fit_field(decoders, cfg, material, steps):
    nets, max_offset, _ = decoders
    torch.manual_seed(cfg.seed)
    field = NeuMipField(1, cfg.texture_resolution, max_offset, nets)
    optimize(field, [material], cfg, steps, decoders="frozen", progress=False)
    return field


def test01_texture_fit_trains_textures_only(decoders):
    """Frozen decoders: weights and INT8 ranges bit-identical after fitting; textures move."""
    nets = decoders[0]
    before = {k: v.clone() for k, v in nets.state_dict().items()}
    material = load_material(TINY, "stone_tiles")
    field = _fit_field(decoders, TINY, material, TINY.steps)
    for k, v in nets.state_dict().items():
        assert torch.equal(v, before[k]), f"decoder tensor {k} changed during texture-only fitting"
    assert all(p.grad is None for p in nets.parameters()), "no gradient may reach the frozen decoders"
    torch.manual_seed(TINY.seed)
    fresh = NeuMipField(1, TINY.texture_resolution, decoders[1], nets)
    for name in ("offset", "rgb"):
        moved = (getattr(field.textures[0], name) - getattr(fresh.textures[0], name)).detach().abs().mean()
        assert float(moved) > 1e-3, f"texture {name} did not train"


def test02_texture_fit_is_deterministic(decoders):
    material = load_material(TINY, "stone_tiles")
    a = _fit_field(decoders, TINY, material, 4)
    b = _fit_field(decoders, TINY, material, 4)
    for name in ("offset", "rgb"):
        assert torch.equal(getattr(a.textures[0], name), getattr(b.textures[0], name))


def test03_parallax_offsets_beat_zero_offset_on_grazing_views(decoders):
    """Same budget, same frozen decoders, textures fitted twice: with the offset network and
    with Δu forced to 0. On held-out configurations (never trained on) with θo >= 60°, the
    offsets must win by >= 0.5 dB PSNR. Measured with the shipped decoders on a fresh set-up
    (2026-12-04: torch 2.13.0, numpy 2.4.6): 33.40 vs 32.53 dB, +0.87 dB, and the code of the
    previous release gives the same figures here, although 38.03 vs 36.30 dB (+1.73) was
    recorded when the decoders were made. Deterministic on CPU; the bound leaves room for other
    CPUs' float summation."""
    cfg = NeuMipConfig(texture_resolution=64, batch_size=2048, val_samples=16384)
    material = load_material(cfg, "stone_tiles")
    scores = {}
    for zero in (False, True):
        run = dataclasses.replace(cfg, zero_offset=zero)
        field = _fit_field(decoders, run, material, 250)
        mask = grazing(material.val)
        pred = predict(field, 0, material.val, zero_offset=zero)[mask] * np.float32(material.value_scale)
        scores[zero] = error_metrics(pred, material.val.rgb[mask])["psnr"]
    assert scores[False] - scores[True] >= 0.5, scores


@pytest.fixture(scope="module")
def shipped_renderer(shipped):
    """The data renderer of the shipped material's synthetic BTF (its height field's tracer)."""
    spec = shipped.provenance[SOURCE_KEY]
    return SliceRenderer(make_material(spec["name"], spec["resolution"], spec["seed"]))


def _uv_grid(n=64):
    g = (np.arange(n) + 0.5) / n
    return np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)


def _view(theta_deg, phi_deg):
    t, p = np.radians(theta_deg), np.radians(phi_deg)
    return np.array([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)])


def _offsets(bundle, uv, wo):
    return offsets_int8(bundle, uv.astype(np.float32), np.broadcast_to(wo.astype(np.float32), (len(uv), 3)))


def test04_learned_offsets_follow_the_true_parallax(shipped, shipped_renderer):
    """The shipped material's INT8 offsets vs the analytic parallax of its height field: the
    shift from the reference uv (ray entering the shell top) to the surface point the ray hits,
    ``-(ωo.xy / ωo.z) (h_top - h)``, traced by the data renderer, at θo = 65° and 8 azimuths on
    a 64² uv grid. Statistic: Pearson r of the within-view variation (each view's mean removed
    from both; a per-view mean shift only re-registers the texture), both components pooled.
    Measured 0.392 (per view 0.29 .. 0.49; 0.111 before training penalized only the offsets'
    part across the view azimuth); bound 0.25 and every view positive."""
    uv = _uv_grid()
    learned, true, per_view = [], [], []
    for phi in np.arange(8) * 45.0 + 10.0:
        wo = _view(65.0, phi)
        shift = shipped_renderer.trace_reference(uv, wo)[:, :2] - uv
        du = _offsets(shipped, uv, wo).astype(np.float64)
        learned.append(du - du.mean(0))
        true.append(shift - shift.mean(0))
        per_view.append(np.corrcoef(learned[-1].ravel(), true[-1].ravel())[0, 1])
    r = np.corrcoef(np.concatenate(learned).ravel(), np.concatenate(true).ravel())[0, 1]
    assert r >= 0.25, f"offset / true-parallax correlation {r:.3f}"
    assert np.all(np.asarray(per_view) > 0), per_view


def test05_shipped_material_reproduces_its_metrics(shipped):
    """Rebuild the held-out set from the bundle's provenance; INT8 figures as recorded, and good."""
    check_neumip(shipped)
    prov = shipped.provenance
    cfg = NeuMipConfig(**{k: v for k, v in prov["config"].items() if k != "qat"})
    val = validation_batch(make_source(prov[SOURCE_KEY]), cfg.seed, cfg.val_samples)
    m = error_metrics(render_neumip_int8(shipped, val.uv, val.wi, val.wo), val.rgb)
    assert m["psnr"] == pytest.approx(prov["metrics"]["int8_psnr"], abs=1e-3)
    assert m["psnr"] >= 39.7 and prov["metrics"]["int8_gap_db"] <= 0.5, prov["metrics"]  # measured 40.76, gap 0.004
    assert SHIPPED.stat().st_size <= 1 << 20


def test06_cli_fit_writes_a_valid_bundle(tmp_path):
    out = tmp_path / "st.nmat"
    res = CliRunner().invoke(app, ["neumip", "fit", "stone_tiles", "--decoders", str(DECODERS), "--out", str(out),
                                   "--steps", "3", "--batch-size", "128", "--texture-resolution", "16",
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    bundle = load_bundle(out)
    check_neumip(bundle)
    assert bundle.planes["rgb"].shape == (16, 16, 12)
    assert {"max_offset", "value_scale", "source", "metrics"} <= set(bundle.provenance)


def test06b_cli_fits_a_users_texture_set(tmp_path):
    """``neumat neumip fit --maps DIR``: a PBR texture set with real-world file names (the
    fidelity suite's rough plaster, 32² maps) becomes a NeuMIP bundle that records its maps and
    height scale; naming both or neither of MATERIAL and --maps is refused."""
    from neumat.fidelity.materials import SUITE, write_texture_set

    maps = write_texture_set(SUITE["rough_plaster"], tmp_path / "plaster", 32)
    out = tmp_path / "plaster.nmat"
    args = ["--decoders", str(DECODERS), "--out", str(out), "--steps", "2", "--batch-size", "128",
            "--texture-resolution", "16", "--no-progress"]
    res = CliRunner().invoke(app, ["neumip", "fit", "--maps", str(maps), "--height-scale", "0.02", *args])
    assert res.exit_code == 0, res.output
    bundle = load_bundle(out)
    check_neumip(bundle)
    source = bundle.provenance[SOURCE_KEY]
    assert source["kind"] == "maps" and source["path"] == str(maps.resolve()) and source["height_scale"] == 0.02
    assert bundle.provenance["material"] == "plaster"
    for bad in (["stone_tiles", "--maps", str(maps)], [], ["stone_tiles", "--height-scale", "0.02"]):
        res = CliRunner().invoke(app, ["neumip", "fit", *bad, *args])
        assert res.exit_code == 2, res.output


def test07_cli_errors_are_clear(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["neumip", "fit", "stone_tiles", "--decoders", str(tmp_path / "nope.safetensors"),
                              "--out", str(tmp_path / "x.nmat")])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = runner.invoke(app, ["neumip", "fit", "marble", "--decoders", str(DECODERS), "--out",
                              str(tmp_path / "x.nmat"), "--steps", "1"])
    assert res.exit_code == 2 and "stone_tiles" in res.output  # the valid names are listed


def test08_material_metrics_report_fp32_int8_and_grazing(decoders):
    material = load_material(TINY, "stone_tiles")
    field = _fit_field(decoders, TINY, material, 2)
    from neumat.train.neumip import to_bundle

    m = material_metrics(field, 0, material.val, material.value_scale, to_bundle(field, 0, material.value_scale))
    assert {"fp32_psnr", "int8_psnr", "int8_gap_db", "grazing_fp32_psnr"} <= set(m)
    assert 0 < m["grazing_samples"] < len(material.val)


def test09_shipped_offsets_vanish_head_on_and_lie_along_the_view(shipped, shipped_renderer):
    """Head-on (ωo = +z) the true parallax in the reference uv space is 0: the shipped INT8
    offsets' mean over a 64² uv grid must stay under 0.1 max_offset per axis (measured 0.0038
    UV = 0.03 max_offset; before training's head-on anchor it was -0.071 UV = -0.58
    max_offset, a view-dependent shift that made the texture swim on curved surfaces). At
    θo = 60° and 8 azimuths the mean offset must, like the true parallax, point against ωo.xy
    (measured: 0.0142 UV on average, 7 of 8 views, true 0.0211; before: 0.0082, 3 of 8) with
    little across it (measured 0.0062 UV, before 0.0395; bound 0.1 max_offset)."""
    max_offset = bundle_max_offset(shipped)
    uv = _uv_grid()
    head_on = _offsets(shipped, uv, np.array([0.0, 0.0, 1.0])).mean(0)
    assert np.abs(head_on).max() < 0.1 * max_offset, head_on
    along, across, true_along = [], [], []
    for phi in np.arange(8) * 45.0 + 10.0:
        wo = _view(60.0, phi)
        back = -wo[:2] / np.linalg.norm(wo[:2])  # true parallax direction
        du = _offsets(shipped, uv, wo).astype(np.float64).mean(0)
        along.append(du @ back)
        across.append(abs(du[0] * back[1] - du[1] * back[0]))
        true_along.append((shipped_renderer.trace_reference(uv, wo)[:, :2] - uv).mean(0) @ back)
    assert np.mean(along) >= 0.4 * np.mean(true_along) and np.sum(np.asarray(along) > 0) >= 6, (along, true_along)
    assert np.mean(across) <= 0.1 * max_offset, across


def test10_offset_penalties_measure_what_parallax_cannot_be():
    """The cross-view penalty counts only Δu across the view azimuth (all of it head-on), halved
    per component; the head-on anchor evaluates the offsets at ωo = +z."""
    wo = torch.tensor([[0.6, 0.0, 0.8], [0.0, -0.6, 0.8], [0.0, 0.0, 1.0]])
    along = torch.tensor([[-0.05, 0.0], [0.0, 0.05], [0.0, 0.0]])
    assert float(cross_view_offset_penalty(along, wo, 0.125)) == 0.0
    across = torch.tensor([[0.0, 0.0625], [0.0625, 0.0], [0.0625, 0.0625]])
    assert float(cross_view_offset_penalty(across, wo, 0.125)) == pytest.approx((0.25 + 0.25 + 0.5) / 2 / 3)
    torch.manual_seed(0)
    field = NeuMipField(1, 8, 0.125)
    uv = torch.rand(64, 2)
    head_on = field.offsets(uv, torch.tensor([[0.0, 0.0, 1.0]]).expand(64, 3))
    expected = (head_on / 0.125).square().mean()
    torch.testing.assert_close(normal_view_offset_penalty(field, uv, [64]), expected, rtol=0, atol=0)


def test11_head_on_anchor_trains_t_off_while_offsets_are_off(decoders):
    """A fresh T_off starts at Δu ≈ -max_offset head-on (bias-free network, ωo.xy = 0). With the
    offsets off for the whole run (Δu = 0 in the rgb lookups), only the anchor reaches T_off:
    anchored, the head-on mean offset moves to within 0.1 max_offset in 40 steps (measured
    0.015 max_offset from -0.98); without it T_off stays untouched (measured -0.98)."""
    max_offset = decoders[1]
    material = load_material(TINY, "stone_tiles")
    uv = torch.from_numpy(_uv_grid(32).astype(np.float32))
    head_on = torch.tensor([[0.0, 0.0, 1.0]]).expand(len(uv), 3)
    means = {}
    for anchor in (1.0, 0.0):
        cfg = dataclasses.replace(TINY, offset_anchor=anchor, offset_start=0.99)
        field = _fit_field(decoders, cfg, material, 40)
        with torch.no_grad():
            means[anchor] = field.offsets(uv, head_on).mean(0).abs().max().item() / max_offset
    assert means[1.0] < 0.1 and means[0.0] > 0.9, means
