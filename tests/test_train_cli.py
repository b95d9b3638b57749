"""``neumat train`` / ``export`` / ``eval``: real runs through the CLI, figures checked."""

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

torch = pytest.importorskip("torch", reason="training needs torch (pip install 'neumat[train]')")

from neumat.bundle import import_inm, load_bundle  # noqa: E402
from neumat.cli import eval_cmd, export_cmd, train_cmd  # noqa: E402
from neumat.metrics import evaluate_heldout  # noqa: E402
from neumat.train import sources  # noqa: E402
from neumat.train.checkpoint import latest_checkpoint, load_checkpoint  # noqa: E402
from train_fixtures import SMALL, AnalyticBtf, analytic_registry  # noqa: E402, F401

runner = CliRunner()
app = typer.Typer()
app.command("train")(train_cmd.train)
app.command("export")(export_cmd.export)
app.command("eval")(eval_cmd.evaluate)


pytestmark = pytest.mark.usefixtures("analytic_registry")


def _sets(*items):
    return [arg for item in items for arg in ("--set", item)]


def test01_train_export_eval_roundtrip(tmp_path):
    out, nmat = tmp_path / "run", tmp_path / "live.nmat"
    result = runner.invoke(app, ["train", "--material", "analytic", "--out", str(out), "--steps", "24",
                                 "--export", str(nmat), "--seed", "3", *_sets(*SMALL, "val_every=8", "ckpt_every=8")])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "config.json").read_text())
    assert saved["source"]["kind"] == "material" and saved["source"]["name"] == "analytic" and saved["seed"] == 3
    live = load_bundle(nmat)
    assert live.provenance["source"]["name"] == "analytic" and live.provenance["step"] == 24

    exported, inm = tmp_path / "e.nmat", tmp_path / "inm"
    result = runner.invoke(app, ["export", str(out), "--out", str(exported), "--layout", "inm", str(inm)])
    assert result.exit_code == 0, result.output
    assert "InstantNeuralMaterial's own Falcor shader" in result.output  # log-v1 (the default) is neumat's decode
    bundle = load_bundle(exported)
    assert bundle.checksum() == live.checksum()  # same step, same tensors
    assert import_inm(inm, "e").checksum() == live.checksum()

    result = runner.invoke(app, ["eval", str(exported), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    direct = evaluate_heldout(bundle, AnalyticBtf().heldout_images())
    assert report["int8"]["psnr"] == direct["psnr"] and report["fp32"] is None and report["directions"] == 6

    ckpt = latest_checkpoint(out)
    result = runner.invoke(app, ["eval", str(exported), "--ckpt", str(ckpt), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    from neumat.train.evaluate import checkpoint_fp32

    assert report["fp32"] == checkpoint_fp32(ckpt, AnalyticBtf().heldout_images()) and report["fp32"]["step"] == 24
    result = runner.invoke(app, ["eval", str(exported), "--ckpt", str(out)])  # a run directory: newest
    assert result.exit_code == 0 and "INT8 (as rendered)" in result.output and "FP32" in result.output

    # Resume from the run directory's config.json and extend the run.
    result = runner.invoke(app, ["train", "--out", str(out), "--resume", "--steps", "30"])
    assert result.exit_code == 0, result.output
    assert latest_checkpoint(out).name == "ckpt_00000030.pt"


@pytest.mark.parametrize("args, message", [
    (["train", "--material", "a", "--btf", "b"], "only one of"),
    (["train", "--material", "analytic", "--set", "optim.lr=1"], "lr_mlp"),
    (["train"], "--material"),
    (["train", "--material", "nope-not-a-material", "--steps", "1"], "unknown material"),
    (["train", "--material", "analytic", "--height-scale", "0.05"], "apply to --maps only"),
    (["train", "--maps", "x", "--normal-source", "bump"], "normal_source must be one of"),
    (["train", "--maps", "x", "--normal-convention", "yup"], "normal_convention must be one of"),
    (["train", "--material", "analytic", "--resolution", "-1"], "greater than or equal to 0"),
])
def test02_bad_options_are_clear_errors(tmp_path, args, message):
    result = runner.invoke(app, args + ["--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test03_eval_without_source_record_or_bad_file(tmp_path):
    import numpy as np
    from neumat.bundle import make_random_bundle, save_bundle

    path = save_bundle(make_random_bundle(np.random.default_rng(0)), tmp_path / "r.nmat")
    result = runner.invoke(app, ["eval", str(path)])
    assert result.exit_code == 1 and "eval failed" in result.output
    (tmp_path / "junk.nmat").write_bytes(b"junk")
    result = runner.invoke(app, ["eval", str(tmp_path / "junk.nmat")])
    assert result.exit_code == 1 and "eval failed" in result.output
    result = runner.invoke(app, ["export", str(tmp_path), "--out", str(tmp_path / "x.nmat")])
    assert result.exit_code == 2 and "no ckpt_" in result.output


def test04_registry_material_end_to_end(tmp_path, monkeypatch):
    """A real synthetic material of neumat.data: train, then eval rebuilds it from the bundle."""
    monkeypatch.setenv("NEUMAT_CACHE", str(tmp_path / "cache"))
    out, nmat = tmp_path / "run", tmp_path / "leather.nmat"
    small = [s for s in SMALL if not s.startswith("data.chunks")]
    result = runner.invoke(app, ["train", "--material", "leather", "--out", str(out), "--steps", "30",
                                 "--export", str(nmat), *_sets(*small, "data.chunks=4", "source.resolution=32",
                                                               "val_every=30")])
    assert result.exit_code == 0, result.output
    bundle = load_bundle(nmat)
    spec = bundle.provenance["source"]
    assert spec["kind"] == "material" and spec["name"] == "leather" and spec["sampling"] == "points"
    assert spec["points"]["uv_space"] == "surface"
    assert (out / "loss.png").stat().st_size > 10_000  # the loss curve (matplotlib: train extra)
    material = sources.make_source(spec).material  # the bundle carries the surface it was rendered from
    np.testing.assert_array_equal(bundle.height, material.height)
    assert tuple(bundle.height_range) == (0.0, material.height_scale) and bundle.height_units == "uv"
    result = runner.invoke(app, ["eval", str(nmat), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    images = sources.make_source(spec).heldout_images()
    assert report["int8"] == {k: evaluate_heldout(bundle, images)[k] for k in report["int8"]}
    assert report["directions"] == len(images) > 0 and 0 < report["int8"]["valid"] <= report["pixels"]


def test08_train_from_user_maps_and_from_ubo2014(tmp_path, monkeypatch):
    """The two user data paths of `neumat train`: a PBR texture folder and a UBO2014 file."""
    import imageio.v3 as iio
    from neumat.data import factorize_frames, write_ubo2014

    monkeypatch.setenv("NEUMAT_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    maps = tmp_path / "Rock01_1K"
    maps.mkdir()
    iio.imwrite(maps / "Rock01_1K_Color.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    iio.imwrite(maps / "Rock01_1K_Displacement.png", rng.integers(0, 256, (32, 32), dtype=np.uint8))
    iio.imwrite(maps / "Rock01_1K_Roughness.png", np.full((32, 32), 128, np.uint8))
    small = [s for s in SMALL if not s.startswith("data.chunks")]
    tiny = (*small, "data.chunks=2", "source.slice_resolution=16", "source.n_views=4", "source.n_lights=4")
    nmat = tmp_path / "maps.nmat"
    result = runner.invoke(app, ["train", "--maps", str(maps), "--out", str(tmp_path / "m"), "--steps", "12",
                                 "--export", str(nmat), *_sets(*tiny, "val_every=12", "source.resolution=32")])
    assert result.exit_code == 0, result.output
    bundle = load_bundle(nmat)
    assert bundle.provenance["source"]["kind"] == "maps" and bundle.height.shape == (32, 32)
    assert bundle.provenance["metrics"]["int8"]["psnr"] > 10.0

    view = np.radians([[0.0, 0.0], [30.0, 90.0], [60.0, 225.0]])
    light = np.radians([[15.0, 0.0], [45.0, 120.0], [60.0, 300.0], [75.0, 45.5]])
    frames = rng.random((3, 4, 8, 8, 3)).astype(np.float32) * 0.3
    btf = write_ubo2014(tmp_path / "tiny.btf", view, light, *factorize_frames(frames), 8, 8)
    nmat = tmp_path / "btf.nmat"
    result = runner.invoke(app, ["train", "--btf", str(btf), "--out", str(tmp_path / "b"), "--steps", "12",
                                 "--export", str(nmat), *_sets(*tiny, "val_every=12")])
    assert result.exit_code == 0, result.output
    bundle = load_bundle(nmat)
    assert bundle.provenance["source"]["kind"] == "btf" and bundle.height is None  # measured: no surface


def _write_maps(folder, rng, res=32):
    """A user's texture set as downloaded (ambientCG naming): colour, smooth bumps, roughness."""
    import imageio.v3 as iio

    folder.mkdir()
    t = 2 * np.pi * (np.arange(res) + 0.5) / res
    bumps = 0.5 + 0.25 * (np.sin(2 * t)[:, None] + np.cos(3 * t)[None, :])
    iio.imwrite(folder / f"{folder.name}_Color.png", rng.integers(0, 256, (res, res, 3), dtype=np.uint8))
    iio.imwrite(folder / f"{folder.name}_Displacement.png", np.round(255 * bumps).astype(np.uint8))
    iio.imwrite(folder / f"{folder.name}_Roughness.png", np.full((res, res), 128, np.uint8))
    return folder


TINY_MAPS = (*[s for s in SMALL if not s.startswith("data.chunks")], "data.chunks=2", "data.batch_size=512",
             "data.val_samples=512", "data.calibration_samples=1024", "source.sampling=slices",
             "source.slice_resolution=8", "source.n_views=4", "source.n_lights=4")
"""A tiny run on a maps source: 4 x 4 slices of 8^2 pixels, 2 of them held out (rendered in
milliseconds; a point-sampled source spends seconds on its sample pool at every build)."""


def test09_maps_options_recorded_and_eval_reproduces_the_trainers_figures(tmp_path, monkeypatch, caplog):
    """--height-scale / --resolution reach the data and the provenance; the trainer's final held-out
    figures (provenance "metrics") are exactly what `neumat eval` prints for the bundle."""
    import logging

    monkeypatch.setenv("NEUMAT_CACHE", str(tmp_path / "cache"))
    maps = _write_maps(tmp_path / "Rock01_1K", np.random.default_rng(0))
    out, nmat = tmp_path / "run", tmp_path / "rock.nmat"
    with caplog.at_level(logging.INFO, logger="neumat"):
        result = runner.invoke(app, ["train", "--maps", str(maps), "--height-scale", "0.05", "--resolution", "0",
                                     "--out", str(out), "--steps", "6", "--export", str(nmat),
                                     *_sets(*TINY_MAPS, "val_every=6")])
    assert result.exit_code == 0, result.output
    logged = [r.getMessage() for r in caplog.records if r.name == "neumat.data.pbr_io"]
    for role, name in (("albedo", "Rock01_1K_Color.png"), ("height", "Rock01_1K_Displacement.png"),
                       ("roughness", "Rock01_1K_Roughness.png")):
        assert f"Rock01_1K: {role} map {name}" in logged, logged
    assert "no metallic map; using the constant 0.0" in logged

    bundle = load_bundle(nmat)
    spec = bundle.provenance["source"]
    assert spec["height_scale"] == 0.05 and spec["resolution"] == 0 and spec["normal_convention"] == "auto"
    assert spec["files"] == {"albedo": "Rock01_1K_Color.png", "height": "Rock01_1K_Displacement.png",
                             "roughness": "Rock01_1K_Roughness.png"}
    assert tuple(bundle.height_range) == (0.0, 0.05) and bundle.height.shape == (32, 32)  # files' own 32^2
    recorded = bundle.provenance["metrics"]
    assert recorded["step"] == 6 and recorded["evaluated_by"].startswith("neumat.metrics.evaluate_heldout")
    assert "validation" in bundle.provenance and "int8_psnr" in bundle.provenance["validation"]
    summary = [r.getMessage() for r in caplog.records if r.name == "neumat.cli.train_cmd"][-1]
    q = recorded["int8"]
    assert f"INT8 relative L1 {100 * q['rel_l1']:.2f} %, PSNR {q['psnr']:.2f} dB" in summary, summary

    result = runner.invoke(app, ["eval", str(nmat), "--ckpt", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["source"]["height_scale"] == 0.05
    assert report["int8"] == recorded["int8"]  # bit-identical: one function, the same data
    assert list(report["int8"]) == ["rel_l1", "psnr", "l1", "mse", "valid"]  # relative L1 first
    assert {k: v for k, v in report["fp32"].items() if k != "step"} == recorded["fp32"]
    assert (report["directions"], report["pixels"]) == (recorded["directions"], recorded["pixels"]) == (2, 128)
    table = runner.invoke(app, ["eval", str(nmat)], env={"COLUMNS": "200"}).output
    header = next(line for line in table.splitlines() if "model" in line)
    assert [c.strip() for c in header.split("┃") if c.strip()][:4] == ["model", "relative L1", "PSNR", "L1"]
    assert f"{recorded['int8']['rel_l1']:.2%}" in table and f"{recorded['int8']['psnr']:.2f}" in table

    # A bundle written before the spec recorded height_scale is evaluated at the loader default.
    old = dict(spec)
    del old["height_scale"]
    default = sources.make_source(old).material
    assert default.height_scale == 0.03 and not np.array_equal(default.height * 0.03, bundle.height * 0.05)
    # --maps given to eval keeps the recorded options of a maps source (a moved folder).
    result = runner.invoke(app, ["eval", str(nmat), "--maps", str(maps), "--json"])
    assert json.loads(result.output)["int8"] == recorded["int8"], result.output


def test10_cli_source_option_wins_over_the_config_file(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUMAT_CACHE", str(tmp_path / "cache"))
    maps = _write_maps(tmp_path / "Rock02", np.random.default_rng(1), res=16)
    config = tmp_path / "train.toml"
    config.write_text("[source]\nheight_scale = 0.07\nresolution = 8\n")
    common = ["--maps", str(maps), "--config", str(config), "--steps", "1", *_sets(*TINY_MAPS, "val_every=1")]
    for extra, want in (([], (0.07, 8)), (["--height-scale", "0.02", "--resolution", "16"], (0.02, 16))):
        out = tmp_path / f"run{len(extra)}"
        result = runner.invoke(app, ["train", *common, "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
        saved = json.loads((out / "config.json").read_text())["source"]
        assert (saved["height_scale"], saved["resolution"]) == want
        spec = load_checkpoint(latest_checkpoint(out))["source"]
        assert (spec["height_scale"], spec["resolution"]) == want


def test11_help_explains_every_source_option_with_units():
    text = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "250"}).output
    for option in ("--height-scale", "--resolution", "--normal-source", "--normal-convention", "--allow-flat",
                   "--sampling", "--uv-space", "--source-seed", "--slice-resolution", "--views", "--lights"):
        assert option in text, option
    for units in ("UV units", "Texels per tile side", "pixels", "tile width"):
        assert units in text, units
