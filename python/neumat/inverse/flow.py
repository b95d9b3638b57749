"""Dense optical flow between adjacent video frames (OpenCV) and the correspondences consistency
finetuning (:mod:`.finetune`) and its metric (:mod:`.consistency`) take from it.

Flow methods, chosen by name (:data:`FLOW_METHODS`):

* ``"dis"`` — OpenCV's Dense Inverse Search (Kroeger et al. 2016), preset ``MEDIUM``: fast
  (milliseconds at 518², a CPU core); the default;
* ``"tvl1"`` — Dual TV-L1 (Zach et al. 2007) from opencv-contrib's ``cv2.optflow``: slower, more
  robust on weak texture.

Both run on 8-bit grey frames (Rec.601 luma of the sRGB-encoded RGB, as ``cv2.cvtColor`` makes
it). Conventions: pixel coordinates are OpenCV's (pixel (x = column, y = row) centred at
integers, row 0 at the top); a flow ``F_{a→b}`` is ``[H, W, 2]`` float32 ``(dx, dy)`` pixels:
the content at pixel ``p`` of frame a is at ``p + F(p)`` in frame b.

Occlusions (Sundaram, Brox & Keutzer 2010; UnFlow's form): pixel ``p`` of frame a is kept when
``p + F_{a→b}(p)`` falls inside frame b and the backward flow there undoes it,
``|F_{a→b}(p) + F_{b→a}(p + F_{a→b}(p))|² < α (|F_{a→b}|² + |F_{b→a}(·)|²) + β`` with
``α`` = :data:`FB_ALPHA`, ``β`` = :data:`FB_BETA` px².
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FB_ALPHA = 0.01
"""Relative tolerance of the forward–backward test (UnFlow, Meister et al. 2018: 0.01)."""
FB_BETA = 0.5
"""Absolute tolerance of the forward–backward test, px² (UnFlow: 0.5)."""


def _dis(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(a, b, None)


def _tvl1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import cv2

    if not hasattr(cv2, "optflow"):
        raise ValueError("flow method 'tvl1' needs opencv-contrib (cv2.optflow): pip install "
                         "opencv-contrib-python-headless, or use flow method 'dis'")
    return cv2.optflow.DualTVL1OpticalFlow_create().calc(a, b, None)


FLOW_METHODS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {"dis": _dis, "tvl1": _tvl1}
"""Flow methods by name (module docstring): ``(grey a, grey b) uint8 [H, W] -> F_{a→b}``."""


def require_flow_method(name: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The flow method ``name``; ValueError listing the valid names otherwise."""
    if name not in FLOW_METHODS:
        raise ValueError(f"unknown flow method {name!r}; choose from {sorted(FLOW_METHODS)}")
    return FLOW_METHODS[name]


def grey8(frame: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` sRGB-encoded RGB, uint8 or float in [0, 1] -> uint8 ``[H, W]`` luma."""
    import cv2

    f = np.asarray(frame)
    if f.dtype != np.uint8:
        f = np.round(np.clip(f, 0.0, 1.0) * 255.0).astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY)


def sample(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` ``[H, W]`` or ``[H, W, C]`` read bilinearly at ``p + flow(p)`` for every pixel
    ``p`` (backward warping: the result is laid out like the flow's source frame); positions
    outside the image read the nearest border pixel."""
    import cv2

    h, w = flow.shape[:2]
    xs = np.arange(w, dtype=np.float32)[None, :] + flow[..., 0]
    ys = np.arange(h, dtype=np.float32)[:, None] + flow[..., 1]
    return cv2.remap(np.ascontiguousarray(image, np.float32), xs, ys, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def consistent_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Bool ``[H, W]``: pixels of frame a whose flow lands inside frame b and passes the
    forward–backward test (module docstring)."""
    h, w = forward.shape[:2]
    x = np.arange(w)[None, :] + forward[..., 0]
    y = np.arange(h)[:, None] + forward[..., 1]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    back = sample(backward, forward)
    diff = ((forward + back) ** 2).sum(-1)
    bound = FB_ALPHA * ((forward ** 2).sum(-1) + (back ** 2).sum(-1)) + FB_BETA
    return inside & (diff < bound)


@dataclass
class PairFlow:
    """The flow from frame ``i`` to frame ``j`` of a sequence and where it is trusted."""

    i: int
    """Source frame (the flow's pixel grid)."""
    j: int
    """Target frame."""
    flow: np.ndarray
    """``[H, W, 2]`` float32 ``F_{i→j}`` (module docstring)."""
    valid: np.ndarray
    """``[H, W]`` bool: inside frame j and forward–backward consistent."""

    def correspondences(self) -> tuple[int, int, np.ndarray, np.ndarray]:
        """``(i, j, pixels of frame i [N, 2] (row, column), their positions in frame j [N, 2]
        (x, y))`` of the valid pixels: the pair format of
        :func:`~.evaluate.reprojection_pairs` (what :func:`~.evaluate.consistency_rmse` reads)."""
        rows, cols = np.nonzero(self.valid)
        xy = np.stack([cols + self.flow[rows, cols, 0], rows + self.flow[rows, cols, 1]], 1)
        return self.i, self.j, np.stack([rows, cols], 1), xy


def adjacent_flows(frames: np.ndarray, method: str = "dis") -> list[PairFlow]:
    """Flows between every pair of adjacent frames, ``t → t + 1`` for ``t < T − 1``, with their
    occlusion masks (forward and backward flow both computed).

    Args:
        frames: ``[T, H, W, 3]`` sRGB-encoded RGB, uint8 or float in [0, 1], ``T >= 2``.
        method: a name of :data:`FLOW_METHODS`.
    """
    flow_of = require_flow_method(method)
    if len(frames) < 2:
        raise ValueError(f"flow needs at least 2 frames, got {len(frames)}")
    grey = [grey8(f) for f in frames]
    pairs = []
    for t in range(len(grey) - 1):
        forward, backward = flow_of(grey[t], grey[t + 1]), flow_of(grey[t + 1], grey[t])
        pairs.append(PairFlow(t, t + 1, forward, consistent_mask(forward, backward)))
    return pairs
