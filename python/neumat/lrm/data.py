"""The LRM's training materials: posed video folders of a data set, in the layout
``neumat video render-dataset`` writes (and :mod:`.synthetic` imitates)::

    <root>/<material_id>/video/    the two-phase trajectory video (81 frames): the LRM's input
                                   (17 of them) and half of its rendering loss
    <root>/<material_id>/cross/    the cross-joined set (81 frames, poses unknown to the LRM):
                                   the other half of the loss

Each folder holds ``frames/00000.png …`` (8-bit sRGB), ``poses.json`` and ``done.json`` (a folder
without it is unfinished and skipped). :func:`scan_dataset` checks every material from the pose
files and the frame names only (no image is decoded) and fails with one message naming what
does not fit; frames are read when a step needs them.

Loss frames are numbered ``0 … V-1`` (the video's) then ``V … V+C-1`` (the cross set's).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..video.clips import find_clip_dirs, load_rgb8
from ..video.folder import POSES_FILE, VideoFolderError, frame_path, is_done
from ..video.trajectory import FramePose, PoseFileError, load_poses
from .config import LrmModelConfig


class LrmDataError(ValueError):
    """A data set folder the LRM cannot train on (message names the folder and the problem)."""


@dataclass
class PosedFolder:
    """A checked posed folder; frames are read on demand."""

    path: Path
    """The folder."""
    poses: list[FramePose]
    """Pose of frame i."""
    size: int
    """Frame side, pixels (square frames)."""
    sample_size: float
    """Side of the sample square, scene units."""

    def frame(self, index: int) -> np.ndarray:
        """uint8 ``[size, size, 3]`` sRGB frame ``index``."""
        image = load_rgb8(frame_path(self.path, index))
        if image.shape != (self.size, self.size, 3):
            raise LrmDataError(f"{frame_path(self.path, index)}: {image.shape[1]}x{image.shape[0]} pixels, but "
                               f"{POSES_FILE} says {self.size}x{self.size}")
        return image


def read_posed_folder(folder: str | Path) -> PosedFolder:
    """Check a finished posed folder from its pose file and frame names.

    Raises:
        LrmDataError: unfinished, unreadable poses, non-square frames, frames missing or extra.
    """
    folder = Path(folder)
    if not is_done(folder):
        raise LrmDataError(f"{folder}: unfinished (no done.json)")
    try:
        poses, meta = load_poses(folder / POSES_FILE)
    except PoseFileError as e:
        raise LrmDataError(str(e)) from e
    width, height = int(meta["width"]), int(meta["height"])
    if width != height:
        raise LrmDataError(f"{folder}: frames of {width}x{height}; the LRM takes square frames")
    names = sorted(p.name for p in (folder / "frames").glob("*.png"))
    if names != [frame_path(folder, i).name for i in range(len(poses))]:
        raise LrmDataError(f"{folder}: {len(names)} PNG frames for {len(poses)} poses (expected 00000.png … "
                           f"{len(poses) - 1:05d}.png)")
    return PosedFolder(folder, poses, width, float(meta["sample_size"]))


@dataclass
class LrmMaterial:
    """One training material: its video and cross-joined folders."""

    name: str
    """``<material_id>``."""
    video: PosedFolder
    """The trajectory video (input frames and loss frames 0 … V-1)."""
    cross: PosedFolder
    """The cross-joined set (loss frames V …)."""

    @property
    def loss_frames(self) -> int:
        """Frames of the rendering loss (V + C)."""
        return len(self.video.poses) + len(self.cross.poses)

    def loss_frame(self, k: int) -> tuple[FramePose, np.ndarray]:
        """Pose and uint8 sRGB frame of loss frame ``k`` (module docstring)."""
        n = len(self.video.poses)
        folder, i = (self.video, k) if k < n else (self.cross, k - n)
        return folder.poses[i], folder.frame(i)

    def input_frames(self, indices: list[int]) -> np.ndarray:
        """uint8 ``[len(indices), S, S, 3]``: the video's frames ``indices``."""
        return np.stack([self.video.frame(i) for i in indices])


def scan_dataset(root: str | Path, model: LrmModelConfig) -> list[LrmMaterial]:
    """Every finished material under ``root`` (module docstring), sorted by name, checked against
    the network: ``video_frames`` video frames, at least one cross frame, square frames of
    ``frame_size`` pixels, the same sample size in both folders.

    Raises:
        LrmDataError: no finished material, or any that does not fit (all named, up to 5).
    """
    root = Path(root)
    try:
        videos = find_clip_dirs(root, "video")
    except VideoFolderError as e:
        raise LrmDataError(str(e)) from e
    if not videos:
        raise LrmDataError(f"{root}: no finished <material>/video/ folder (render one with `neumat video "
                           "render-dataset`)")
    materials, problems = [], []
    for video in videos:
        try:
            materials.append(_material(video, model))
        except LrmDataError as e:
            problems.append(str(e))
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise LrmDataError(f"{root}: {len(problems)} material(s) the LRM cannot train on: " + "; ".join(problems[:5])
                           + more)
    return materials


def _material(video_dir: Path, model: LrmModelConfig) -> LrmMaterial:
    video = read_posed_folder(video_dir)
    cross_dir = video_dir.parent / "cross"
    if not cross_dir.is_dir():
        raise LrmDataError(f"{video_dir.parent}: no cross/ folder (the cross-joined set of the rendering loss)")
    cross = read_posed_folder(cross_dir)
    if len(video.poses) != model.video_frames:
        raise LrmDataError(f"{video_dir}: {len(video.poses)} frames, the network takes {model.video_frames}-frame videos")
    for folder in (video, cross):
        if folder.size != model.frame_size:
            raise LrmDataError(f"{folder.path}: frames of {folder.size}² pixels, the network takes "
                               f"{model.frame_size}² (model.frame_size)")
    if video.sample_size != cross.sample_size:
        raise LrmDataError(f"{video_dir.parent}: sample_size {video.sample_size} (video) vs {cross.sample_size} (cross)")
    return LrmMaterial(video_dir.parent.name, video, cross)
