"""Training reaches a stated held-out quality on CPU, INT8 stays close to FP32, exports agree."""

import json
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs torch (pip install 'neumat[train]')")

from neumat.bundle import load_bundle  # noqa: E402
from neumat.material.triple_plane import render_int8  # noqa: E402
from neumat.metrics import error_metrics, evaluate_heldout, headline_metrics  # noqa: E402
from neumat.output_encoding import OutputEncoding  # noqa: E402
from neumat.train import load_config, train  # noqa: E402
from neumat.train.checkpoint import latest_checkpoint, load_checkpoint  # noqa: E402
from neumat.train.sampling import validation_batch  # noqa: E402
from neumat.train.schedule import lr_factor, qat_phase  # noqa: E402
from train_fixtures import AnalyticBtf, small_config  # noqa: E402

MIN_INT8_PSNR_DB = 35.0
"""Held-out INT8 PSNR the quality run must reach (measured 37.4 dB; 600 steps, ~10 s on 1 core)."""
MAX_INT8_GAP_DB = 0.5
"""Largest |FP32 - INT8| held-out PSNR difference allowed (measured 0.01 dB)."""
QUALITY = ["model.u_res=32", "model.hd_res=8", "model.hidden=32", "data.batch_size=4096", "data.val_samples=16384",
           "steps=600", "val_every=300", "ckpt_every=300", "optim.warmup_steps=30", "optim.restart_period=600",
           "log_every=50", "optim.angular_smoothness=0.1"]
"""The analytic material is smooth in angle and its H/D planes tiny (8^2): the default smoothness
weight (tuned on 16^2 planes of rendered materials) costs it 1 dB, so the run uses 0.1."""


