"""Registering a capture's frames to the sample's texture plane: per frame, the homography from
texture texels to frame pixels and the rotation from the texture frame to the camera frame.

Texture space: an R×R texel grid, texel (row r, column c) at uv = ((c + .5)/R, (r + .5)/R),
rows along v, the tangent frame right-handed (+x = u, +y = v, +z out of the surface) — the maps'
convention (:mod:`neumat.data.pbr`). Pixel coordinates are OpenCV's (a pixel's centre at integer
(x = column, y = row), row 0 at the top), so :func:`cv2.warpPerspective` with
``WARP_INVERSE_MAP`` and a :class:`Registration` homography resamples a frame into texture space.
Camera frames have OpenCV axes (+x right, +y down, +z forward), as MVInverse's normals.

Two ways:

* **known poses** (:func:`pose_registration`): the texture is the sample's tile [0, 1]² on the
  plane z = 0 (:mod:`neumat.video.trajectory`'s world: uv = p/s + 1/2), projected exactly;
* **features** (:func:`feature_registration`): frame 0 defines the texture — its centred
  square, seen as if from straight above with the image's right = +u and the image's *up* = +v
  (so the map is frame 0's square flipped vertically) — and every other frame is matched to
  frame 0 (SIFT, or ORB where SIFT is missing; Lowe's ratio test; RANSAC homography). The
  rotation of frame f follows from its homography with a pinhole of horizontal field of view
  ``fov_deg`` (the plane-induced homography ``K⁻¹H ∝ [r1 r2 t]``, orthonormalized), so normals
  are only as right as frame 0 is fronto-parallel and the field of view is guessed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..video.trajectory import FramePose
from .views import camera_from_world

MIN_INLIERS = 12
"""Fewest RANSAC inliers for a frame to count as registered."""
RATIO = 0.75
"""Lowe's ratio test threshold of feature matches."""
RANSAC_PX = 3.0
"""RANSAC reprojection threshold, pixels of the (working-size) frames."""
DEFAULT_FOV_DEG = 60.0
"""Horizontal field of view assumed by :func:`feature_registration` (phone main cameras: 60-70°)."""


class RegistrationError(ValueError):
    """A frame that cannot be registered to the texture plane; the message names it."""


@dataclass
class Registration:
    """Where every frame sees the texture (module docstring)."""

    resolution: int
    """R, texels per side of the texture grid."""
    homographies: list[np.ndarray]
    """Per frame, [3, 3] float64: homogeneous texel (x = column, y = row) -> frame pixel."""
    rotations: list[np.ndarray]
    """Per frame, [3, 3] float64: texture-frame vectors -> the frame's camera frame."""
    method: str
    """``"poses"`` or ``"features"``."""
    inliers: list[int] = field(default_factory=list)
    """Feature registration: RANSAC inliers per frame (frame 0: -1)."""

    def to_texture(self, frame: int, normals: np.ndarray) -> np.ndarray:
        """Camera-frame vectors ``[..., 3]`` of ``frame`` in the texture frame."""
        return normals @ self.rotations[frame]


def _frame_name(i: int, names: Sequence[str] | None) -> str:
    return f"frame {i}" + (f" ({names[i]!r})" if names is not None else "")


def pose_registration(poses: Sequence[FramePose], width: int, height: int, resolution: int,
                      sample_size: float = 1.0, names: Sequence[str] | None = None) -> Registration:
    """Homographies of the tile [0, 1]² for frames of ``width`` × ``height`` pixels seen from
    ``poses`` (frames resized from the poses' size keep them: only the pixel count matters).

    Raises:
        RegistrationError: a frame whose camera does not see the tile (it is behind the camera).
    """
    r = resolution
    corners = np.array([[0.0, 0.0], [r, 0.0], [r, r], [0.0, r]])  # texel-edge corners (x = col, y = row)
    world = np.concatenate([(corners / r - 0.5) * sample_size, np.zeros((4, 1))], axis=1)
    src = (corners - 0.5).astype(np.float32)  # texel centres sit at integers
    homographies, rotations = [], []
    for i, pose in enumerate(poses):
        pix = pose.project(world, width, height)
        if not np.all(np.isfinite(pix)):
            raise RegistrationError(f"{_frame_name(i, names)}: the sample is behind its camera (pose {pose.index})")
        homographies.append(_perspective(src, (pix - 0.5).astype(np.float32)))
        rotations.append(camera_from_world(pose))
    return Registration(r, homographies, rotations, "poses")


