"""NeuMIP on the shared training engine: exact resume after a kill, the time budget, the data
sources and the config overrides of ``neumat train`` (``neumat neumip fit`` / ``pretrain``).

Every run is tiny: a measured-BTF file of 4 views x 4 lights of 8² pixels written by the test
(:func:`neumat.data.write_ubo2014`), 16² textures, the shipped universal decoders.
"""

import copy
import dataclasses
import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch", reason="training needs torch (pip install 'neumat[train]')")

from neumat.bundle import load_bundle  # noqa: E402
from neumat.cli import app  # noqa: E402
from neumat.material.neumip import check_neumip  # noqa: E402
from neumat.train.checkpoint import checkpoint_path, latest_checkpoint, load_checkpoint  # noqa: E402
from neumat.train.config_io import ConfigError, apply_overrides, load_config  # noqa: E402
from neumat.train.neumip import NeuMipConfig, fit, load_decoders, pretrain  # noqa: E402
from neumat.train.neumip.plugin import stage_bounds  # noqa: E402
from train_fixtures import Interrupted, assert_same_checkpoint, kill_after_checkpoint, stop_at  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DECODERS = ROOT / "assets" / "neumip" / "universal_mlps.safetensors"
STEPS, FINETUNE = 12, 6
"""Fit stage (float phase 0-6, quantized 7-11 with quantize_start 0.6), then a fine-tune stage."""
TIME_VARYING = ("exported_at", "fit_seconds")
"""Provenance entries that record when and how fast, not what."""


runner = CliRunner()


@pytest.fixture(scope="module")
def btf_file(tmp_path_factory):
    """A tiny measured BTF (UBO2014 layout): 4 views x 4 lights of 8² pixels, smooth in uv."""
    from neumat.data import factorize_frames, write_ubo2014

    path = tmp_path_factory.mktemp("btf") / "tiny.btf"
    view = np.radians([[0.0, 0.0], [30.0, 90.0], [45.0, 200.0], [60.0, 300.0]])
    light = np.radians([[15.0, 0.0], [45.0, 120.0], [60.0, 240.0], [30.0, 45.0]])
    t = 2 * np.pi * (np.arange(8) + 0.5) / 8
    pattern = 0.3 + 0.1 * np.sin(t)[:, None] * np.cos(2 * t)[None, :]
    rng = np.random.default_rng(0)
    frames = (pattern[None, None, :, :, None] * (0.5 + rng.random((4, 4, 1, 1, 3)))).astype(np.float32)
    return write_ubo2014(path, view, light, *factorize_frames(frames), 8, 8)


@pytest.fixture(scope="module")
def decoders():
    return load_decoders(DECODERS)


def _cfg(out, **extra):
    small = dict(texture_resolution=16, steps=STEPS, batch_size=256, val_samples=512, warmup_steps=3, ckpt_every=3,
                 log_every=2, out=str(out), export=str(Path(out) / "m.nmat"), progress=False)
    return NeuMipConfig(**{**small, **extra})


def _fit(cfg, btf_file, decoders, finetune=FINETUNE, **kw):
    nets, max_offset, _ = decoders  # a copy each: a fine-tune trains the decoders in place
    return fit(cfg, "tiny", copy.deepcopy(nets), max_offset, finetune, progress=False, spec=cfg.btf_spec(btf_file),
               **kw)


def _assert_same_run(a, b):
    """Same step, tensors (textures, decoders, observer ranges), optimizer and validation."""
    assert a["neumip"]["started"] == b["neumip"]["started"]
    assert_same_checkpoint(a, b)


def _same_bundle(a, b):
    """Same tensors (checksum) and provenance but for when it was written and how fast."""
    assert a.checksum() == b.checksum()
    strip = lambda p: {k: v for k, v in p.items() if k not in TIME_VARYING}  # noqa: E731
    assert strip(a.provenance) == strip(b.provenance)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, btf_file, decoders):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("full")
    result = _fit(_cfg(out), btf_file, decoders)
    return load_checkpoint(result.checkpoint), load_bundle(out / "m.nmat"), result


def test01_fit_runs_both_stages_and_exports_with_provenance(uninterrupted):
    state, bundle, result = uninterrupted
    check_neumip(bundle)
    assert result.steps_done == state["step"] == STEPS + FINETUNE and state["neumip"]["started"] == [0, STEPS]
    phases = [h["phase"] for h in result.history if h["kind"] == "train"]
    assert phases[0] == "frozen/float" and "frozen/quantize" in phases and phases[-1] == "finetune/quantize"
    prov = bundle.provenance
    assert prov["step"] == prov["total_steps"] == STEPS + FINETUNE and prov["finetune_steps"] == FINETUNE
    assert prov["source"]["kind"] == "btf" and prov["material"] == "tiny" and prov["config"]["steps"] == STEPS
    assert "out" not in prov["config"] and "max_minutes" not in prov["config"]  # run control, not the result
    assert prov["metrics"] == result.metrics[0] and result.metrics[0]["int8_psnr"] > 10


