"""Frame times of the Falcor path from Falcor's profiler, in ``neumat bench frames``' JSON shape.

Each neumat pass runs inside ``profiler.event("neumat/<node>")`` (:mod:`.driver`); a capture
(``profiler.start_capture()`` … ``end_capture()``) returns, per event lane, one record per frame
(ms): ``{"frame_count": N, "events": {"/neumat/infer/gpu_time": {"records": [...], ...}, ...}}``.
:func:`passes_from_capture` turns the ``gpu_time`` lanes of the neumat events into per-pass
samples; :func:`falcor_frame_report` runs the frames and writes one case per resolution with the
same fields as :func:`neumat.bench.frames.run_frame_bench` (``passes {node: STATS}``, ``total``
= host wall time of the frame, STATS = median / p95 / min / samples), ``device.api`` =
``"falcor"`` and ``infer_backend`` = ``"falcor"``, so both files load into the same comparison.
Falcor stamps an event's GPU time when the frame it lands in ends (``Testbed.frame``), so the
records are aligned from the end: the last ``frames`` records of each lane are the timed frames
(one flushing ``frame()`` runs after them). Unverified on a GPU.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import numpy as np

EVENT_PREFIX = "neumat/"
"""Profiler event name of a neumat pass: ``neumat/<graph node>``."""


def passes_from_capture(capture: dict, frames: int) -> dict[str, list[float]]:
    """``{node: [ms per timed frame]}`` from a Falcor profiler capture: the last ``frames``
    records of each ``…/neumat/<node>/gpu_time`` lane. ValueError when a lane has fewer."""
    out: dict[str, list[float]] = {}
    for name, lane in capture.get("events", {}).items():
        head, _, kind = name.rpartition("/")
        if kind != "gpu_time" or f"/{EVENT_PREFIX}" not in f"/{head.lstrip('/')}":
            continue
        node = head.rpartition(EVENT_PREFIX)[2]
        records = [float(x) for x in lane.get("records", [])]
        if len(records) < frames:
            raise ValueError(f"profiler lane {name!r} has {len(records)} records, fewer than {frames} frames")
        out[node] = records[-frames:]
    return out


def falcor_frame_report(bundle_path: str | Path, scene: str, resolutions, frames: int = 20, warmup: int = 3,
                        precision: str = "int8", falcor=None, on_frame=None) -> dict:
    """Render ``warmup`` + ``frames`` frames per resolution through :class:`.driver.FalcorRenderer`
    and report them (module docstring); ``on_frame(label, i)`` is called after each frame."""
    from ..bench.environment import machine_info
    from ..bench.frames import SCHEMA, framing_camera, scene_label, stats
    from . import import_falcor
    from .driver import FalcorRenderer
    from .frame_plan import PLAN_OPTIONS

    falcor = falcor if falcor is not None else import_falcor()
    cases = []
    for width, height in resolutions:
        fr = FalcorRenderer(bundle_path, scene, (width, height), falcor=falcor)
        camera = framing_camera(fr.renderer.mesh, width, height)
        profiler = fr.testbed.profiler
        profiler.enabled = True
        totals, frame = [], None
        for i in range(warmup + frames):
            if i == warmup:
                profiler.start_capture()
            start = time.perf_counter()
            frame = fr.render(camera, None, precision=precision)
            if i >= warmup:
                totals.append(1e3 * (time.perf_counter() - start))
            if on_frame is not None:
                on_frame(f"falcor/{Path(bundle_path).stem}/{scene_label(scene)}/{width}x{height}", i)
        fr.testbed.frame()  # ends the frame the last events landed in
        passes = passes_from_capture(profiler.end_capture() or {}, frames)
        coverage = float(np.mean(frame.image.sum(axis=-1) > 0)) if frame is not None else 0.0
        cases.append({
            "device": "falcor", "scene": scene_label(scene), "scene_source": scene,
            "material": Path(bundle_path).stem, "material_path": str(bundle_path),
            "resolution": [width, height], "options_name": "falcor",
            "options": {**PLAN_OPTIONS, "precision": precision}, "infer_backend": "falcor",
            "frames": frames, "warmup": warmup, "coverage": coverage,
            "passes": {p: stats(v) for p, v in passes.items()}, "steps": {}, "total": stats(totals),
        })
    described = {"adapter": "Falcor", "api": "falcor", "software": False,
                 "description": f"Falcor {getattr(falcor, '__version__', '?')} (Vulkan) via {falcor.__name__}"}
    return {
        "schema": SCHEMA, "benchmark": "frames",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": described, "devices": [described], "machine": machine_info(),
        "config": {"frames": frames, "warmup": warmup, "resolutions": [list(r) for r in resolutions],
                   "scenes": [scene], "materials": [str(bundle_path)], "options": {"falcor": {"precision": precision}},
                   "infer_backends": ["falcor"], "devices": ["falcor"], "skipped": []},
        "cases": cases,
        "summary": {},
    }
