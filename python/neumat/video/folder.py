"""The on-disk layout of one posed video — what dataset rendering writes and what finetuning,
generation and the RPC metric read:

```
<video>/frames/00000.png     8-bit sRGB frames, [H, W, 3], frame i = pose i
<video>/frames/00000.exr     linear Rec.709 float32 frames (OpenEXR, ZIP), when rendered
<video>/poses.json           neumat.video.poses/1 (:func:`.trajectory.save_poses`)
<video>/caption.json         {"material_only": str, "filtered": str, "metadata": {...}}
<video>/maps/                the source material maps as PNG (dataset videos)
<video>/done.json            written last: a folder without it is unfinished
```

A dataset is ``<out>/<material_id>/<trajectory_name>/`` of such folders. Every file is written
atomically (temporary file + rename, :func:`neumat.fileio.atomic_write_bytes`).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..fidelity.materials import linear_to_srgb
from ..fileio import atomic_write_bytes
from .trajectory import FramePose, PoseFileError, load_poses

FRAMES_DIR = "frames"
POSES_FILE = "poses.json"
CAPTION_FILE = "caption.json"
MAPS_DIR = "maps"
DONE_FILE = "done.json"


class VideoFolderError(ValueError):
    """A posed video folder that is incomplete or inconsistent (message names what)."""


def frame_path(video: str | Path, index: int, ext: str = "png") -> Path:
    """``<video>/frames/<index:05d>.<ext>``."""
    return Path(video) / FRAMES_DIR / f"{index:05d}.{ext}"


def srgb8(linear: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] sRGB of linear Rec.709 values (clipped to [0, 1], rounded)."""
    return np.floor(linear_to_srgb(linear) * 255.0 + 0.5).astype(np.uint8)


def write_png(path: str | Path, pixels: np.ndarray) -> Path:
    """Write uint8 [H, W] or [H, W, 3] (or uint16 grey) ``pixels`` as PNG, atomically."""
    import imageio.v3 as iio

    return atomic_write_bytes(path, iio.imwrite("<bytes>", np.ascontiguousarray(pixels), extension=".png"))


def write_exr(path: str | Path, linear: np.ndarray) -> Path:
    """Write float32 [H, W, 3] linear RGB as a ZIP-compressed OpenEXR file, atomically."""
    try:
        import OpenEXR
    except ImportError as e:
        raise ImportError("EXR frames need OpenEXR: pip install -e '.[video]'") from e
    rgb = np.ascontiguousarray(linear, dtype=np.float32)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    fd, tmp = tempfile.mkstemp(suffix=".exr")
    os.close(fd)
    try:
        with OpenEXR.File(header, {"RGB": rgb}) as f:
            f.write(tmp)
        data = Path(tmp).read_bytes()
    finally:
        Path(tmp).unlink(missing_ok=True)
    return atomic_write_bytes(path, data)


def read_exr(path: str | Path) -> np.ndarray:
    """float32 [H, W, 3] linear RGB of an EXR frame of :func:`write_exr`."""
    import OpenEXR

    with OpenEXR.File(str(path)) as f:
        return np.asarray(f.channels()["RGB"].pixels, dtype=np.float32)


def write_json(path: str | Path, doc: dict) -> Path:
    """``doc`` as indented, key-sorted JSON, atomically."""
    return atomic_write_bytes(path, json.dumps(doc, indent=1, sort_keys=True).encode())


def is_done(video: str | Path) -> bool:
    """Whether ``video`` holds its completion marker :data:`DONE_FILE`."""
    return (Path(video) / DONE_FILE).is_file()


def read_video(video: str | Path) -> tuple[np.ndarray, list[FramePose], dict]:
    """The frames of a posed video folder with their poses.

    Returns:
        (uint8 [T, H, W, 3] sRGB frames from ``frames/*.png`` in index order, the T poses,
        the pose file's metadata).

    Raises:
        VideoFolderError: no pose file or frames, a frame count that differs from the pose
            count, frame names that are not 00000.png … in order, frames of mixed sizes or of
            another size than the pose file's ``width`` × ``height``.
    """
    import imageio.v3 as iio

    video = Path(video)
    if not (video / POSES_FILE).is_file():
        raise VideoFolderError(f"{video}: no {POSES_FILE} (is this a posed video folder?)")
    try:
        poses, meta = load_poses(video / POSES_FILE)
    except PoseFileError as e:
        raise VideoFolderError(str(e)) from e
    pngs = sorted((video / FRAMES_DIR).glob("*.png"))
    if len(pngs) != len(poses):
        raise VideoFolderError(f"{video}: {len(pngs)} PNG frames in {FRAMES_DIR}/ but {len(poses)} poses")
    expected = [frame_path(video, i).name for i in range(len(poses))]
    if [p.name for p in pngs] != expected:
        raise VideoFolderError(f"{video}: frames must be named {expected[0]} … {expected[-1]}")
    frames = []
    for p in pngs:
        img = iio.imread(p)
        img = np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img[..., :3]
        if img.dtype != np.uint8 or img.shape != (meta["height"], meta["width"], 3):
            raise VideoFolderError(f"{p}: {img.shape} {img.dtype}, but {POSES_FILE} says "
                                   f"{meta['height']}x{meta['width']} RGB uint8 frames")
        frames.append(img)
    return np.stack(frames), poses, meta