@pytest.mark.parametrize("kill_after", [4, 10, 16])  # fit float phase, fit quantized phase, fine-tune
def test02_kill_and_resume_is_bit_identical(tmp_path, uninterrupted, btf_file, decoders, kill_after):
    """A fit killed after ``kill_after`` steps and resumed from its newest checkpoint ends with
    the uninterrupted run's textures, decoders, optimizer state, history and bundle."""
    cfg = _cfg(tmp_path)
    with pytest.raises(Interrupted):
        _fit(cfg, btf_file, decoders, callbacks=[stop_at(kill_after)])
    assert load_checkpoint(latest_checkpoint(tmp_path))["step"] == kill_after // 3 * 3
    assert not (tmp_path / "m.nmat").exists()  # validation (and export) only at the end
    resumed = _fit(cfg, btf_file, decoders, resume=True)
    assert resumed.steps_done == STEPS + FINETUNE
    state, bundle, _ = uninterrupted
    _assert_same_run(state, load_checkpoint(resumed.checkpoint))
    _same_bundle(bundle, load_bundle(tmp_path / "m.nmat"))


def test03_resume_from_an_older_checkpoint_path(tmp_path, uninterrupted, btf_file, decoders):
    """Resuming from a named intermediate checkpoint (not the newest) replays the rest exactly."""
    cfg = _cfg(tmp_path, keep_checkpoints=10)
    _fit(cfg, btf_file, decoders)
    resumed = _fit(cfg, btf_file, decoders, resume=checkpoint_path(tmp_path, 9))
    _assert_same_run(uninterrupted[0], load_checkpoint(resumed.checkpoint))
    _same_bundle(uninterrupted[1], load_bundle(tmp_path / "m.nmat"))
    with pytest.raises(ValueError, match="same --finetune-steps"):  # a run of other stages: refused
        _fit(cfg, btf_file, decoders, finetune=0, resume=checkpoint_path(tmp_path, 15))


def test04_pretraining_resumes_bit_identically(tmp_path, btf_file, monkeypatch):
    """Pretraining (shared decoders, QAT) over two materials killed in its quantized phase."""
    fit_module = importlib.import_module("neumat.train.neumip.fit")  # the package's `fit` is the function
    spec = NeuMipConfig().btf_spec(btf_file)
    real = fit_module.load_material
    monkeypatch.setattr(fit_module, "load_material", lambda c, name: real(c, name, spec))  # 2 "materials", 1 file
    cfg = NeuMipConfig(texture_resolution=8, channels=4, hidden=8, steps=10, batch_size=128, val_samples=256,
                       warmup_steps=2, ckpt_every=2, progress=False)
    full = pretrain(dataclasses.replace(cfg, out=str(tmp_path / "a")), ["m0", "m1"])
    b = dataclasses.replace(cfg, out=str(tmp_path / "b"))
    with pytest.raises(Interrupted):
        pretrain(b, ["m0", "m1"], callbacks=[stop_at(7)])
    resumed = pretrain(b, ["m0", "m1"], resume=True)
    _assert_same_run(load_checkpoint(full.checkpoint), load_checkpoint(resumed.checkpoint))
    assert resumed.metrics == full.metrics and set(resumed.metrics[0]) >= {"fp32_psnr", "int8_psnr"}
    res = runner.invoke(app, ["export", str(tmp_path / "b"), "--out", str(tmp_path / "x.nmat")])
    assert res.exit_code == 1 and "neumat neumip pretrain" in res.output


def test05_a_tiny_budget_still_ends_quantized(tmp_path, btf_file, decoders):
    """``max_minutes`` far below the planned steps: the run is rescaled after the probe steps,
    both stages keep their share, and the exported bundle was fitted through the quantized
    phase and fine-tuned fake-quantized (last record ``finetune/...``)."""
    cfg = _cfg(tmp_path, steps=100000, max_minutes=0.03, budget_probe_steps=3, log_every=1, ckpt_every=0)
    result = _fit(cfg, btf_file, decoders, finetune=50000)
    state = load_checkpoint(result.checkpoint)
    planned = 150000
    started = state["neumip"]["started"]
    assert len(started) == 2 and 0 < started[1] < result.steps_done  # both stages ran
    assert result.stopped_by_budget and state["total_steps"] == result.steps_done < planned
    phases = [h["phase"] for h in result.history if h["kind"] == "train"]
    assert phases[0] == "frozen/float" and "frozen/quantize" in phases and phases[-1] == "finetune/quantize"
    bundle = load_bundle(tmp_path / "m.nmat")
    assert bundle.provenance["total_steps"] == result.steps_done and bundle.provenance["step"] == result.steps_done