@pytest.fixture(scope="module")
def quality_run(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("quality")
    cfg = small_config(out / "run", *QUALITY, f"export={json.dumps(str(out / 'm.nmat'))}")
    t0 = time.monotonic()
    result = train(cfg, AnalyticBtf())
    return cfg, result, time.monotonic() - t0


def test01_reaches_heldout_quality_in_a_short_run(quality_run):
    cfg, result, _ = quality_run
    m = result.metrics
    assert result.steps_done == 600  # (~10 s on an idle core; timing is the benchmarks' business)
    assert m["int8_psnr"] > MIN_INT8_PSNR_DB, m
    assert abs(m["int8_gap_db"]) < MAX_INT8_GAP_DB, m
    # Far better than the best constant predictor on the same held-out samples.
    val = validation_batch(AnalyticBtf(), cfg.seed, cfg.data.val_samples)
    constant = error_metrics(np.broadcast_to(np.median(val.rgb, axis=0), val.rgb.shape), val.rgb)
    assert m["int8_l1"] < 0.15 * constant["l1"], (m, constant)  # measured 0.10
    vals = [h for h in result.history if h["kind"] == "val"]
    assert [h["step"] for h in vals] == [300, 600] and vals[1]["int8_psnr"] > vals[0]["int8_psnr"]
    losses = [h["loss"] for h in result.history if h["kind"] == "train"]
    assert losses[-1] < 0.25 * losses[0]


def test02_exported_bundle_reproduces_the_validation_figure_exactly(quality_run):
    cfg, result, _ = quality_run
    bundle = load_bundle(cfg.export)
    assert bundle.checksum() == result.bundle.checksum()
    assert bundle.provenance["step"] == 600 and bundle.provenance["validation"]["int8_psnr"] == result.metrics["int8_psnr"]
    assert OutputEncoding.from_provenance(bundle.provenance) == result.output
    assert bundle.provenance["source"] == {"kind": "custom", "name": "analytic-64"}
    val = validation_batch(AnalyticBtf(), cfg.seed, cfg.data.val_samples)
    again = error_metrics(render_int8(bundle, val.uv, val.wi, val.wo), val.rgb)
    assert again["psnr"] == result.metrics["int8_psnr"] and again["l1"] == result.metrics["int8_l1"]
    # Held-out images (pixel grids of unseen directions) agree with the sampled validation.
    images = evaluate_heldout(bundle, AnalyticBtf().heldout_images())
    assert images["psnr"] > MIN_INT8_PSNR_DB - 3 and images["pixels"] == 6 * 16 * 16
    # The run's final figures (provenance "metrics", TrainResult.heldout) are exactly these.
    assert bundle.provenance["metrics"]["int8"] == headline_metrics(images) == result.heldout["int8"]


def test03_run_directory_holds_config_history_and_checkpoints(quality_run):
    cfg, result, _ = quality_run
    out = result.checkpoint.parent
    assert load_config(out / "config.json", type(cfg)) == cfg
    state = load_checkpoint(latest_checkpoint(out))
    assert state["step"] == 600 and state["config"]["model"]["hidden"] == 32
    history = json.loads((out / "history.json").read_text())
    assert [h for h in history if h["kind"] == "val"][-1]["int8_psnr"] == result.metrics["int8_psnr"]


def test04_time_budget_stops_with_checkpoint_and_export(tmp_path):
    cfg = small_config(tmp_path / "run", "steps=100000", "max_minutes=0.002", "val_every=100000",
                       "ckpt_every=100000", f"export={json.dumps(str(tmp_path / 'b.nmat'))}")
    result = train(cfg, AnalyticBtf())
    assert result.stopped_by_budget and 0 < result.steps_done < 100000
    assert load_checkpoint(result.checkpoint)["step"] == result.steps_done
    assert load_bundle(tmp_path / "b.nmat").provenance["step"] == result.steps_done


def test04b_time_budget_rescales_the_schedule_so_qat_and_decay_happen(tmp_path):
    """A budget far below the planned steps: the run is rescaled after the probe steps, so it
    still ends in the frozen-range fine-tune phase with the learning rate decayed."""
    cfg = small_config(tmp_path / "run", "steps=100000", "max_minutes=0.05", "budget_probe_steps=6",
                       "val_every=100000", "ckpt_every=100000", "log_every=1", "optim.restart_period=0",
                       "optim.lr_mlp=0.003")
    result = train(cfg, AnalyticBtf())
    state = load_checkpoint(result.checkpoint)
    assert result.stopped_by_budget and state["total_steps"] == result.steps_done < 100000
    last = [h for h in result.history if h["kind"] == "train"][-1]
    assert last["step"] == result.steps_done
    # the last step ran in the fine-tune phase (lr x 0.1) at the end of the run's one cosine cycle
    total = result.steps_done
    assert qat_phase(total - 1, total, cfg.qat).name == "finetune"
    assert last["lr_mlp"] == pytest.approx(0.003 * 0.1 * lr_factor(total - 1, cfg.optim, total), rel=1e-6)
    assert lr_factor(total - 1, cfg.optim, total) < 0.5


def test04c_a_machine_that_slows_down_mid_run_is_rescaled_again(tmp_path):
    """Steps become 10x slower after the first fit (another job takes the cores): the budget is
    re-fitted as it goes, so the run still ends exactly at its (shrunk) schedule's end — last
    step in the fine-tune phase at the bottom of the cosine — not cut off by the hard stop."""
    cfg = small_config(tmp_path / "run", "steps=100000", "max_minutes=0.2", "budget_probe_steps=6",
                       "val_every=100000", "ckpt_every=100000", "log_every=1", "optim.restart_period=0",
                       "optim.lr_mlp=0.003")
    totals = []

    def slow_down(trainer, step):
        totals.append(trainer.total_steps)
        if trainer.total_steps < 100000:  # after the first fit
            time.sleep(0.1)

    result = train(cfg, AnalyticBtf(), callbacks=[slow_down])
    assert len(set(totals)) >= 3  # planned, first fit, at least one re-fit after the slow-down
    total = result.steps_done
    assert load_checkpoint(result.checkpoint)["total_steps"] == total
    last = [h for h in result.history if h["kind"] == "train"][-1]
    assert qat_phase(total - 1, total, cfg.qat).name == "finetune"
    assert last["lr_mlp"] == pytest.approx(0.003 * 0.1 * lr_factor(total - 1, cfg.optim, total), rel=1e-6)
