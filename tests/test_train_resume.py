"""Exact resume: a run killed at any step and resumed ends bit-identical to an uninterrupted run."""

from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="training needs torch (pip install 'neumat[train]')")

from neumat.train import train  # noqa: E402
from neumat.train.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint  # noqa: E402
from train_fixtures import AnalyticBtf, Interrupted, assert_same_checkpoint, kill_after_checkpoint, small_config, \
    stop_at  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    result = train(small_config(out), AnalyticBtf())
    return load_checkpoint(result.checkpoint)


def test01_same_seed_same_bits(tmp_path, uninterrupted):
    again = train(small_config(tmp_path), AnalyticBtf())
    assert_same_checkpoint(uninterrupted, load_checkpoint(again.checkpoint))


@pytest.mark.parametrize("kill_after", [3, 13, 21])  # observe, quantize and finetune phases
def test02_kill_and_resume_is_bit_identical(tmp_path, uninterrupted, kill_after):
    cfg = small_config(tmp_path)
    with pytest.raises(Interrupted):
        train(cfg, AnalyticBtf(), callbacks=[stop_at(kill_after)])
    last = latest_checkpoint(tmp_path)
    if kill_after < 5:
        assert last is None  # killed before the first checkpoint: the resume starts afresh
    else:
        assert load_checkpoint(last)["step"] == kill_after // 5 * 5
    resumed = train(cfg, AnalyticBtf(), resume=True)
    assert resumed.steps_done == 24
    assert_same_checkpoint(uninterrupted, load_checkpoint(resumed.checkpoint))
    assert len(list_checkpoints(tmp_path)) <= cfg.keep_checkpoints


SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
import torch
from neumat.train import TrainConfig, train, config_from_dict
from train_fixtures import AnalyticBtf
torch.set_num_threads({threads})  # the parent's: float sums differ between thread counts
cfg = config_from_dict({cfg!r}, TrainConfig)
train(cfg, AnalyticBtf(), callbacks=[lambda t, s: time.sleep(0.05)])
"""


def test03_sigkill_mid_run_then_resume(tmp_path, uninterrupted):
    from neumat.train import config_to_dict

    cfg = small_config(tmp_path, "ckpt_every=1")
    script = SCRIPT.format(tests=str(REPO / "tests"), cfg=config_to_dict(cfg), threads=torch.get_num_threads())
    kill_after_checkpoint(script, tmp_path, 10, REPO)
    killed_at = load_checkpoint(latest_checkpoint(tmp_path))["step"]
    assert 10 <= killed_at < 24
    resumed = train(small_config(tmp_path, "ckpt_every=1"), AnalyticBtf(), resume=True)
    assert_same_checkpoint(uninterrupted, load_checkpoint(resumed.checkpoint))