def test06_stage_bounds_share_a_rescaled_run():
    assert stage_bounds([12, 6], [], 18) == [(0, 12), (12, 18)]
    assert stage_bounds([12, 6], [0], 9) == [(0, 6), (6, 9)]  # rescaled before the fine-tune began
    assert stage_bounds([12, 6], [0, 12], 14) == [(0, 12), (12, 14)]  # a started stage keeps its start
    assert stage_bounds([3], [0], 1) == [(0, 1)]



def _fit_args(out, *extra):
    return ["neumip", "fit", "--decoders", str(DECODERS), "--out", str(out), "--steps", "4", "--batch-size", "128",
            "--texture-resolution", "16", "--no-progress", "--set", "val_samples=256", *extra]


def test07_cli_fits_a_measured_btf_and_resumes(tmp_path, btf_file):
    """``neumat neumip fit --btf FILE --run-dir DIR``, then ``--resume --steps 6`` extends it."""
    out, run = tmp_path / "carpet.nmat", tmp_path / "run"
    res = runner.invoke(app, _fit_args(out, "--btf", str(btf_file), "--run-dir", str(run), "--set", "ckpt_every=2"))
    assert res.exit_code == 0, res.output
    bundle = load_bundle(out)
    check_neumip(bundle)
    assert bundle.provenance["source"] == {"kind": "btf", "path": str(btf_file.resolve())}
    assert bundle.provenance["material"] == "tiny" and bundle.provenance["step"] == 4
    assert json.loads((run / "config.json").read_text())["ckpt_every"] == 2
    assert latest_checkpoint(run).name == "ckpt_00000004.pt"
    res = runner.invoke(app, ["neumip", "fit", "--btf", str(btf_file), "--decoders", str(DECODERS), "--out",
                              str(out), "--run-dir", str(run), "--resume", "--steps", "6", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert load_bundle(out).provenance["step"] == 6 and latest_checkpoint(run).name == "ckpt_00000006.pt"
    res = runner.invoke(app, _fit_args(out, "--btf", str(btf_file), "--resume"))
    assert res.exit_code == 2 and "--run-dir" in res.output


def test08_cli_fits_maps_and_refuses_two_sources(tmp_path, btf_file, monkeypatch):
    from neumat.fidelity.materials import SUITE, write_texture_set

    monkeypatch.setenv("NEUMAT_CACHE", str(tmp_path / "cache"))
    maps = write_texture_set(SUITE["rough_plaster"], tmp_path / "plaster", 32)
    out = tmp_path / "plaster.nmat"
    tiny = ["--set", "map_resolution=32", "--set", "slice_resolution=8", "--set", "n_views=4", "--set", "n_lights=4"]
    res = runner.invoke(app, _fit_args(out, "--maps", str(maps), *tiny))
    assert res.exit_code == 0, res.output
    assert load_bundle(out).provenance["source"]["kind"] == "maps"
    for bad in (["--maps", str(maps), "--btf", str(btf_file)], ["stone_tiles", "--btf", str(btf_file)],
                ["--btf", str(btf_file), "--height-scale", "0.02"], ["--btf", str(tmp_path / "none.btf")]):
        res = runner.invoke(app, _fit_args(out, *bad))
        assert res.exit_code == 2, (bad, res.output)


def test09_set_and_config_files_override_the_neumip_config(tmp_path, btf_file):
    """``--set`` and ``--config`` reach every NeuMipConfig field (nested ``qat.*`` too); an
    unknown key is exit 2 with the valid keys listed."""
    cfg = apply_overrides(NeuMipConfig(), ["lr_textures=0.01", "qat.quantize_start=0.5", "max_minutes=2"])
    assert (cfg.lr_textures, cfg.qat.quantize_start, cfg.max_minutes) == (0.01, 0.5, 2.0)
    with pytest.raises(ConfigError, match="lr_textures"):
        apply_overrides(NeuMipConfig(), ["lr_texture=0.01"])
    with pytest.raises(ConfigError, match="finetune_start"):
        apply_overrides(NeuMipConfig(), ["qat.start=0.5"])
    with pytest.raises(ConfigError, match="unknown section 'optim'"):
        apply_overrides(NeuMipConfig(), ["optim.lr_mlp=0.5"])
    with pytest.raises(ConfigError, match="ckpt_every"):
        apply_overrides(NeuMipConfig(), ["ckpt_every=-1"])
    path = tmp_path / "neumip.toml"
    path.write_text("lr_textures = 0.03\n[qat]\nfinetune_start = 0.95\n")
    assert load_config(path, NeuMipConfig).qat.finetune_start == 0.95

    out, run = tmp_path / "m.nmat", tmp_path / "run"
    res = runner.invoke(app, _fit_args(out, "--btf", str(btf_file), "--run-dir", str(run), "--config", str(path),
                                       "--set", "qat.quantize_start=0.5"))
    assert res.exit_code == 0, res.output
    saved = json.loads((run / "config.json").read_text())
    assert saved["lr_textures"] == 0.03 and saved["qat"]["finetune_start"] == 0.95
    assert saved["qat"]["quantize_start"] == 0.5 and saved["texture_resolution"] == 16 and saved["steps"] == 4
    assert load_bundle(out).provenance["config"]["lr_textures"] == 0.03
    res = runner.invoke(app, _fit_args(out, "--btf", str(btf_file), "--set", "lr_texture=1"))
    assert res.exit_code == 2 and "lr_textures" in res.output


def test10_pretraining_on_a_tiny_budget_goes_through_every_qat_phase(tmp_path, btf_file, monkeypatch):
    """Decoder pretraining cut to a budget: observe -> quantize -> frozen-range fine-tune all
    happen, so the decoders (and every bundle of them) went through QAT."""
    fit_module = importlib.import_module("neumat.train.neumip.fit")
    spec = NeuMipConfig().btf_spec(btf_file)
    real = fit_module.load_material
    monkeypatch.setattr(fit_module, "load_material", lambda c, name: real(c, name, spec))
    cfg = NeuMipConfig(texture_resolution=8, channels=4, hidden=8, steps=100000, batch_size=128, val_samples=256,
                       warmup_steps=2, max_minutes=0.02, budget_probe_steps=3, log_every=1, ckpt_every=0,
                       out=str(tmp_path), progress=False)
    result = pretrain(cfg, ["m0"])
    assert result.stopped_by_budget and result.steps_done < 100000
    phases = [h["phase"] for h in result.history if h["kind"] == "train"]
    assert phases[0] == "qat/observe" and "qat/quantize" in phases and phases[-1] == "qat/finetune"
    bundle = result.bundle(0, cfg)
    check_neumip(bundle)
    assert bundle.provenance["metrics"]["int8_psnr"] == result.metrics[0]["int8_psnr"]


SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
import torch
from test_neumip_resume import DECODERS, FINETUNE, _fit, load_decoders
from neumat.train import config_from_dict
from neumat.train.neumip import NeuMipConfig
torch.set_num_threads({threads})  # the parent's: float sums differ between thread counts
from pathlib import Path
cfg = config_from_dict({cfg!r}, NeuMipConfig)
_fit(cfg, Path({btf!r}), load_decoders(DECODERS), callbacks=[lambda e, s: time.sleep(0.05)])
"""


def test11_sigkill_mid_fit_then_resume(tmp_path, uninterrupted, btf_file):
    """A fit process killed with SIGKILL (no clean-up) mid-run, then resumed from its run
    directory: the uninterrupted run's state and bundle, bit for bit."""
    from neumat.train import config_to_dict

    cfg = _cfg(tmp_path, ckpt_every=1)
    script = SCRIPT.format(tests=str(ROOT / "tests"), cfg=config_to_dict(cfg), threads=torch.get_num_threads(),
                           btf=str(btf_file))
    kill_after_checkpoint(script, tmp_path, 8, ROOT)
    killed_at = load_checkpoint(latest_checkpoint(tmp_path))["step"]
    assert 8 <= killed_at < STEPS + FINETUNE
    resumed = _fit(cfg, btf_file, load_decoders(DECODERS), resume=True)
    _assert_same_run(uninterrupted[0], load_checkpoint(resumed.checkpoint))
    _same_bundle(uninterrupted[1], load_bundle(tmp_path / "m.nmat"))


def ddp_worker(rank, world, port, cfg_dict, btf):
    """torch.multiprocessing.spawn target: one process of a gloo DDP NeuMIP pretraining run."""
    import os

    from neumat.train import config_from_dict
    from neumat.train.distributed import shutdown_distributed

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    fit_module = importlib.import_module("neumat.train.neumip.fit")
    cfg = config_from_dict(cfg_dict, NeuMipConfig)
    spec = cfg.btf_spec(btf)
    real = fit_module.load_material
    fit_module.load_material = lambda c, name: real(c, name, spec)
    try:
        pretrain(cfg, ["m0", "m1"])
    finally:
        shutdown_distributed()


def test12_two_processes_pretrain_like_one(tmp_path, btf_file, monkeypatch):
    """DDP (2 gloo processes, each half of every material's batch, averaged gradients, shared
    activation maxima) against 1 process: float phase equal to float precision, and after
    the quantized phases close (rounding flips, as for the triple-plane trainer)."""
    import socket

    import torch.multiprocessing as mp

    fit_module = importlib.import_module("neumat.train.neumip.fit")
    spec = NeuMipConfig().btf_spec(btf_file)
    real = fit_module.load_material
    monkeypatch.setattr(fit_module, "load_material", lambda c, name: real(c, name, spec))
    cfg = NeuMipConfig(texture_resolution=8, channels=4, hidden=8, steps=10, batch_size=128, val_samples=256,
                       warmup_steps=2, ckpt_every=1, keep_checkpoints=20, progress=False)
    torch.set_num_threads(1)
    pretrain(dataclasses.replace(cfg, out=str(tmp_path / "one")), ["m0", "m1"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from neumat.train import config_to_dict

    two = dataclasses.replace(cfg, out=str(tmp_path / "two"))
    mp.spawn(ddp_worker, args=(2, port, config_to_dict(two), str(btf_file)), nprocs=2, join=True)

    def rel_diff(step):
        a, b = (load_checkpoint(checkpoint_path(tmp_path / d, step))["model"] for d in ("one", "two"))
        return {k: float((a[k] - b[k]).abs().max() / a[k].abs().max().clamp(min=1e-12))
                for k in a if a[k].is_floating_point()}

    observe = rel_diff(5)  # steps 0-5 observe (quantize_start 0.6 of 10)
    assert max(observe.values()) < 1e-5, observe
    done = rel_diff(10)
    assert max(done.values()) < 2e-2, done


def test13_neumat_export_writes_a_fit_checkpoints_bundle(tmp_path, uninterrupted):
    """``neumat export RUN_DIR`` rebuilds the fitted bundle from the last checkpoint: the live
    export's tensors and provenance; a pretraining checkpoint is refused with what to run."""
    _, live, result = uninterrupted
    out = tmp_path / "again.nmat"
    res = runner.invoke(app, ["export", str(result.checkpoint.parent), "--out", str(out)])
    assert res.exit_code == 0, res.output
    _same_bundle(live, load_bundle(out))
    assert load_bundle(out).provenance["fit_seconds"] == live.provenance["fit_seconds"]


def test14_cli_pretrain_checkpoints_resumes_and_records_only_the_result_config(tmp_path, btf_file, monkeypatch):
    """``neumat neumip pretrain --run-dir DIR --set ...``, then ``--resume --steps 6``: the
    decoder file records the config of the result (no run-control fields), so the same
    pretraining writes the same file however it was run."""
    fit_module = importlib.import_module("neumat.train.neumip.fit")
    spec = NeuMipConfig().btf_spec(btf_file)
    real = fit_module.load_material
    monkeypatch.setattr(fit_module, "load_material", lambda c, name: real(c, name, spec))
    out, run = tmp_path / "mlps.safetensors", tmp_path / "run"
    args = ["neumip", "pretrain", "--materials", "m0,m1", "--out", str(out), "--run-dir", str(run), "--no-progress"]
    res = runner.invoke(app, [*args, "--steps", "4", "--batch-size", "64", "--texture-resolution", "8",
                              *[x for s in ("channels=4", "hidden=8", "val_samples=128", "ckpt_every=2")
                                for x in ("--set", s)]])
    assert res.exit_code == 0, res.output
    assert latest_checkpoint(run).name == "ckpt_00000004.pt"
    nets, max_offset, info = load_decoders(out)
    assert nets.channels == 4 and info["materials"] == ["m0", "m1"] and info["config"]["steps"] == 4
    assert not {"out", "ckpt_every", "max_minutes", "progress"} & set(info["config"])
    res = runner.invoke(app, [*args, "--resume", "--steps", "6"])
    assert res.exit_code == 0, res.output
    assert latest_checkpoint(run).name == "ckpt_00000006.pt" and load_decoders(out)[2]["config"]["steps"] == 6
    res = runner.invoke(app, [*args, "--set", "hiden=8"])
    assert res.exit_code == 2 and "hidden" in res.output