def feature_registration(frames: Sequence[np.ndarray], resolution: int | None = None, fov_deg: float = DEFAULT_FOV_DEG,
                         names: Sequence[str] | None = None) -> Registration:
    """Register ``frames`` (uint8 ``[H, W, 3]``, one size) to frame 0 (module docstring).

    Args:
        resolution: R (default: the side of frame 0's centred square, pixels).
        fov_deg: horizontal field of view of the frames, degrees (for the rotations).
    Raises:
        RegistrationError: frame 0 or another frame with too few features or matches, a RANSAC
            fit with fewer than :data:`MIN_INLIERS` inliers, or a homography that flips or
            collapses the texture (named frame).
    """
    import cv2

    h, w = frames[0].shape[:2]
    side = min(h, w)
    r = int(resolution or side)
    x0, y0 = (w - side) / 2.0, (h - side) / 2.0
    k = side / r
    # texel (x, y) -> frame 0 pixel: x' = x0 + (x + .5)·k - .5, y' = y0 + side - (y + .5)·k - .5 (flipped)
    base = np.array([[k, 0.0, x0 + 0.5 * k - 0.5], [0.0, -k, y0 + side - 0.5 * k - 0.5], [0.0, 0.0, 1.0]])
    detector, norm = _detector(cv2)
    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    kp0, des0 = detector.detectAndCompute(grey[0], None)
    if des0 is None or len(kp0) < MIN_INLIERS:
        raise RegistrationError(f"{_frame_name(0, names)}: {0 if des0 is None else len(kp0)} features found; the "
                                f"reference frame needs texture (at least {MIN_INLIERS}) to register the others")
    matcher = cv2.BFMatcher(norm)
    focal = 0.5 * w / math.tan(math.radians(fov_deg) / 2.0)
    intrinsics = np.array([[focal, 0.0, (w - 1) / 2.0], [0.0, focal, (h - 1) / 2.0], [0.0, 0.0, 1.0]])
    homographies, inliers = [base], [-1]
    for i in range(1, len(frames)):
        kp, des = detector.detectAndCompute(grey[i], None)
        pairs = [] if des is None or len(kp) < 2 else matcher.knnMatch(des0, des, k=2)
        good = [m for m, *rest in (p for p in pairs if p) if not rest or m.distance < RATIO * rest[0].distance]
        if len(good) < MIN_INLIERS:
            raise RegistrationError(f"{_frame_name(i, names)}: {len(good)} feature matches with frame 0 (need "
                                    f"{MIN_INLIERS}); does it show the same sample, in focus and overlapping frame 0?")
        src = np.float32([kp0[m.queryIdx].pt for m in good])
        dst = np.float32([kp[m.trainIdx].pt for m in good])
        to_frame, mask = cv2.findHomography(src, dst, cv2.RANSAC, RANSAC_PX)
        count = int(mask.sum()) if mask is not None else 0
        if to_frame is None or count < MIN_INLIERS:
            raise RegistrationError(f"{_frame_name(i, names)}: {count} of {len(good)} matches agree on a homography "
                                    f"to frame 0 (need {MIN_INLIERS}); is the sample flat and the frame sharp?")
        hom = to_frame @ base
        _check_homography(hom, r, w, h, _frame_name(i, names))
        homographies.append(hom)
        inliers.append(count)
    rotations = [_rotation(np.linalg.solve(intrinsics, hom)) for hom in homographies]
    return Registration(r, homographies, rotations, "features", inliers)


def _detector(cv2):
    """SIFT (float descriptors, L2) where OpenCV has it, else ORB (binary, Hamming)."""
    if hasattr(cv2, "SIFT_create"):
        return cv2.SIFT_create(nfeatures=4000), cv2.NORM_L2
    return cv2.ORB_create(nfeatures=4000), cv2.NORM_HAMMING


def _perspective(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.getPerspectiveTransform(src, dst).astype(np.float64)


def _check_homography(hom: np.ndarray, r: int, w: int, h: int, name: str) -> None:
    """Refuse a homography that folds the texture (orientation flip or a corner at infinity) or
    maps it entirely outside the frame."""
    corners = np.array([[0, 0, 1], [r - 1, 0, 1], [r - 1, r - 1, 1], [0, r - 1, 1]], float) @ hom.T
    if np.any(corners[:, 2] <= 1e-9 * np.abs(corners).max()):
        raise RegistrationError(f"{name}: its homography to frame 0 puts part of the texture at infinity")
    p = corners[:, :2] / corners[:, 2:]
    edges = np.roll(p, -1, axis=0) - p
    turns = edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    if not (np.all(turns > 0) or np.all(turns < 0)):
        raise RegistrationError(f"{name}: its homography to frame 0 folds the texture (not a convex view of it)")
    if p[:, 0].max() < 0 or p[:, 0].min() > w or p[:, 1].max() < 0 or p[:, 1].min() > h:
        raise RegistrationError(f"{name}: registered, but it does not overlap frame 0's view of the sample")


def _rotation(m: np.ndarray) -> np.ndarray:
    """Texture -> camera rotation from ``K⁻¹H ∝ [r1 r2 t]`` (sign: the plane in front, t_z > 0),
    the nearest rotation to ``[r1 r2 r1×r2]`` (SVD)."""
    m = m / np.linalg.norm(m[:, 0]) * (1.0 if m[2, 2] > 0 else -1.0)
    r1, r2 = m[:, 0], m[:, 1] / np.linalg.norm(m[:, 1])
    u, _, vt = np.linalg.svd(np.stack([r1, r2, np.cross(r1, r2)], axis=1))
    rot = u @ vt
    return rot if np.linalg.det(rot) > 0 else u @ np.diag([1.0, 1.0, -1.0]) @ vt
