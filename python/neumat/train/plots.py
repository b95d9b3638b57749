"""Loss-curve PNG of a run (needs matplotlib, an optional dependency)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def matplotlib_available() -> bool:
    """True when matplotlib can be imported (``pip install matplotlib``)."""
    return importlib.util.find_spec("matplotlib") is not None


def write_loss_curve(history: list[dict[str, Any]], path: str | Path) -> Path | None:
    """Plot training loss and held-out PSNR (FP32, INT8) against the step into ``path``.

    Returns the path written, or None (logged once at INFO) when matplotlib is not installed:
    the same numbers are always in ``history.json``.
    """
    if not matplotlib_available():
        log.info("loss curve skipped: matplotlib is not installed (pip install matplotlib); "
                 "the numbers are in history.json")
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [h for h in history if h.get("kind") == "train"]
    val = [h for h in history if h.get("kind") == "val"]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax.plot([h["step"] for h in train], [h["loss"] for h in train], lw=1, label="train L1 (scaled)")
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("L1 loss")
    if val:
        ax2 = ax.twinx()
        for key, style, label in (("fp32_psnr", "g.-", "held-out PSNR FP32"), ("int8_psnr", "r.-", "held-out PSNR INT8")):
            have = [h for h in val if key in h]  # a run without INT8 export (NeuMIP's Δu = 0 ablation) has none
            ax2.plot([h["step"] for h in have], [h[key] for h in have], style, label=label)
        ax2.set_ylabel("PSNR [dB]")
        ax2.legend(loc="lower right")
    ax.legend(loc="upper right")
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path
