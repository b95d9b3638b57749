"""make gpu-check's script on a machine without an NVIDIA GPU: the GPU parts are skipped with
the reason, the CPU parts run and write their files (scripts/gpu_check.sh --quick)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_check.sh"


def run(*args, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OUT": str(out), "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU machine runs the real check")
def test01_quick_check_without_gpu(tmp_path):
    done = run("--quick", out=tmp_path)
    assert done.returncode == 0, (tmp_path / "gpu_check.log").read_text()
    summary = (tmp_path / "gpu_check.md").read_text()
    assert "GPU: none — no NVIDIA GPU" in summary
    assert "| pytest -m gpu | skipped: no NVIDIA GPU" in summary and "| neumat doctor | ok |" in summary
    assert "| neumat bench mlp | ok |" in summary and "| neumat bench frames (512x512, vulkan) | ok |" in summary
    results = json.loads((tmp_path / "bench_mlp.json").read_text())["results"]
    assert {"numpy", "native", "slang"} <= {r["name"] for r in results if r["available"]}
    frames = json.loads((tmp_path / "frames" / "bench.json").read_text())
    assert frames["cases"] and all(c["resolution"] == [512, 512] for c in frames["cases"])
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) <= 8  # what the device tool returns from $OUT


def test02_unknown_option_is_refused(tmp_path):
    done = run("--fast", out=tmp_path)
    assert done.returncode == 2 and "unknown option --fast" in done.stderr


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU machine runs the real check")
def test03_falcor_half_without_gpu_skips_with_the_reason(tmp_path):
    """--falcor (make gpu-check-falcor) runs only the Falcor steps: here they are skipped with
    the reason, nothing else runs, and the check passes."""
    done = run("--falcor", out=tmp_path)
    assert done.returncode == 0, (tmp_path / "gpu_check.log").read_text()
    summary = (tmp_path / "gpu_check.md").read_text()
    assert "mode: falcor" in summary
    assert "| Falcor steps | skipped: no NVIDIA GPU" in summary
    assert "neumat doctor" not in summary and "bench" not in summary
