"""Exact resume: a run killed at any step and resumed ends bit-identical to an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="training needs torch (pip install 'neumat[train]')")

from neumat.train import train  # noqa: E402
from neumat.train.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint  # noqa: E402
from train_fixtures import AnalyticBtf, small_config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


class Interrupted(RuntimeError):
    pass


def _stop_at(step):
    def callback(trainer, done):
        if done == step:
            raise Interrupted(f"killed after step {done}")
    return callback


def _assert_same_state(a, b):
    assert a["step"] == b["step"]
    for key, ta in a["model"].items():
        assert torch.equal(ta, b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        for k in sa:
            assert torch.equal(torch.as_tensor(sa[k]), torch.as_tensor(sb[k])), k
    vals = lambda s: [h for h in s["history"] if h["kind"] == "val"]  # noqa: E731
    assert vals(a) == vals(b)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    result = train(small_config(out), AnalyticBtf())
    return load_checkpoint(result.checkpoint)


def test01_same_seed_same_bits(tmp_path, uninterrupted):
    again = train(small_config(tmp_path), AnalyticBtf())
    _assert_same_state(uninterrupted, load_checkpoint(again.checkpoint))


@pytest.mark.parametrize("kill_after", [3, 13, 21])  # observe, quantize and finetune phases
def test02_kill_and_resume_is_bit_identical(tmp_path, uninterrupted, kill_after):
    cfg = small_config(tmp_path)
    with pytest.raises(Interrupted):
        train(cfg, AnalyticBtf(), callbacks=[_stop_at(kill_after)])
    last = latest_checkpoint(tmp_path)
    if kill_after < 5:
        assert last is None  # killed before the first checkpoint: the resume starts afresh
    else:
        assert load_checkpoint(last)["step"] == kill_after // 5 * 5
    resumed = train(cfg, AnalyticBtf(), resume=True)
    assert resumed.steps_done == 24
    _assert_same_state(uninterrupted, load_checkpoint(resumed.checkpoint))
    assert len(list_checkpoints(tmp_path)) <= cfg.keep_checkpoints


SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
import torch
from neumat.train import train, config_from_dict
from train_fixtures import AnalyticBtf
torch.set_num_threads({threads})  # the parent's: float sums differ between thread counts
cfg = config_from_dict({cfg!r})
train(cfg, AnalyticBtf(), callbacks=[lambda t, s: time.sleep(0.05)])
"""


def test03_sigkill_mid_run_then_resume(tmp_path, uninterrupted):
    from neumat.train import config_to_dict

    cfg = small_config(tmp_path, "ckpt_every=1")
    script = SCRIPT.format(tests=str(REPO / "tests"), cfg=config_to_dict(cfg), threads=torch.get_num_threads())
    env = {**os.environ, "PYTHONPATH": str(REPO / "python")}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            last = latest_checkpoint(tmp_path)
            if last is not None and int(last.stem.split("_")[1]) >= 10:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_checkpoint(latest_checkpoint(tmp_path))["step"]
    assert 10 <= killed_at < 24
    resumed = train(small_config(tmp_path, "ckpt_every=1"), AnalyticBtf(), resume=True)
    _assert_same_state(uninterrupted, load_checkpoint(resumed.checkpoint))
