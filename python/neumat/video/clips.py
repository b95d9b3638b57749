"""Reading finished clips of a video dataset folder (the layout ``neumat video render-dataset``
writes and ``neumat video generate`` writes too)::

    <root>/<material_id>/<trajectory_name>/
        frames/00000.png ...   8-bit sRGB frames, numbered from 0 without gaps (+ optional .exr)
        poses.json             one camera/light pose per frame (neumat.video.trajectory.load_poses)
        caption.json           {"material_only": str, "filtered": str, "metadata": {...}}
        reference.png          optional: the image an image-to-video model is conditioned on
        maps/                  the source PBR maps (not read here)
        done.json              written last: a folder without it is unfinished and skipped

:func:`scan_clips` checks every finished clip (frame names, sizes, counts, captions, poses)
reading only image headers and JSON, so bad input is refused before any model is loaded.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from .folder import CAPTION_FILE, DONE_FILE, FRAMES_DIR, POSES_FILE, VideoFolderError
from .trajectory import PoseFileError, load_poses

log = logging.getLogger(__name__)

REFERENCE_FILE = "reference.png"
"""Optional conditioning image of a clip (image-to-video); the first frame when absent."""
CAPTION_KEYS = ("material_only", "filtered")
"""The two caption styles of the seed (§3.2): intrinsic attributes only, and a free description
with lighting sentences removed."""
_FRAME_NAME = re.compile(r"(\d{5})\.png")


@dataclass(frozen=True)
class Clip:
    """One finished clip folder, checked by :func:`read_clip`."""

    path: Path
    """The clip folder ``<root>/<material_id>/<trajectory_name>``."""
    frames: tuple[Path, ...]
    """Frame PNGs in order."""
    size: tuple[int, int]
    """Frame (width, height) in pixels."""
    captions: dict[str, str]
    """``{"material_only": ..., "filtered": ...}``."""

    @property
    def reference(self) -> Path:
        """The image an image-to-video model is conditioned on: ``reference.png`` if the clip has
        one, else its first frame."""
        ref = self.path / REFERENCE_FILE
        return ref if ref.is_file() else self.frames[0]


def frame_paths(clip_dir: str | Path) -> tuple[Path, ...]:
    """The frame PNGs of ``clip_dir/frames`` in order.

    Raises:
        VideoFolderError: no frames, a misnamed PNG, or a gap in the numbering.
    """
    folder = Path(clip_dir) / FRAMES_DIR
    if not folder.is_dir():
        raise VideoFolderError(f"{clip_dir}: no {FRAMES_DIR}/ folder")
    pngs = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
    bad = [p.name for p in pngs if not _FRAME_NAME.fullmatch(p.name)]
    if bad:
        raise VideoFolderError(f"{folder}: frame names must be 00000.png, 00001.png, ...; got {bad[:3]}")
    if not pngs:
        raise VideoFolderError(f"{folder}: no PNG frames")
    numbers = [int(p.stem) for p in pngs]
    if numbers != list(range(len(pngs))):
        missing = sorted(set(range(max(numbers) + 1)) - set(numbers))
        raise VideoFolderError(f"{folder}: frames are not numbered 0..{len(pngs) - 1} without gaps "
                           f"(missing {[f'{n:05d}.png' for n in missing[:3]]})")
    return tuple(pngs)


def frame_size(path: Path) -> tuple[int, int]:
    """(width, height) of an 8-bit RGB(A)/grey PNG, from its header.

    Raises:
        VideoFolderError: unreadable or not an 8-bit image.
    """
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.mode not in ("RGB", "RGBA", "L"):
                raise VideoFolderError(f"{path}: frames must be 8-bit RGB, got PIL mode {img.mode}")
            return img.size
    except OSError as e:
        raise VideoFolderError(f"{path}: not a readable image ({e})") from e


def read_clip(clip_dir: str | Path) -> Clip:
    """Check one finished clip folder and describe it.

    Raises:
        VideoFolderError: frames of mixed sizes, missing/misnumbered frames, captions missing or not
            strings, a pose file whose pose count differs from the frame count.
    """
    clip_dir = Path(clip_dir)
    frames = frame_paths(clip_dir)
    sizes = {}
    for p in frames:
        sizes.setdefault(frame_size(p), p.name)
    if len(sizes) > 1:
        raise VideoFolderError(f"{clip_dir}: frames of mixed sizes {', '.join(f'{w}x{h} ({n})' for (w, h), n in sizes.items())}")
    try:
        captions = json.loads((clip_dir / CAPTION_FILE).read_text())
    except (OSError, ValueError) as e:
        raise VideoFolderError(f"{clip_dir}: no readable {CAPTION_FILE} ({e})") from e
    if not isinstance(captions, dict) or not all(isinstance(captions.get(k), str) for k in CAPTION_KEYS):
        raise VideoFolderError(f"{clip_dir / CAPTION_FILE}: needs string captions {list(CAPTION_KEYS)}")
    try:
        poses, meta = load_poses(clip_dir / POSES_FILE)
    except PoseFileError as e:
        raise VideoFolderError(str(e)) from e
    size = next(iter(sizes))
    if len(poses) != len(frames) or size != (meta["width"], meta["height"]):
        raise VideoFolderError(f"{clip_dir}: {POSES_FILE} holds {len(poses)} poses of {meta['width']}x{meta['height']} "
                               f"for {len(frames)} frames of {size[0]}x{size[1]}")
    return Clip(clip_dir, frames, size, {k: captions[k] for k in CAPTION_KEYS})


def find_clip_dirs(root: str | Path, trajectory: str = "video") -> list[Path]:
    """Finished clip folders ``<root>/<material_id>/<trajectory>`` (those holding
    :data:`DONE_FILE`), sorted by path; unfinished ones are counted in a log line. Other
    trajectories (the LRM's ``cross`` set) are not clips of the video model.

    Raises:
        VideoFolderError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise VideoFolderError(f"no dataset folder at {root}")
    candidates = sorted(p for p in root.glob(f"*/{trajectory}") if p.is_dir() and not p.parent.name.startswith("."))
    done = [p for p in candidates if (p / DONE_FILE).is_file()]
    if len(done) < len(candidates):
        log.info("%s: skipping %d unfinished clip folder(s) (no %s)", root, len(candidates) - len(done), DONE_FILE)
    return done


def scan_clips(root: str | Path, resolution: int = 0, frame_multiple: int = 4, side_multiple: int = 16,
               trajectory: str = "video") -> list[Clip]:
    """Every finished clip under ``root``, checked for training as one batchable set.

    Args:
        root: dataset folder (layout in the module docstring).
        resolution: frame side the clips will be resized to (0: their own size).
        frame_multiple: frame counts must be ``frame_multiple * k + 1`` (Wan's VAE: 4).
        side_multiple: trained frame sides must be multiples of this (Wan: 8 x 2 = 16 pixels).
        trajectory: the ``<trajectory_name>`` folders to read (:func:`find_clip_dirs`).

    Raises:
        VideoFolderError: no finished clip, any clip failing :func:`read_clip`, clips of different
            frame counts or sizes, counts or sides the model cannot take.
    """
    clips = [read_clip(p) for p in find_clip_dirs(root, trajectory)]
    if not clips:
        raise VideoFolderError(f"{root}: no finished clip folder (<material>/{trajectory}/{DONE_FILE})")
    shapes = {}
    for c in clips:
        shapes.setdefault((len(c.frames), c.size), c.path)
    if len(shapes) > 1:
        raise VideoFolderError(f"{root}: clips differ in frame count or size: " + ", ".join(
            f"{n} frames of {w}x{h} ({p})" for (n, (w, h)), p in list(shapes.items())[:3]))
    (count, (w, h)), = shapes
    if (count - 1) % frame_multiple:
        raise VideoFolderError(f"{root}: clips have {count} frames; the model needs {frame_multiple}k+1 (e.g. 81)")
    if resolution and w != h:
        raise VideoFolderError(f"{root}: resolution={resolution} resizes square frames only, the clips are {w}x{h}")
    side_w, side_h = (resolution, resolution) if resolution else (w, h)
    if side_w % side_multiple or side_h % side_multiple:
        raise VideoFolderError(f"{root}: frames of {side_w}x{side_h}; the model needs sides that are multiples of "
                           f"{side_multiple} (set resolution)")
    return clips


def load_frames(clip: Clip, resolution: int = 0):
    """The clip's frames as a float32 tensor [3, F, H, W] in [-1, 1] (sRGB-encoded values, as
    Wan's VAE takes them), resized with area averaging to ``resolution`` if given."""
    import numpy as np
    import torch

    video = torch.from_numpy(np.stack([load_rgb8(p) for p in clip.frames]))  # F, H, W, 3 uint8
    video = video.permute(3, 0, 1, 2).float() / 127.5 - 1.0
    if resolution and resolution != video.shape[-1]:
        video = torch.nn.functional.interpolate(video, size=(resolution, resolution), mode="area")
    return video


def load_rgb8(path: Path):
    """An 8-bit image file as a uint8 array [H, W, 3] (alpha dropped, grey expanded)."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))
