"""Held-out evaluation of a trained LRM (``neumat lrm eval``): for every material of a data set
(materials the LRM did not train on), the figures of :mod:`.metrics` over ``frames`` frames
evenly spread over its 81 trajectory + 81 cross-joined frames, for three materials:

* ``lrm`` — the bundle :mod:`.reconstruct` writes from the video's 17 input frames;
* ``mean_texture`` — the same bundle with both textures replaced by their mean texel (a
  constant material: what the LRM's spatial detail is worth);
* ``direct_fit`` — direct fitting of the whole 81-frame video (:func:`neumat.video.fit.fit_video`,
  the shipped universal decoders frozen, ``fit_steps`` steps at the LRM's texture side; the
  seed's baseline, §4.2).

Each bundle is rendered through its INT8 networks (:func:`neumat.video.frame_render.render_bundle_frame`,
the dataset's disk light): the figures are those of the ``.nmat`` files. ``seconds`` is the
time to make the material (the LRM's forward pass; the fit's optimisation). Written as
``eval.json`` (per material and means, the perceptual term named), ``eval.md`` (a table of the
means) and ``grid.png`` (ground truth / LRM / direct fit / T_off of a novel view and light for the
first materials, :mod:`.grid`).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..bundle import Bundle
from ..fileio import atomic_write_bytes
from ..video.frame_render import render_bundle_frame
from .data import LrmMaterial
from .grid import GRID_ROWS, GridRow, columns, grid_row, write_grid
from .loss import Perceptual
from .metrics import FIGURES, frame_figures
from .model import input_indices
from .reconstruct import TrainedLrm, predict_textures, textures_bundle

log = logging.getLogger(__name__)

METHODS = ("lrm", "mean_texture", "direct_fit")
"""The materials compared (module docstring)."""


def bundle_figures(bundle: Bundle, material: LrmMaterial, frames: list[int], perceptual: Perceptual) -> dict[str, Any]:
    """:func:`.metrics.frame_figures` of ``bundle`` rendered at ``material``'s loss ``frames``."""
    poses, refs = zip(*(material.loss_frame(k) for k in frames))
    size, sample = material.video.size, material.video.sample_size
    pred = np.stack([render_bundle_frame(bundle, p, size, size, sample) for p in poses])
    return frame_figures(torch.from_numpy(pred), torch.from_numpy(np.stack(refs)), perceptual)


def direct_fit(material: LrmMaterial, steps: int, texture_resolution: int, decoders_file: Path) -> tuple[Bundle, float]:
    """(bundle, seconds) of a direct fit of ``material``'s video (module docstring)."""
    from ..train.neumip import load_decoders
    from ..video.fit import VideoFitConfig, fit_video
    from ..video.frame_source import read_posed_frames

    nets, max_offset, _ = load_decoders(decoders_file)
    cfg = VideoFitConfig(steps=steps, texture_resolution=texture_resolution, warmup_steps=min(50, steps // 10),
                         progress=False, device="cpu")
    result = fit_video(cfg, read_posed_frames(material.video.path), nets, max_offset, name=material.name,
                       progress=False)
    return result.bundle(0, cfg), result.seconds


def evaluate(lrm: TrainedLrm, materials: list[LrmMaterial], frames: int, perceptual: Perceptual,
             fit_steps: int, decoders_file: Path, grid: list[GridRow] | None = None) -> dict[str, Any]:
    """The report (module docstring): ``{"materials": {name: {method: figures + seconds}},
    "mean": {method: figures + seconds}, "perceptual_metric", "frames", "fit_steps"}``;
    ``fit_steps`` 0 leaves direct fitting out. With a list ``grid``, the :class:`.grid.GridRow` of
    the first :data:`.grid.GRID_ROWS` materials are appended to it and the report says what the
    grid shows (``"grid": {"columns", "materials", "frames"}``)."""
    indices = input_indices(lrm.info.model.video_frames, lrm.info.model.frames)
    per: dict[str, dict[str, Any]] = {}
    for m in materials:
        chosen = sorted(set(np.linspace(0, m.loss_frames - 1, frames).round().astype(int).tolist()))
        start = time.perf_counter()
        off, rgb = predict_textures(lrm, m.input_frames(indices))
        seconds = time.perf_counter() - start
        bundles = {"LRM": textures_bundle(lrm, off, rgb, {})}
        rows = {"lrm": {**bundle_figures(bundles["LRM"], m, chosen, perceptual), "seconds": seconds}}
        flat = [np.broadcast_to(t.mean((0, 1), keepdims=True), t.shape).copy() for t in (off, rgb)]
        rows["mean_texture"] = {**bundle_figures(textures_bundle(lrm, *flat, {}), m, chosen, perceptual), "seconds": 0.0}
        if fit_steps > 0:
            bundle, fit_seconds = direct_fit(m, fit_steps, lrm.info.model.texture_resolution, decoders_file)
            rows["direct_fit"] = {**bundle_figures(bundle, m, chosen, perceptual), "seconds": fit_seconds}
            bundles["direct fit"] = bundle
        if grid is not None and len(grid) < GRID_ROWS:
            grid.append(grid_row(m, off, bundles))
        per[m.name] = rows
        log.info("%s: relative L1 %s", m.name, ", ".join(f"{k} {v['rel_l1']:.4f}" for k, v in rows.items()))
    methods = [k for k in METHODS if k in next(iter(per.values()))]
    mean = {k: {f: float(np.mean([per[n][k][f] for n in per])) for f in (*FIGURES, "seconds")} for k in methods}
    report = {"materials": per, "mean": mean, "perceptual_metric": perceptual.name, "frames": frames,
              "fit_steps": fit_steps, "weights": str(lrm.info.folder), "trained_steps": lrm.info.training.get("steps")}
    if grid:
        report["grid"] = {"columns": columns(grid), "materials": [r.name for r in grid],
                          "frames": [r.frame for r in grid]}
    return report


def markdown(report: dict[str, Any]) -> str:
    """The means of ``report`` as a markdown table (one row per method)."""
    lines = [f"LRM evaluation on {len(report['materials'])} material(s), {report['frames']} frames each "
             f"(trajectory + cross-joined), INT8 bundles; perceptual: {report['perceptual_metric']}", "",
             "| method | rel. L1 | MAPE | MSE | PSNR (dB) | perceptual | seconds / material |",
             "|---|---|---|---|---|---|---|"]
    for k, f in report["mean"].items():
        lines.append(f"| {k} | {f['rel_l1']:.4f} | {f['mape']:.4f} | {f['mse']:.6f} | {f['psnr']:.2f} | "
                     f"{f['perceptual']:.4f} | {f['seconds']:.2f} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out: str | Path, grid: list[GridRow] | None = None) -> list[Path]:
    """``<out>/eval.json``, ``<out>/eval.md`` and, given ``grid`` rows, ``<out>/grid.png``
    (:func:`.grid.write_grid`), atomically; the paths written."""
    out = Path(out)
    paths = [atomic_write_bytes(out / "eval.json", json.dumps(report, indent=1).encode()),
             atomic_write_bytes(out / "eval.md", markdown(report).encode())]
    if grid:
        paths.append(write_grid(grid, out / "grid.png"))
    return paths
