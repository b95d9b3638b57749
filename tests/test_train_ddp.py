"""DDP: 2 gloo processes train like 1 process with the same global batch (and like accumulation).

Data, observer ranges, schedule and QAT phases are identical by construction; only the float
summation order of the gradients differs (all-reduce vs one batch). In FP32 that is a ~1e-7
relative difference. Once the decoder is fake-quantized, such a difference can move an
activation across a rounding boundary, which changes that sample's result by a whole INT8
step, so after the quantized phases the runs agree closely but not to float precision.
"""

import socket

import pytest

torch = pytest.importorskip("torch", reason="training needs torch (pip install 'neumat[train]')")

from neumat.train import config_to_dict, train  # noqa: E402
from neumat.train.checkpoint import checkpoint_path, load_checkpoint  # noqa: E402
from train_fixtures import AnalyticBtf, ddp_worker, small_config  # noqa: E402

FP32_RTOL = 1e-5
"""Largest |difference| / max|parameter| per tensor during the FP32 (observe) phase."""
QAT_RTOL = 2e-2
"""Same bound after the quantized phases (rounding flips, see the module docstring)."""
QAT_PSNR_DB = 0.1
"""Largest held-out INT8 PSNR difference after the quantized phases."""
OBSERVE_CKPT = 5
"""A checkpoint step inside the observe phase (steps 0-7 of 24 with quantize_start 0.3)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rel_diff(a: dict, b: dict) -> dict:
    assert all(torch.equal(a[k], b[k]) for k in a if not a[k].is_floating_point())
    return {k: float((a[k] - b[k]).abs().max() / a[k].abs().max().clamp(min=1e-12))
            for k in a if a[k].is_floating_point()}


def _cfg(out, *extra):
    return small_config(out, "keep_checkpoints=10", "optim.angular_smoothness=0.1", *extra)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("single")
    train(_cfg(out), AnalyticBtf())
    return out


def test01_two_processes_match_one(tmp_path, single):
    import torch.multiprocessing as mp

    cfg = _cfg(tmp_path / "ddp")
    mp.spawn(ddp_worker, args=(2, _free_port(), config_to_dict(cfg)), nprocs=2, join=True)
    a, b = (load_checkpoint(checkpoint_path(d, OBSERVE_CKPT)) for d in (single, tmp_path / "ddp"))
    fp32 = _rel_diff(a["model"], b["model"])
    assert max(fp32.values()) < FP32_RTOL, fp32
    a, b = (load_checkpoint(checkpoint_path(d, 24)) for d in (single, tmp_path / "ddp"))
    qat = _rel_diff(a["model"], b["model"])
    assert max(qat.values()) < QAT_RTOL, qat
    val = [[h for h in s["history"] if h["kind"] == "val"] for s in (a, b)]
    assert [h["step"] for h in val[0]] == [h["step"] for h in val[1]] == [8, 16, 24]
    for x, y in zip(*val):
        assert abs(x["int8_psnr"] - y["int8_psnr"]) < QAT_PSNR_DB


def test02_gradient_accumulation_matches_one_batch(tmp_path, single):
    train(_cfg(tmp_path, "data.accum_steps=2"), AnalyticBtf())
    fp32 = _rel_diff(*(load_checkpoint(checkpoint_path(d, OBSERVE_CKPT))["model"] for d in (single, tmp_path)))
    assert max(fp32.values()) < FP32_RTOL, fp32
    qat = _rel_diff(*(load_checkpoint(checkpoint_path(d, 24))["model"] for d in (single, tmp_path)))
    assert max(qat.values()) < QAT_RTOL, qat
