"""A small analytic BTF for the training tests (closed form, no data files, milliseconds).

Value = cos(theta_i) * (albedo(uv) / pi + ks(uv) * (n(uv) + 2) / (2 pi) * cos(theta_h)^n(uv)):
a spatially varying Lambert + normalized Blinn-Phong material under unit irradiance at normal
incidence (so highlights exceed 1, as in real BTFs). Textures are periodic in uv (the
material tiles). Directions come from a fixed set of ``n_dirs`` hemisphere directions; every
(wi, wo) pair is a configuration, 10 % of which are held out (``held_out_split``).
"""

from __future__ import annotations

import numpy as np
import pytest

from neumat.data import BtfBatch, BtfSource, held_out_split

TWO_PI = 2 * np.pi


def _textures(uv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """albedo [B, 3], ks [B], exponent [B] at uv [B, 2] (period 1 in u and v)."""
    u, v = uv[:, 0], uv[:, 1]
    a = 0.5 + 0.25 * np.sin(TWO_PI * u) * np.cos(TWO_PI * 2 * v)
    b = 0.5 + 0.3 * np.cos(TWO_PI * (u + v))
    albedo = np.stack([a, 0.6 * a + 0.3 * b, 0.8 * b], axis=1)
    ks = 0.08 + 0.06 * np.sin(TWO_PI * 3 * u) ** 2
    n = 20.0 + 15.0 * np.cos(TWO_PI * v)
    return albedo, ks, n


def _directions(n: int, rng: np.random.Generator) -> np.ndarray:
    """n unit vectors, theta up to 75 degrees, stratified in cos(theta) and phi."""
    cos_t = 1 - (np.arange(n) + rng.random(n)) / n * (1 - np.cos(np.radians(75)))
    phi = rng.random(n) * TWO_PI
    s = np.sqrt(1 - cos_t**2)
    return np.stack([s * np.cos(phi), s * np.sin(phi), cos_t], axis=1)


def analytic_value(uv: np.ndarray, wi: np.ndarray, wo: np.ndarray) -> np.ndarray:
    """float32 BTF values [B, 3] of the analytic material."""
    albedo, ks, n = _textures(uv.astype(np.float64))
    h = wi + wo
    h = h / np.linalg.norm(h, axis=1, keepdims=True)
    cos_h = np.clip(h[:, 2], 0, 1)
    spec = ks * (n + 2) / TWO_PI * cos_h**n
    return (wi[:, 2:3] * (albedo / np.pi + spec[:, None])).astype(np.float32)


class AnalyticBtf(BtfSource):
    """Analytic spatially varying Lambert + Blinn-Phong BTF (see the module docstring)."""

    uv_space = "surface"

    def __init__(self, n_dirs: int = 64, image_res: int = 16, n_heldout_images: int = 6, seed: int = 7) -> None:
        self.name = f"analytic-{n_dirs}"
        dirs = _directions(n_dirs, np.random.default_rng(seed))
        ii, oo = np.meshgrid(np.arange(n_dirs), np.arange(n_dirs), indexing="ij")
        self.wi_all, self.wo_all = dirs[ii.ravel()], dirs[oo.ravel()]
        held = held_out_split(len(self.wi_all))
        self.split_index = {"train": np.flatnonzero(~held), "heldout": np.flatnonzero(held)}
        self.image_res = image_res
        self.n_heldout_images = n_heldout_images

    def sample(self, n: int, rng: np.random.Generator, split: str = "train") -> BtfBatch:
        idx = self.split_index[split][rng.integers(0, len(self.split_index[split]), size=n)]
        uv = rng.random((n, 2))
        wi, wo = self.wi_all[idx], self.wo_all[idx]
        return BtfBatch(uv.astype(np.float32), wi.astype(np.float32), wo.astype(np.float32),
                        analytic_value(uv, wi, wo))

    def heldout_images(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        r = self.image_res
        v, u = np.meshgrid((np.arange(r) + 0.5) / r, (np.arange(r) + 0.5) / r, indexing="ij")
        uv = np.stack([u.ravel(), v.ravel()], axis=1)
        out = []
        for k in self.split_index["heldout"][: self.n_heldout_images]:
            wi, wo = self.wi_all[k].astype(np.float32), self.wo_all[k].astype(np.float32)
            img = analytic_value(uv, np.broadcast_to(wi, (len(uv), 3)), np.broadcast_to(wo, (len(uv), 3)))
            out.append((wi, wo, img.reshape(r, r, 3)))
        return out


SMALL = [
    "model.u_res=16", "model.hd_res=6", "model.hidden=16", "data.batch_size=1024", "data.chunks=4",
    "data.val_samples=2048", "data.calibration_samples=4096", "optim.warmup_steps=4", "optim.restart_period=10",
    "qat.quantize_start=0.3", "qat.finetune_start=0.8", "log_every=3", "progress=false",
]
"""A tiny run (milliseconds per step) whose steps cover all three QAT phases."""


def small_config(out, *overrides: str):
    """TrainConfig of a tiny run writing to ``out`` (24 steps by default) plus ``overrides``."""
    import json

    from neumat.train import TrainConfig, apply_overrides

    return apply_overrides(TrainConfig(), [*SMALL, "steps=24", "val_every=8", "ckpt_every=5",
                                           f"out={json.dumps(str(out))}", *overrides])


def ddp_worker(rank: int, world: int, port: int, cfg_dict: dict) -> None:
    """torch.multiprocessing.spawn target: one process of a gloo DDP run of the analytic BTF.

    The run's checkpoints (written by rank 0 in ``cfg_dict["out"]``) are its result.
    """
    import os

    import torch

    from neumat.train import TrainConfig, config_from_dict, train
    from neumat.train.distributed import shutdown_distributed

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        train(config_from_dict(cfg_dict, TrainConfig), AnalyticBtf())
    finally:
        shutdown_distributed()


@pytest.fixture
def analytic_registry(monkeypatch):
    """Let ``--material analytic`` name :class:`AnalyticBtf` in CLI runs (the real registry is
    neumat.data's): use with ``pytestmark = pytest.mark.usefixtures("analytic_registry")`` after
    importing it."""
    from neumat.train import sources

    real = sources.make_source

    def make(spec):
        if isinstance(spec, dict) and spec.get("kind") == "material" and spec.get("name") == "analytic":
            return AnalyticBtf()
        return real(spec)

    monkeypatch.setattr(sources, "make_source", make)


def kill_after_checkpoint(script: str, out, step: int, repo) -> None:
    """Run ``script`` (python -c, with ``repo``/python on the path) until the run directory
    ``out`` holds a checkpoint of at least ``step``, then SIGKILL it (no clean-up runs); fails
    if the script ends first or no such checkpoint appears within 60 s."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from neumat.train.checkpoint import latest_checkpoint

    env = {**os.environ, "PYTHONPATH": str(repo / "python")}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            last = latest_checkpoint(out)
            if last is not None and int(last.stem.split("_")[1]) >= step:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


class Interrupted(RuntimeError):
    """Raised by :func:`stop_at`'s callback: a run stopped as if killed."""


def stop_at(step: int):
    """A training callback that raises :class:`Interrupted` after optimizer step ``step``."""
    def callback(engine, done):
        if done == step:
            raise Interrupted(f"killed after step {done}")
    return callback


def assert_same_checkpoint(a: dict, b: dict) -> None:
    """Two checkpoints' states agree bit for bit: step, model tensors, optimizer state and the
    validation records of their histories."""
    import torch

    assert a["step"] == b["step"]
    for key, ta in a["model"].items():
        assert torch.equal(ta, b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True):
        for k in sa:
            assert torch.equal(torch.as_tensor(sa[k]), torch.as_tensor(sb[k])), k
    validations = [[h for h in s["history"] if h["kind"] == "val"] for s in (a, b)]
    assert validations[0] == validations[1]
