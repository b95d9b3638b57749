"""The tiny MVInverse trained here against the trivial baselines of neumat.inverse.evaluate
(issue 18 item 7), end to end on CPU: Mitsuba renders a tiny data set (fabric and leather on a
plane, 28² px, 4 views, half the scenes partly metal; 24 training scenes per material), the
tiny network with the recipe measured here (``ModelConfig.image_skip``: the input image fed to
the heads' last convolutions; ``InverseTrainConfig.relative_albedo``: per-view relative albedo
MSE; loss weights 1 / 5 / 5 / 1 / 1; lr 2e-3) starts at the training set's means
(:func:`~neumat.inverse.model.start_at_constants`: the ``mean`` baseline) and trains 500 steps
of 8 images (fixed seeds: deterministic on one thread); its figures on 6 held-out scenes (24
views; other seeds of the same materials) are compared with the training set's constants
(``mean``: mean albedo, metallic, roughness, normals facing the camera), the pose-aware ``flat``
normal and the input image as albedo (``image``).

Measured with training seeds 0 / 1 (the test runs seed 0; ~90 s on one thread), margins over
the best pose-free baseline (``image`` for albedo SSIM and consistency, ``mean`` elsewhere):

=========================  ===============  ================  ================  ==========
figure                     model            mean              image             asserted
=========================  ===============  ================  ================  ==========
albedo rel. L1 ↓           0.162 / 0.177    0.183             0.453             > 0.005
albedo PSNR ↑ (dB)         29.34 / 28.50    28.16             20.44             > 0.3
albedo SSIM ↑              0.657 / 0.521    0.468             0.515             > 0.05
metallic RMSE ↓            0.275 / 0.116    0.322             (0.322)           > 0.02
roughness RMSE ↓           0.071 / 0.123    0.146             (0.146)           > 0.01
normal mean angle ↓        10.0° / 10.2°    21.7°             (21.7°)           > 5°
normals < 11.25° ↑         63.2 / 60.5 %    16.5 %            (16.5 %)          > 20 points
normals < 30° ↑            100.0 / 100.0 %  76.5 %            (76.5 %)          > 10 points
albedo consistency ↓       0.037 / 0.012    0 (constant)      0.090             > 0.02
=========================  ===============  ================  ================  ==========

Seed 1 beats ``mean`` on every figure too, but ``image`` on SSIM by only 0.006 (its relative L1
margin 0.006, roughness 0.023); the asserted margins are a quarter to a half of seed 0's
measured ones (seeds 1 and 2 would fail only the SSIM and metallic thresholds respectively). Seed 2: every figure beats ``mean`` too (PSNR 28.61 dB, SSIM 0.570, metallic
0.308, roughness 0.072), metallic by only 0.014. The previous recipe (no image skip, random
output layers, plain MSE, equal loss weights, lr 1e-3, 300 steps of 4 images) on the same data
ties ``mean`` on the albedo (0.183 / 28.14 dB / SSIM 0.469; below ``image``'s SSIM) and beats it
on metallic (0.194), roughness (0.091) and the normals (10.0°).

Not beaten: the posed ``flat`` normal (1.8°, 100 % within 11.25°: the plane's normal from the
true camera pose, which the network is not given).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mitsuba")
pytest.importorskip("skimage")

from neumat.inverse.config import InverseTrainConfig, ModelConfig  # noqa: E402
from neumat.inverse.dataset import (DataSettings, dataset_batches, read_scene, render_data,  # noqa: E402
                                    scene_materials)
from neumat.inverse.evaluate import baselines, evaluate, margins, training_constants  # noqa: E402
from neumat.inverse.model import MVInverse, start_at_constants  # noqa: E402
from neumat.inverse.predictor import predict  # noqa: E402
from neumat.inverse.train import run_training  # noqa: E402

MATERIALS = ["fabric", "leather"]
SETTINGS = DataSettings(size=28, views=4, spp=4, resolution=16, metal_probability=0.5, variant="scalar_rgb")
TRAIN_SCENES, HELD_OUT_SCENES = 24, 3
"""Scenes per material."""
STEPS = 500
LOSS_WEIGHTS = (1.0, 5.0, 5.0, 1.0, 1.0)
"""λ of albedo, metallic, roughness, normal, shading."""
MARGINS = {"albedo_rel_l1": 0.005, "albedo_psnr": 0.3, "albedo_ssim": 0.05, "metallic_rmse": 0.02,
           "roughness_rmse": 0.01, "normal_mean_deg": 5.0, "normal_within_11.25_pct": 20.0,
           "normal_within_30_pct": 10.0, "consistency_albedo": 0.02}
"""Asserted margins over the best pose-free baseline, in each figure's units (module docstring):
albedo relative L1 and SSIM unitless, PSNR dB, RMSE in [0, 1] map units, angles degrees,
percentages points, consistency RMSE in linear albedo."""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("baselines")
    factories = scene_materials(MATERIALS, [], SETTINGS.resolution)
    train = [read_scene(f) for f in render_data(root / "train", factories, TRAIN_SCENES, SETTINGS, seed=0)]
    held_out = [read_scene(f) for f in render_data(root / "test", factories, HELD_OUT_SCENES, SETTINGS, seed=1)]
    cfg = InverseTrainConfig.tiny(model=replace(ModelConfig.tiny(), image_skip=True), steps=STEPS, heads_steps=0,
                                  long_side=28, max_views=4, max_images=8, lr=2e-3, relative_albedo=True,
                                  loss_weights=LOSS_WEIGHTS, seed=0, log_every=STEPS)
    constants = training_constants(train)
    torch.manual_seed(0)
    model = MVInverse(cfg.model)
    start_at_constants(model, constants)
    run_training(cfg, dataset_batches(root / "train"), model=model)
    model.eval()
    methods = {"mvinverse": lambda scene: predict(model, scene.arrays["image"]), **baselines(constants)}
    out = evaluate(held_out, methods)
    out["margins"], out["margins_posed"] = margins(out), margins(out, against=("flat",))
    return out


def test01_beats_the_pose_free_baselines(report):
    """Every item-7 figure beats the best pose-free baseline (``mean``; ``image`` where it is
    better, and for the albedo consistency, where a constant scores 0) by :data:`MARGINS`."""
    got = {k: report["margins"][k]["margin"] for k in MARGINS}
    assert all(got[k] > MARGINS[k] for k in MARGINS), (got, report["methods"])
    assert report["views"] == len(MATERIALS) * HELD_OUT_SCENES * SETTINGS.views


def test02_predictions_are_not_constant(report):
    """The model's maps vary across views and pixels: its consistency figures are positive (a
    constant would score exactly 0, as the ``mean`` baseline does) and finite."""
    model, mean = report["methods"]["mvinverse"], report["methods"]["mean"]
    for key in ("consistency_albedo", "consistency_metallic", "consistency_roughness"):
        assert mean[key] == 0.0 and 0.0 < model[key] < 1.0 and np.isfinite(model[key])
