"""The tiny MVInverse trained here against the trivial baselines of neumat.inverse.evaluate
(issue 18 item 7), end to end on CPU: Mitsuba renders a tiny data set (fabric and leather on a
plane, 28² px, 4 views, half the scenes partly metal), the tiny network trains 300 steps on it
(fixed seeds: deterministic on one thread), and the figures on held-out scenes (other seeds of
the same materials) are compared with the training set's constants (``mean``: mean albedo,
metallic, roughness, normals facing the camera), the pose-aware ``flat`` normal and the input
image as albedo (``image``).

Measured with training seeds 0 / 2 (300 steps, ~85 s of training on one shared core; the test
runs seed 0). At 150 steps seed 2's normals had not converged (23.4° against the mean's 21.1°;
seeds 0 / 1: 11.8° / 13.1°), hence 300:

=====================  ==============  ===================  ============================
figure                 model           best baseline        asserted
=====================  ==============  ===================  ============================
metallic RMSE          0.148 / 0.134   0.382 (mean)         margin > 0.15 (0.234, 0.248)
normal mean angle      13.0° / 11.1°   21.1° (mean)         margin > 5° (8.1, 10.0)
normals < 11.25°       42.9 / 49.2 %   9.8 % (mean)         margin > 20 points (33, 39)
normals < 30°          99.9 / 98.9 %   79.0 % (mean)        margin > 10 points (20.9, 19.9)
=====================  ==============  ===================  ============================

Not beaten at this scale, and so not asserted (stated, not hidden; the README gives the
figures of the four-minute run on a held-out material, which beats the pose-free baselines on
all but SSIM): albedo relative L1 / PSNR (0.165 / 0.189, 30.4 / 29.3 dB against the
scale-aligned constant's 0.136 / 31.9 dB — after the alignment a constant albedo is each view's
own mean colour, an oracle; these 28-pixel views of 16-texel maps hold little albedo detail),
albedo SSIM (0.598 / 0.565 against the input image's 0.713), roughness RMSE (0.165 / 0.141
against 0.171: too close to call across seeds), albedo cross-view consistency (0.063 / 0.098
against the input image's 0.046; a constant scores 0 by construction, so the image is the
comparison) and the normals of ``flat`` (1.8°: the plane's normal from the true camera pose,
which the network is not given).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mitsuba")
pytest.importorskip("skimage")

from neumat.inverse.config import InverseTrainConfig  # noqa: E402
from neumat.inverse.dataset import (DataSettings, dataset_batches, read_scene, render_data,  # noqa: E402
                                    scene_materials)
from neumat.inverse.evaluate import baselines, evaluate, margins, training_constants  # noqa: E402
from neumat.inverse.model import MVInverse  # noqa: E402
from neumat.inverse.predictor import predict  # noqa: E402
from neumat.inverse.train import run_training  # noqa: E402

MATERIALS = ["fabric", "leather"]
SETTINGS = DataSettings(size=28, views=4, spp=4, resolution=16, metal_probability=0.5, variant="scalar_rgb")
STEPS = 300
MARGINS = {"metallic_rmse": 0.15, "normal_mean_deg": 5.0, "normal_within_11.25_pct": 20.0,
           "normal_within_30_pct": 10.0}
"""Asserted margins over the best pose-free baseline, in each figure's units (module docstring)."""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("baselines")
    factories = scene_materials(MATERIALS, [], SETTINGS.resolution)
    train = [read_scene(f) for f in render_data(root / "train", factories, 4, SETTINGS, seed=0)]
    held_out = [read_scene(f) for f in render_data(root / "test", factories, 1, SETTINGS, seed=1)]
    cfg = InverseTrainConfig.tiny(steps=STEPS, heads_steps=0, long_side=28, max_views=4, max_images=4, lr=1e-3,
                                  seed=0, log_every=STEPS)
    torch.manual_seed(0)
    model = MVInverse(cfg.model)
    run_training(cfg, dataset_batches(root / "train"), model=model)
    model.eval()
    methods = {"mvinverse": lambda scene: predict(model, scene.arrays["image"]),
               **baselines(training_constants(train))}
    out = evaluate(held_out, methods)
    out["margins"], out["margins_posed"] = margins(out), margins(out, against=("flat",))
    return out


def test01_beats_the_pose_free_baselines(report):
    """Metallic RMSE and every normal figure beat the best pose-free baseline by :data:`MARGINS`."""
    got = {k: report["margins"][k]["margin"] for k in MARGINS}
    assert all(got[k] > MARGINS[k] for k in MARGINS), (got, report["methods"])
    assert report["views"] == len(MATERIALS) * SETTINGS.views


def test02_predictions_are_not_constant(report):
    """The model's maps vary across views and pixels: its consistency figures are positive (a
    constant would score exactly 0, as the ``mean`` baseline does) and finite."""
    model, mean = report["methods"]["mvinverse"], report["methods"]["mean"]
    for key in ("consistency_albedo", "consistency_metallic", "consistency_roughness"):
        assert mean[key] == 0.0 and 0.0 < model[key] < 1.0 and np.isfinite(model[key])
