"""Per-pass frame-time history for the viewer's ImPlot graph."""

from __future__ import annotations

from collections import deque

import numpy as np

HISTORY = 200
"""Frames kept."""


class FrameTimes:
    """The last ``capacity`` rendered frames' ``RenderResult.timings_ms`` (ms per pass and
    ``total``), plus the viewer's whole UI-frame time (``ui``, ms)."""

    def __init__(self, capacity: int = HISTORY) -> None:
        self.frames: deque[dict[str, float]] = deque(maxlen=capacity)

    def add(self, timings_ms: dict[str, float]) -> None:
        """Append one frame's timings."""
        self.frames.append(dict(timings_ms))

    def pass_names(self) -> list[str]:
        """Pass names seen in the history, ``total`` last."""
        names = dict.fromkeys(k for f in self.frames for k in f)
        return [k for k in names if k != "total"] + (["total"] if "total" in names else [])

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(frame index, ms) float64 arrays of ``key`` (NaN where a frame lacks the pass)."""
        ys = np.array([f.get(key, np.nan) for f in self.frames], np.float64)
        return np.arange(len(ys), dtype=np.float64), ys

    def mean(self, key: str, last: int = 20) -> float:
        """Mean of ``key`` over the last ``last`` frames that have it (NaN if none)."""
        ys = self.series(key)[1][-last:]
        ys = ys[np.isfinite(ys)]
        return float(ys.mean()) if ys.size else float("nan")
