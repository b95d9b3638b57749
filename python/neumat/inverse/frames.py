"""Reading a capture: a folder of images, a video file, or a posed video folder (known poses).

* **posed video folder** (``frames/00000.png`` …, ``poses.json``: :mod:`neumat.video.folder`,
  what ``neumat video render-dataset`` writes) — the frames with their camera poses;
* **folder of images** (``.png .jpg .jpeg .tif .tiff .bmp .webp``, natural name order: ``f2``
  before ``f10``) — 8- or 16-bit, grey or RGB(A) (alpha dropped);
* **video file** — decoded with OpenCV (any container / codec its FFmpeg reads).

A folder of images or a video may come with a separate pose file (``poses``: the
``neumat.video.poses/1`` format of :func:`neumat.video.trajectory.save_poses`, one pose per
image file in name order or per decoded video frame, its ``width`` × ``height`` of the frames'
aspect ratio); the capture is then registered by those poses, not by features.

At most ``max_frames`` frames are kept, evenly spaced (first and last included). Frames are
float32 sRGB-encoded RGB in [0, 1] (as cameras store them; MVInverse's input). Every problem is
a :class:`FrameError` that names the file or frame: nothing readable, one frame only, a frame
that does not decode, frames of different sizes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..video.trajectory import FramePose

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
"""Image files a capture folder may hold."""
DEFAULT_MAX_FRAMES = 24
"""Frames kept by default (two forward passes of :data:`~.predictor.MAX_VIEWS`)."""


class FrameError(ValueError):
    """A capture that cannot be used; the message names the file or frame and the problem."""


@dataclass
class Capture:
    """The frames of one capture (module docstring)."""

    frames: np.ndarray
    """``[V, H, W, 3]`` float32 sRGB in [0, 1], row 0 at the top."""
    names: list[str]
    """One name per frame (file name, or ``video.mp4#frame 12``) for messages and records."""
    poses: list[FramePose] | None = None
    """Camera poses (posed video folders), else None: registration by features."""
    sample_size: float = 1.0
    """Side of the sample square in the poses' scene units."""


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def evenly(count: int, keep: int) -> list[int]:
    """``min(count, keep)`` indices in ``range(count)``, evenly spaced, first and last included."""
    if count <= keep:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, keep)})


def read_capture(path: str | Path, max_frames: int = DEFAULT_MAX_FRAMES, poses: str | Path | None = None) -> Capture:
    """Read a capture (module docstring); ``poses``: a pose file for a folder of images or a video.

    Raises:
        FrameError: a path that does not exist, a single image, a folder without images, an
            image or video that does not decode, fewer than 2 frames, frames of different sizes
            (naming the first that differs from frame 0); a pose file that does not read, whose
            pose count differs from the frame count or whose image size has another aspect ratio
            than the frames, or one given for a posed video folder (it has its own).
    """
    path = Path(path)
    if max_frames < 2:
        raise FrameError(f"max_frames must be >= 2, got {max_frames}")
    if not path.exists():
        raise FrameError(f"{path}: no such file or folder (give a folder of frames, a video file or a posed video "
                         "folder)")
    if path.is_dir() and (path / "poses.json").is_file():
        if poses is not None:
            raise FrameError(f"{path} is a posed video folder with its own poses.json; drop --poses {poses}")
        capture = _posed_folder(path, max_frames)
    elif path.is_dir():
        capture, total, keep = _image_folder(path, max_frames)
    elif path.suffix.lower() in IMAGE_EXTENSIONS:
        raise FrameError(f"{path}: a single image; MVInverse needs at least 2 views of the sample (a folder of "
                         "frames or a video)")
    else:
        capture, total, keep = _video(path, max_frames)
    _check_sizes(capture)
    if poses is not None:
        _attach_poses(capture, Path(poses), total, keep)
    return capture


