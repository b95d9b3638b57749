"""The input of ``neumat lrm reconstruct`` and ``neumat video2mat``: a video file or a folder of
frames, as a posed video (:class:`neumat.video.frame_source.PosedFrames`).

* **A video file** (``.mp4``, ``.mov``, ``.webm``, ``.mkv``, ``.avi``, ``.gif``): every frame,
  decoded with PyAV (imageio's ``pyav`` plugin; imageio-ffmpeg when PyAV is missing), as 8-bit
  RGB. A video file holds no poses: it is taken to follow the default trajectory
  (:func:`neumat.video.trajectory.video_trajectory` of its frame count, sample side 1).
* **A folder**: ``frames/00000.png …`` (the posed layout of :mod:`neumat.video.folder`) or PNG
  files directly in it, in name order; with ``poses.json`` those poses (one per frame), without
  it the default trajectory as for a video file.

Everything is checked before any model is loaded; problems raise :class:`InputError` naming the
input. :func:`check_for_lrm` adds what the LRM needs (its frame count, square frames of its
size, the default trajectory).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..video.folder import FRAMES_DIR, POSES_FILE
from ..video.frame_render import PoseArrays
from ..video.frame_source import MIN_FRAMES, MIN_SIDE, PosedFrames
from ..video.trajectory import PoseFileError, load_poses, video_trajectory
from .config import LrmModelConfig

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".gif")
"""File name endings read as video files."""
POSE_TOLERANCE = 1e-4
"""Largest difference from the default trajectory (positions in sample sides, field of view in degrees) :func:`check_for_lrm` accepts."""


class InputError(ValueError):
    """A video or frame folder that cannot be used (message names it and the problem)."""


def read_video_file(path: Path) -> np.ndarray:
    """uint8 ``[T, H, W, 3]`` frames of a video file (module docstring)."""
    import imageio.v3 as iio

    try:
        import av  # noqa: F401

        plugin = "pyav"
    except ImportError:
        plugin = "FFMPEG"
    try:
        frames = np.asarray(iio.imread(path, plugin=plugin, index=None))
    except Exception as e:  # decoders raise many types for damaged files
        raise InputError(f"{path}: cannot decode the video ({type(e).__name__}: {e})") from e
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] < 3:
        raise InputError(f"{path}: decoded to an array of shape {frames.shape}, not RGB frames")
    return np.ascontiguousarray(frames[..., :3].astype(np.uint8))


def _folder_frames(folder: Path) -> list[Path]:
    sub = folder / FRAMES_DIR
    pngs = sorted(sub.glob("*.png")) if sub.is_dir() else sorted(folder.glob("*.png"))
    if not pngs:
        raise InputError(f"{folder}: no PNG frames (in {FRAMES_DIR}/ or the folder itself)")
    return pngs


def read_input(path: str | Path) -> PosedFrames:
    """The video or frame folder at ``path`` as a posed video (module docstring), checked: at
    least :data:`~neumat.video.frame_source.MIN_FRAMES` frames of one size, at least
    :data:`~neumat.video.frame_source.MIN_SIDE` pixels a side, a pose per frame.

    Raises:
        InputError: what is missing or inconsistent.
    """
    from ..video.clips import load_rgb8

    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise InputError(f"{path}: not a video file ({', '.join(VIDEO_SUFFIXES)}) or a folder of frames")
        frames, poses_file = read_video_file(path), None
    elif path.is_dir():
        files = _folder_frames(path)
        images = [load_rgb8(p) for p in files]
        sizes = {im.shape for im in images}
        if len(sizes) > 1:
            raise InputError(f"{path}: frames of different sizes {sorted(s[:2] for s in sizes)}")
        frames = np.stack(images)
        poses_file = path / POSES_FILE if (path / POSES_FILE).is_file() else None
    else:
        raise InputError(f"{path}: no such video file or frame folder")
    count, height, width = frames.shape[:3]
    if count < MIN_FRAMES:
        raise InputError(f"{path}: {count} frame(s); at least {MIN_FRAMES} needed (the trajectory video has 81)")
    if min(height, width) < MIN_SIDE:
        raise InputError(f"{path}: frames of {width}x{height} pixels; at least {MIN_SIDE}x{MIN_SIDE} needed")
    if poses_file is None:
        log.info("%s: no %s, assuming the default trajectory of %d frames (sample side 1)", path, POSES_FILE, count)
        poses, sample_size = video_trajectory(count), 1.0
    else:
        try:
            poses, meta = load_poses(poses_file)
            sample_size = float(meta["sample_size"])
        except (PoseFileError, TypeError, ValueError) as e:
            raise InputError(f"{poses_file}: {e}") from e
        if len(poses) != count:
            raise InputError(f"{path}: {count} frames but {len(poses)} poses in {POSES_FILE}")
        if (int(meta["width"]), int(meta["height"])) != (width, height):
            raise InputError(f"{path}: frames of {width}x{height} but {POSES_FILE} says {meta['width']}x{meta['height']}")
    try:
        PoseArrays.from_poses(poses)
    except ValueError as e:
        raise InputError(f"{path}: {e}") from e
    return PosedFrames(path, frames, poses, sample_size)


def check_for_lrm(video: PosedFrames, model: LrmModelConfig) -> None:
    """Raise :class:`InputError` unless ``video`` is what the LRM was trained on: ``video_frames``
    frames, square of ``frame_size`` pixels, posed on the default trajectory of that length."""
    count = len(video.poses)
    width, height = video.size
    if count != model.video_frames:
        few = "too few" if count < model.video_frames else "too many"
        raise InputError(f"{video.path}: {count} frames ({few}); the LRM takes the {model.video_frames}-frame "
                         f"trajectory video (it reads {model.frames} of them)")
    if (width, height) != (model.frame_size, model.frame_size):
        raise InputError(f"{video.path}: frames of {width}x{height} pixels; the LRM was trained on "
                         f"{model.frame_size}x{model.frame_size} (resize the video to that resolution)")
    expected = video_trajectory(count, sample_size=video.sample_size)
    for got, want in zip(video.poses, expected):
        a = np.r_[np.divide(got.camera_position + got.light_position, video.sample_size), got.fov_deg]
        b = np.r_[np.divide(want.camera_position + want.light_position, video.sample_size), want.fov_deg]
        if not np.allclose(a, b, rtol=0, atol=POSE_TOLERANCE):
            raise InputError(f"{video.path}: frame {got.index} is not posed on the default trajectory the LRM was "
                             "trained on (camera, light or field of view differ); use direct fitting (no --weights)")
