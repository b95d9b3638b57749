"""``neumat render`` (neumat.cli.render_cmd.render): writes a PNG, prints per-pass times; a bad
bundle path is a clear error with a non-zero exit code."""

from __future__ import annotations

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from neumat.bundle import make_random_bundle, save_bundle
from neumat.cli import render_cmd
from neumat import device as dev

runner = CliRunner()


def _app() -> typer.Typer:
    """The command under its own name (the lead wires it into neumat.cli.app)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command("render")(render_cmd.render)
    app.command("noop")(lambda: None)  # two commands: typer keeps the sub-command name
    return app


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory):
    try:
        dev.default_device()
    except dev.DeviceError as e:
        pytest.skip(f"no slangpy device on this machine: {e}")
    path = tmp_path_factory.mktemp("render_cli") / "random.nmat"
    save_bundle(make_random_bundle(np.random.default_rng(3)), path)
    return path


def test01_renders_png_and_prints_timings(bundle_path, tmp_path):
    import imageio.v3 as iio

    out = tmp_path / "frame.png"
    result = runner.invoke(_app(), [
        "render", str(bundle_path), "--shape", "plane", "--out", str(out), "--size", "48x32",
        "--camera", "-70,50,3", "--light", "30,60,2.5", "--frames", "2", "--warmup", "1",
        "--aov", "depth", "--aov", "uv"])
    assert result.exit_code == 0, result.output
    image = iio.imread(out)
    assert image.shape == (32, 48, 3) and image.dtype == np.uint8 and image.std() > 1.0
    assert (tmp_path / "frame_depth.png").is_file() and (tmp_path / "frame_uv.png").is_file()
    for name in ("shell", "hf_trace", "synthesis", "infer", "compose", "total"):
        assert name in result.output


def test02_no_hf_no_synthesis_fp32(bundle_path, tmp_path):
    out = tmp_path / "flat.png"
    result = runner.invoke(_app(), [
        "render", str(bundle_path), "--shape", "sphere", "--out", str(out), "--size", "32x32",
        "--no-hf", "--no-synthesis", "--fp32", "--frames", "1", "--warmup", "0"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "hf_trace" not in result.output and "FP32" in result.output


def test03_bad_bundle_path_is_a_clear_error(tmp_path):
    result = runner.invoke(_app(), ["render", str(tmp_path / "missing.nmat"), "--out", str(tmp_path / "x.png")])
    assert result.exit_code != 0
    assert "cannot load bundle" in result.output and "missing.nmat" in result.output
    assert not (tmp_path / "x.png").exists()


def test04_bad_arguments(bundle_path, tmp_path):
    for args in (["--size", "12"], ["--light", "1"], ["--aov", "colour"], ["--shape", "teapot"],
                 ["--shadow-mode", "cone"]):
        result = runner.invoke(_app(), ["render", str(bundle_path), "--out", str(tmp_path / "y.png"), *args])
        assert result.exit_code != 0, args


def test05_shadow_modes(bundle_path, tmp_path):
    """Both shadow walks render through the CLI with a shadow pass; their frames differ only where
    the walks disagree on a relief shadow (tests/test_render_curved_shadows.py measures which is
    right against Mitsuba 3): here under 10 % of the pixels."""
    import imageio.v3 as iio

    images = {}
    for mode in ("prisms", "march"):
        out = tmp_path / f"{mode}.png"
        result = runner.invoke(_app(), [
            "render", str(bundle_path), "--shape", "sphere", "--out", str(out), "--size", "40x40",
            "--light", "30,30,3", "--shadow-mode", mode, "--frames", "1", "--warmup", "0"])
        assert result.exit_code == 0, result.output
        assert "shadow" in result.output
        images[mode] = iio.imread(out).astype(np.int16)
    differ = np.mean(np.abs(images["prisms"] - images["march"]).max(axis=-1) > 8)
    assert differ < 0.1