def _attach_poses(capture: Capture, path: Path, total: int, keep: list[int]) -> None:
    """Give ``capture`` (frames ``keep`` of ``total``) the poses of pose file ``path``, checked."""
    from ..video.trajectory import PoseFileError, load_poses

    try:
        poses, meta = load_poses(path)
    except PoseFileError as e:
        raise FrameError(f"--poses: {e}") from None
    if len(poses) != total:
        raise FrameError(f"--poses {path}: {len(poses)} poses for {total} frames (one pose per image file in name "
                         "order, or per decoded video frame)")
    h, w = capture.frames.shape[1:3]
    pw, ph = meta["width"], meta["height"]
    if not (isinstance(pw, int) and isinstance(ph, int) and pw > 0 and ph > 0) or abs(w / h - pw / ph) > 0.01 * w / h:
        raise FrameError(f"--poses {path}: its cameras are {pw}x{ph} pixels but the frames are {w}x{h} (another "
                         "aspect ratio): the poses belong to other frames")
    size = meta["sample_size"]
    if not (isinstance(size, (int, float)) and size > 0):
        raise FrameError(f"--poses {path}: sample_size must be > 0 scene units, got {size!r}")
    capture.poses, capture.sample_size = [poses[i] for i in keep], float(size)


def _posed_folder(path: Path, max_frames: int) -> Capture:
    from ..video.folder import VideoFolderError, read_video

    try:
        frames, poses, meta = read_video(path)
    except VideoFolderError as e:
        raise FrameError(str(e)) from None
    keep = evenly(len(poses), max_frames)
    if len(keep) < 2:
        raise FrameError(f"{path}: {len(keep)} frame; MVInverse needs at least 2 views")
    names = [f"frames/{i:05d}.png" for i in keep]
    return Capture(frames[keep].astype(np.float32) / 255.0, names, [poses[i] for i in keep],
                   float(meta["sample_size"]))


def _image_folder(path: Path, max_frames: int) -> tuple[Capture, int, list[int]]:
    """(the capture, image files in the folder, the indices kept)."""
    from ..data.errors import PbrLoadError
    from ..data.pbr_io import read_image

    files = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
                   key=_natural_key)
    if len(files) < 2:
        raise FrameError(f"{path}: {len(files)} image file(s) ({', '.join(IMAGE_EXTENSIONS)}); MVInverse needs at "
                         "least 2 views of the sample")
    total, keep = len(files), evenly(len(files), max_frames)
    files = [files[i] for i in keep]
    frames = []
    for i, f in enumerate(files):
        try:
            img = read_image(f)
        except PbrLoadError as e:
            raise FrameError(f"frame {i} ({f.name!r}): {e}") from None
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=-1)
        elif img.shape[-1] in (2, 4):
            img = img[..., :-1]
        if img.shape[-1] == 1:
            img = np.repeat(img, 3, axis=-1)
        frames.append(np.clip(img[..., :3], 0.0, 1.0).astype(np.float32))
    names = [f.name for f in files]
    _check_sizes(Capture(frames, names))  # before stacking: name the odd frame
    return Capture(np.stack(frames), names), total, keep


def _video(path: Path, max_frames: int) -> tuple[Capture, int, list[int]]:
    """(the capture, frames decoded, the indices kept)."""
    import cv2

    video = cv2.VideoCapture(str(path))
    if not video.isOpened():
        raise FrameError(f"{path}: cannot be decoded as a video (OpenCV/FFmpeg); give a video file or a folder of "
                         "frames")
    count = int(video.get(cv2.CAP_PROP_FRAME_COUNT))  # a container's claim; may be 0 or wrong
    wanted = set(evenly(count, max_frames)) if count >= 2 else None
    frames: dict[int, np.ndarray] = {}
    index = 0
    try:
        while True:
            ok, bgr = video.read()
            if not ok:
                break
            if wanted is None or index in wanted:
                frames[index] = bgr
            index += 1
    finally:
        video.release()
    if len(frames) < 2:
        raise FrameError(f"{path}: {index} frame(s) decoded; MVInverse needs at least 2 views of the sample")
    keep = [sorted(frames)[i] for i in evenly(len(frames), max_frames)]
    rgb = [cv2.cvtColor(frames[i], cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0 for i in keep]
    names = [f"{path.name}#frame {i}" for i in keep]
    _check_sizes(Capture(rgb, names))
    return Capture(np.stack(rgb), names), index, keep


def _check_sizes(capture: Capture) -> None:
    first = capture.frames[0].shape[:2]
    for i, f in enumerate(capture.frames):
        if f.shape[:2] != first:
            raise FrameError(f"frame {i} ({capture.names[i]!r}) is {f.shape[1]}x{f.shape[0]} pixels but frame 0 "
                             f"({capture.names[0]!r}) is {first[1]}x{first[0]}: all frames must share one size")
