"""``neumat video render-dataset`` and ``neumat video rpc`` end to end (tiny renders)."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from neumat.cli import app

pytest.importorskip("mitsuba")
TINY = ["--size", "24", "--spp", "2", "--resolution", "16", "--frames", "9", "--rotations", "0",
        "--variant", "scalar_rgb", "--no-progress"]


def test01_render_dataset_then_rpc(tmp_path):
    runner = CliRunner()
    done = runner.invoke(app, ["video", "render-dataset", str(tmp_path / "ds"), "--material", "gravel",
                               "--trajectories", "video,cross", "--per-axis", "2", *TINY])
    assert done.exit_code == 0, done.output
    video = tmp_path / "ds" / "gravel_rot000" / "video"
    assert len(list((video / "frames").glob("*.png"))) == 9
    assert len(list((tmp_path / "ds" / "gravel_rot000" / "cross" / "frames").glob("*.exr"))) == 16
    scored = runner.invoke(app, ["video", "rpc", str(video), "--lags", "1,2", "--json", str(tmp_path / "rpc.json")])
    assert scored.exit_code == 0, scored.output
    report = json.loads((tmp_path / "rpc.json").read_text())[str(video)]  # 4 camera frames: lags 1, 2
    assert 0.0 <= report["rpc"] <= 1.0 and report["pairs"] == 3 + 2 and "TV-L1" in report["flow"]


def test02_bad_options_exit_2_before_rendering(tmp_path):
    runner = CliRunner()
    for extra, message in ((["--material", "marble"], "unknown material"),
                           (["--trajectories", "spiral"], "trajectories"),
                           (["--captioner", str(tmp_path)], "not a captioning model: missing config.json"),
                           (["--rotations", "45"], "multiples of 90")):
        result = runner.invoke(app, ["video", "render-dataset", str(tmp_path / "out"), *TINY, *extra])
        assert result.exit_code == 2 and message in _flat(result.output), result.output
    assert not (tmp_path / "out").exists()
    missing = runner.invoke(app, ["video", "rpc", str(tmp_path)])
    assert missing.exit_code == 2 and "poses.json" in _flat(missing.output)


def _flat(text: str) -> str:
    """The CLI's message without rich's box and line breaks."""
    return re.sub(r"[\s│╭╮╰╯─]+", " ", text)
