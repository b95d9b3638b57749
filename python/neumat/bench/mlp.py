"""INT8 MLP throughput: every available backend and a torch FP32 MLP on the same inputs.

All candidates evaluate the same network shape on the same float32 inputs in one run, so
ratios between them are meaningful on a noisy machine. Throughput is samples per second
(one sample = one input vector = one shaded pixel's MLP evaluation), from the median of
``repeats`` timed calls after ``warmup`` untimed ones. Host<->device copies are included for
the GPU backends that take host arrays (this is what a caller of ``backend(x)`` pays).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..backends import BACKEND_NAMES, backend_class
from ..quant import Int8MLP
from ..quant.testvectors import random_inputs, random_mlp
from .environment import machine_info


@dataclass
class MlpBenchConfig:
    """What ``neumat bench mlp`` measures."""

    widths: tuple[int, ...] = (24, 32, 32, 32, 3)
    """Layer widths (inputs ... outputs); default = the triple-plane material MLP."""
    samples: int = 1 << 18
    """Input vectors per timed call (262144 = one 512x512 frame)."""
    warmup: int = 1
    """Untimed calls before timing (compilation, caches, thread start-up)."""
    repeats: int = 5
    """Timed calls; the median is reported."""
    backends: tuple[str, ...] = BACKEND_NAMES
    """INT8 backends to try; unavailable ones are reported with their reason."""
    torch_fp32: bool = True
    """Also time a torch FP32 MLP of the same shape (bias-free Linear + ReLU, clamp)."""
    seed: int = 0
    """Seed of the random network and inputs."""


@dataclass
class MlpBenchResult:
    """One candidate's figures (``seconds`` = median per call)."""

    name: str
    available: bool
    reason: str | None = None
    description: str = ""
    seconds: float | None = None
    samples_per_s: float | None = None
    all_times_s: list[float] = field(default_factory=list)


def _time_calls(fn, x: np.ndarray, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        fn(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return times


def _result(name: str, description: str, times: list[float], samples: int) -> MlpBenchResult:
    med = statistics.median(times)
    return MlpBenchResult(name, True, None, description, med, samples / med, times)


def _torch_fp32(mlp: Int8MLP):
    """A torch FP32 MLP computing the dequantized network; None + reason if torch is missing."""
    try:
        import torch
    except ImportError:
        return None, "torch is not installed (pip install 'neumat[train]' with torch==2.13.0 on CPU)"
    scales = mlp.scales.astype(np.float64)
    layers = []
    for l in range(mlp.n_layers):
        w = mlp.weights_int8(l).astype(np.float64) * scales[2 * l + 1]
        lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.astype(np.float32)))
        layers += [lin, torch.nn.ReLU()] if l < mlp.n_layers - 1 else [lin]
    net = torch.nn.Sequential(*layers).eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(x)).clamp_(0, 1).numpy()

    return run, f"torch {torch.__version__} FP32, {torch.get_num_threads()} threads"


def run_mlp_bench(cfg: MlpBenchConfig, progress=None) -> dict:
    """Measure every candidate; returns a JSON-ready dict (config, machine, results, ratios).

    ``progress(name)`` is called before each candidate (for a CLI spinner), if given.
    """
    rng = np.random.default_rng(cfg.seed)
    mlp = random_mlp(cfg.widths, rng)
    x = random_inputs(mlp, cfg.samples, rng)
    results: list[MlpBenchResult] = []
    for name in cfg.backends:
        if progress:
            progress(name)
        cls = backend_class(name)
        reason = cls.unavailable_reason()
        if reason is not None:
            results.append(MlpBenchResult(name, False, reason))
            continue
        backend = cls(mlp)
        times = _time_calls(backend, x, cfg.warmup, cfg.repeats)
        results.append(_result(name, backend.describe(), times, cfg.samples))
    if cfg.torch_fp32:
        if progress:
            progress("torch_fp32")
        fn, desc = _torch_fp32(mlp)
        if fn is None:
            results.append(MlpBenchResult("torch_fp32", False, desc))
        else:
            results.append(_result("torch_fp32", desc, _time_calls(fn, x, cfg.warmup, cfg.repeats), cfg.samples))
    rates = {r.name: r.samples_per_s for r in results if r.available}
    ratios = {}
    if "torch_fp32" in rates:
        ratios = {f"{n}/torch_fp32": v / rates["torch_fp32"] for n, v in rates.items() if n != "torch_fp32"}
    return {
        "benchmark": "mlp_int8",
        "config": asdict(cfg),
        "machine": machine_info(),
        "results": [asdict(r) for r in results],
        "speed_ratios": ratios,
    }
