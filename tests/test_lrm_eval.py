"""``neumat lrm eval`` (neumat.lrm.evaluate): figures of the LRM, the mean-texture baseline and
direct fitting on held-out materials, written as JSON and markdown, and the picture grid
(neumat.lrm.grid): its size, its ground-truth tiles equal to the data set's frames, its LRM and
direct-fit tiles neither blank nor copies of the ground truth.

Stated margins: the evaluation renders a material's true bundle within 1 % relative L1 of its
8-bit frames (measured 0.44 %); a 60-step direct fit beats an untrained LRM's constant-texture
baseline (measured relative L1 0.13 vs 0.54 over 6 frames).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch", reason="the LRM needs torch")
pytest.importorskip("diffusers", reason="the LRM needs diffusers (pip install 'neumat[video]')")

from lrm_fixtures import SIZE, TEXELS, synthetic_set  # noqa: E402
from neumat.cli import app  # noqa: E402
from neumat.lrm.config import LrmModelConfig  # noqa: E402
from neumat.lrm.data import scan_dataset  # noqa: E402
from neumat.lrm.evaluate import bundle_figures, evaluate, markdown, write_report  # noqa: E402
from neumat.lrm.grid import HEADER, grid_frame, tile_side  # noqa: E402
from neumat.lrm.loss import make_perceptual  # noqa: E402
from neumat.lrm.model import LrmNetwork  # noqa: E402
from neumat.lrm.reconstruct import TrainedLrm  # noqa: E402
from neumat.lrm.synthetic import DECODERS, stone_variants  # noqa: E402
from neumat.lrm.weights import save_lrm  # noqa: E402
from neumat.train.neumip import load_decoders  # noqa: E402

MODEL = LrmModelConfig.tiny(texture_resolution=TEXELS, residual=False)
"""Its texture head randomly initialised: the untrained LRM's textures vary over the texels and
with the input (a zeroed head's are flat, the mean-texture baseline), as the grid test needs."""


def grid_tiles(path, materials, columns):
    """The tiles ``[row][column]`` of ``path`` (a grid of ``materials`` x ``columns``), after checking
    its size and that each ground-truth tile is the material's frame upscaled."""
    import imageio.v3 as iio

    image, side = iio.imread(path), tile_side(SIZE)
    assert image.shape == (HEADER + len(materials) * (HEADER + side), len(columns) * side, 3), image.shape
    tiles = [[image[(i + 2) * HEADER + i * side:(i + 1) * (HEADER + side) + HEADER, j * side:(j + 1) * side]
              for j in range(len(columns))] for i in range(len(materials))]
    for m, row in zip(materials, tiles):
        frame = m.loss_frame(grid_frame(m))[1]
        assert np.array_equal(row[0], frame.repeat(side // SIZE, 0).repeat(side // SIZE, 1)), m.name
    return tiles


def assert_rendered(tile, truth):
    """``tile`` is a picture (not blank: its pixels vary) and not a copy of ``truth``."""
    assert tile.std() > 1.0 and 0 < tile.mean() < 255, (tile.std(), tile.mean())
    assert np.abs(tile.astype(int) - truth).mean() > 0.5


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthetic_set(tmp_path_factory, 3)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """An untrained tiny LRM (16² textures) saved as a trained-LRM folder."""
    torch.manual_seed(1)
    nets, max_offset, _ = load_decoders(DECODERS)
    return save_lrm(tmp_path_factory.mktemp("lrm_eval") / "w", LrmNetwork(MODEL), nets, 0.5, max_offset, {"steps": 0})


def test01_true_bundle_and_report(data, weights, tmp_path):
    materials = scan_dataset(data, MODEL)[:1]
    perceptual = make_perceptual("auto", "", SIZE)
    true = bundle_figures(stone_variants(1, TEXELS)["stone_0"], materials[0], [0, 40, 81, 161], perceptual)
    assert true["rel_l1"] < 0.01, true
    grid = []
    report = evaluate(TrainedLrm.load(weights), materials, 6, perceptual, 60, DECODERS, grid)
    rows = report["materials"]["stone_0"]
    assert set(rows) == {"lrm", "mean_texture", "direct_fit"} and report["perceptual_metric"] == perceptual.name
    assert rows["direct_fit"]["rel_l1"] < 0.5 * rows["mean_texture"]["rel_l1"], rows
    assert all(np.isfinite(rows[k][f]) for k in rows for f in ("rel_l1", "mape", "mse", "psnr", "perceptual"))
    assert rows["direct_fit"]["seconds"] > rows["lrm"]["seconds"] > 0
    table = markdown(report)
    assert "| direct_fit |" in table and "substitute for LPIPS" in table
    columns = ["ground truth", "LRM", "direct fit", "T_off (PCA)"]
    assert report["grid"] == {"columns": columns, "materials": ["stone_0"], "frames": [81 + 81 // 2]}
    written = write_report(report, tmp_path, grid)
    assert [p.name for p in written] == ["eval.json", "eval.md", "grid.png"]
    (truth, lrm, fit, offset), = grid_tiles(tmp_path / "grid.png", materials, columns)
    assert_rendered(lrm, truth)
    assert_rendered(fit, truth)
    assert np.abs(fit.astype(int) - truth).mean() < np.abs(lrm.astype(int) - truth).mean()
    assert offset.std() > 1.0


def test02_cli(data, weights, tmp_path):
    out = tmp_path / "eval"
    done = CliRunner().invoke(app, ["lrm", "eval", str(data), "--weights", str(weights), "--out", str(out),
                                    "--frames", "3", "--fit-steps", "0", "--device", "cpu"])
    assert done.exit_code == 0, done.output
    report = json.loads((out / "eval.json").read_text())
    assert list(report["materials"]) == ["stone_0", "stone_1", "stone_2"] and set(report["mean"]) == {"lrm", "mean_texture"}
    assert "| lrm |" in (out / "eval.md").read_text()
    assert f"{out / 'grid.png'}" in done.output and report["grid"]["columns"] == ["ground truth", "LRM", "T_off (PCA)"]
    tiles = grid_tiles(out / "grid.png", scan_dataset(data, MODEL), report["grid"]["columns"])
    for truth, lrm, offset in tiles:
        assert_rendered(lrm, truth)
        assert offset.std() > 1.0
    assert not np.array_equal(tiles[0][1], tiles[1][1]) and not np.array_equal(tiles[0][2], tiles[1][2])
    bad = CliRunner().invoke(app, ["lrm", "eval", str(data), "--weights", str(tmp_path / "none"), "--out", str(out)])
    assert bad.exit_code == 2 and "no LRM weights folder" in re.sub(r"[\s│╭╮╰╯─]+", " ", bad.output)
