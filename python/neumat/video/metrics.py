"""RPC, Residual Parallax Coherence (VideoNeuMat seed §3.3, eq. 1–2): how well a posed material
video's residual parallax follows its camera baseline.

For a perfectly rectified video of a relief, the optical flow left after removing the
reference plane's perspective grows monotonically with the camera baseline. Steps, as the seed
defines them:

1. **rectify**: every frame of the camera-motion phase (``camera_orbit`` poses) is unwarped to
   the sample's canonical UV square by the plane z = 0 seen through its pose (the seed uses a
   reference-plane position AOV; the poses give the same map analytically:
   :meth:`.trajectory.FramePose.project` of each UV texel's plane point, ``cv2.remap``
   bilinear). Rectified pixel (r, c) is world (x, y) = ((c + .5)/N·s − s/2, s/2 − (r + .5)/N·s);
2. **pairs** (t, t + Δ) for every lag Δ in ``lags``;
3. **baseline** ``b = √(Δθ² + (‖Δt‖ / s)²)``: Δθ the relative rotation angle of the two
   cameras (radians), Δt the difference of their positions, s the sample side (scene units);
4. **residual parallax** ``m``: median magnitude (rectified pixels) of the optical flow from
   frame t to frame t + Δ over a robust mask — pixels whose intensity, after a bilateral
   filter, lies strictly between its 10th and 90th percentiles. Flow: Dual TV-L1 (Zach et al.
   2007) from OpenCV contrib, ``cv2.optflow.DualTVL1OpticalFlow_create`` (the seed's flow);
5. ``L_rpc = 1 − max(0, ρ_s(b, m))`` with ρ_s Spearman's rank correlation (average ranks for
   ties). 0 is best (parallax perfectly monotone in baseline), 1 worst.

Frames are intensities of the 8-bit sRGB frames (Rec.709 luma weights on the encoded values).

**Flat samples.** The analytic unwarp is Mitsuba's position AOV of the plane to ~1e-3 px
(``tests/test_video_metrics.py``), and a flat sample with a diffuse-only BSDF keeps a residual
flow of ~0.02 px at every baseline (256² px: ρ 0.05, RPC 0.95). A flat *glossy* sample (the
project's BRDF: GGX lobe, f0 0.04) does not: with the light fixed and the camera orbiting, its
specular shading moves over the sample and Dual TV-L1 reads part of that change as flow (median
0.08 px at the smallest baseline to 0.25 px at the largest, 256² px) that grows with the
baseline. RPC scores only monotonicity, so at 128² px and above it ranks such a flat video
about as coherent as a displaced one (measured, stone tiles, 10 orbit frames: RPC displaced
0.049 / flat 0.086 at 128² px, 0.124 / 0.072 at 256² px; at 48² px the shading flow is under
the noise and flat scores 0.47).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .trajectory import FramePose

FLOW = "Dual TV-L1 (cv2.optflow.DualTVL1OpticalFlow_create, OpenCV contrib)"
"""The optical flow RPC uses, named in every result."""
DEFAULT_LAGS = (1, 2, 4, 8, 16)
"""Temporal lags Δ of the frame pairs (those that fit in the phase are used)."""
PERCENTILES = (10.0, 90.0)
"""Intensity percentiles outside which pixels leave the mask."""
BILATERAL = (5, 0.1, 2.0)
"""cv2.bilateralFilter (diameter px, sigma of intensity in [0, 1] units, sigma of space px)."""


@dataclass
class RpcResult:
    """RPC of one video and what it was computed from."""

    loss: float
    """L_rpc = 1 − max(0, ρ) in [0, 1], lower is better."""
    rho: float
    """Spearman ρ of baselines vs residual parallax (NaN when either is constant)."""
    pairs: list[tuple[int, int]] = field(default_factory=list)
    """(t, t + Δ) frame indices of the video."""
    baselines: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """[P] composite baselines b (radians-equivalent, eq. 1)."""
    parallax: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """[P] median residual flow magnitudes m, rectified pixels."""
    flow: str = FLOW

    def summary(self) -> dict:
        """JSON-ready figures."""
        return {"rpc": self.loss, "spearman_rho": self.rho, "pairs": len(self.pairs), "flow": self.flow,
                "median_parallax_px": float(np.median(self.parallax)) if self.parallax.size else None}


def require_tvl1():
    """OpenCV's Dual TV-L1 factory, or an ImportError that says how to install it."""
    try:
        import cv2
    except ImportError as e:
        raise ImportError("RPC needs OpenCV contrib: pip install -e '.[video]'") from e
    if not hasattr(cv2, "optflow"):
        raise ImportError("RPC needs cv2.optflow (opencv-contrib-python-headless), but the installed "
                          "OpenCV has no contrib modules: pip uninstall opencv-python-headless && "
                          "pip install opencv-contrib-python-headless")
    return cv2


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two [P] samples (average ranks for ties); NaN if either
    sample is constant."""
    ra, rb = _ranks(np.asarray(a, float)), _ranks(np.asarray(b, float))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def pose_baseline(a: FramePose, b: FramePose, sample_size: float) -> float:
    """Eq. 1: √(Δθ² + (‖Δt‖/s)²), Δθ the angle of the relative rotation (radians)."""
    rel = a.rotation().T @ b.rotation()
    angle = float(np.arccos(np.clip((np.trace(rel) - 1.0) / 2.0, -1.0, 1.0)))
    shift = float(np.linalg.norm(np.subtract(a.camera_position, b.camera_position)))
    return float(np.hypot(angle, shift / sample_size))


def rectify(frame: np.ndarray, pose: FramePose, sample_size: float, size: int) -> np.ndarray:
    """float32 [size, size] intensity of ``frame`` ([H, W, 3] uint8 sRGB) unwarped to the UV
    square (module docstring); texels whose plane point is outside the image are NaN."""
    cv2 = require_tvl1()
    h, w = frame.shape[:2]
    t = (np.arange(size) + 0.5) / size * sample_size - sample_size / 2
    x, y = np.meshgrid(t, -t)
    px = pose.project(np.stack([x, y, np.zeros_like(x)], -1), w, h) - 0.5  # cv2: pixel centres at integers
    gray = (frame[..., :3].astype(np.float32) / 255.0) @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    map_x, map_y = px[..., 0].astype(np.float32), px[..., 1].astype(np.float32)
    out = cv2.remap(gray, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    return np.where(inside, out, np.nan).astype(np.float32)


def robust_mask(image: np.ndarray) -> np.ndarray:
    """[N, N] bool: valid pixels whose bilateral-filtered intensity lies strictly between the
    :data:`PERCENTILES` of the valid ones."""
    cv2 = require_tvl1()
    valid = np.isfinite(image)
    d, sigma_i, sigma_s = BILATERAL
    smooth = cv2.bilateralFilter(np.where(valid, image, 0.0).astype(np.float32), d, sigma_i, sigma_s)
    lo, hi = np.percentile(smooth[valid], PERCENTILES)
    return valid & (smooth > lo) & (smooth < hi)


def rpc(frames: np.ndarray, poses: list[FramePose], sample_size: float, lags=DEFAULT_LAGS,
        size: int | None = None) -> RpcResult:
    """RPC of a posed video (module docstring).

    Args:
        frames: uint8 [T, H, W, 3] sRGB frames, frame i seen from ``poses[i]``.
        poses: the T poses; the ``camera_orbit`` ones are used (at least 3).
        sample_size: s, side of the sample square, scene units.
        lags: temporal lags Δ (frames of the camera phase).
        size: side of the rectified images, pixels (default min(H, W)).

    Raises:
        ValueError: frame and pose counts differ, frames not uint8 [T, H, W, 3], fewer than 3
            camera-orbit frames, or no lag that fits.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] < 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    if len(frames) != len(poses):
        raise ValueError(f"{len(frames)} frames but {len(poses)} poses")
    orbit = [i for i, p in enumerate(poses) if p.phase == "camera_orbit"]
    if len(orbit) < 3:
        raise ValueError(f"RPC needs >= 3 camera_orbit frames (the camera-motion phase), got {len(orbit)}")
    lags = sorted({int(d) for d in lags if 0 < int(d) < len(orbit)})
    if not lags:
        raise ValueError(f"no lag fits in a camera phase of {len(orbit)} frames")
    cv2 = require_tvl1()
    n = size or min(frames.shape[1:3])
    rect = {i: rectify(frames[i], poses[i], sample_size, n) for i in orbit}
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    pairs, base, parallax = [], [], []
    for lag in lags:
        for k in range(len(orbit) - lag):
            i, j = orbit[k], orbit[k + lag]
            a, b = rect[i], rect[j]
            both = np.isfinite(a) & np.isfinite(b)
            flow = tvl1.calc(np.where(both, a, 0.0).astype(np.float32), np.where(both, b, 0.0).astype(np.float32), None)
            mask = robust_mask(np.where(both, a, np.nan)) & both
            if not mask.any():
                continue
            pairs.append((i, j))
            base.append(pose_baseline(poses[i], poses[j], sample_size))
            parallax.append(float(np.median(np.hypot(flow[..., 0], flow[..., 1])[mask])))
    base, parallax = np.array(base), np.array(parallax)
    rho = spearman(base, parallax) if len(pairs) >= 2 else float("nan")
    loss = 1.0 - max(0.0, rho) if np.isfinite(rho) else 1.0
    return RpcResult(loss=float(loss), rho=rho, pairs=pairs, baselines=base, parallax=parallax)


def rpc_folder(video: str | Path, lags=DEFAULT_LAGS, size: int | None = None) -> RpcResult:
    """:func:`rpc` of a posed video folder (:func:`.folder.read_video`)."""
    from .folder import read_video

    frames, poses, meta = read_video(video)
    return rpc(frames, poses, float(meta["sample_size"]), lags, size)


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=float)
    for value in np.unique(x):  # ties share their average rank
        tie = x == value
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return ranks
