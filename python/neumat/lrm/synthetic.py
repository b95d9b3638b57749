"""A small synthetic LRM data set rendered by the torch frame renderer itself (no Mitsuba): tests,
smoke runs and the held-out materials of ``neumat lrm eval``.

Materials: the shipped ``stone_tiles_neumip`` textures (64² texels) turned by k·90° and, for
k >= 4, transposed (8 distinct materials), average-pooled to ``texels``², optionally shifted
circularly by whole texels (more training materials of the same look), and read by the shipped
universal decoders (INT8, the bundle's ``value_scale``). Each is rendered with
:func:`neumat.video.frame_render.render_bundle_frame` (the dataset's disk light) along the
two-phase video (:func:`~neumat.video.trajectory.video_trajectory`) and the cross-joined set
(:func:`~neumat.video.trajectory.cross_trajectory`) and written as 8-bit sRGB posed folders in
the layout ``neumat video render-dataset`` writes (``<root>/<name>/video``, ``<root>/<name>/cross``,
each with ``poses.json`` and ``done.json``), which :func:`.data.scan_dataset` reads.

The frame renderer is exactly the LRM's rendering loss, so a perfect LRM reaches the frames'
8-bit rounding here; Mitsuba renders (true relief, soft shadows) are the real training set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..assets import ASSETS
from ..bundle import Bundle, load_bundle
from ..video.folder import DONE_FILE, POSES_FILE, frame_path, srgb8, write_json, write_png
from ..video.frame_render import render_bundle_frame
from ..video.trajectory import FramePose, cross_trajectory, save_poses, video_trajectory

STONE = ASSETS / "materials" / "stone_tiles_neumip.nmat"
"""The shipped NeuMIP material the variants are made of."""
DECODERS = ASSETS / "neumip" / "universal_mlps.safetensors"
"""The shipped universal decoders."""
VARIANTS = 8
"""Distinct materials :func:`stone_variants` can make (4 turns x transposed or not)."""


def stone_variants(count: int, texels: int = 16, shifts: Sequence[tuple[int, int]] = ((0, 0),)) -> dict[str, Bundle]:
    """NeuMIP bundles of the first ``count`` (<= :data:`VARIANTS`) variants (module docstring) of
    ``texels``² texels (a divisor of 64), each circularly shifted by every ``(rows, columns)`` of
    ``shifts`` (texels; the texture tiles, so a shift is another material of the same look):
    ``stone_k`` unshifted, ``stone_k_r<rows>c<columns>`` shifted."""
    import torch

    from ..models.neumip import NeuMipField
    from ..train.neumip import load_decoders
    from ..train.neumip.export import to_bundle

    if not 1 <= count <= VARIANTS:
        raise ValueError(f"count must be in [1, {VARIANTS}], got {count}")
    stone = load_bundle(STONE)
    side = stone.planes["rgb"].shape[0]
    if texels < 1 or side % texels:
        raise ValueError(f"texels must divide {side}, got {texels}")
    nets, max_offset, _ = load_decoders(DECODERS)
    scale = float(stone.provenance["value_scale"])
    k = side // texels
    out = {}
    for i in range(count):
        for rows, cols in shifts:
            name = f"stone_{i}" + (f"_r{rows}c{cols}" if rows or cols else "")
            field = NeuMipField(1, texels, max_offset, nets)
            with torch.no_grad():
                for plane_name, tex in (("offset", field.textures[0].offset), ("rgb", field.textures[0].rgb)):
                    plane = np.rot90(np.asarray(stone.planes[plane_name], np.float32), i % 4, axes=(0, 1))
                    plane = plane.transpose(1, 0, 2) if i >= 4 else plane
                    pooled = plane.reshape(texels, k, texels, k, -1).mean((1, 3))
                    tex.copy_(torch.from_numpy(np.ascontiguousarray(np.roll(pooled, (rows, cols), axis=(0, 1)))))
            out[name] = to_bundle(field, 0, scale, {"material": name})
    return out


def write_posed_video(folder: str | Path, bundle: Bundle, poses: list[FramePose], size: int,
                      sample_size: float = 1.0) -> Path:
    """Render ``bundle`` at ``poses`` (``size``² pixels) into a finished posed folder (module
    docstring): PNG frames, ``poses.json``, ``done.json`` last."""
    folder = Path(folder)
    for p in poses:
        write_png(frame_path(folder, p.index), srgb8(render_bundle_frame(bundle, p, size, size, sample_size)))
    save_poses(folder / POSES_FILE, poses, width=size, height=size, sample_size=sample_size)
    write_json(folder / DONE_FILE, {"material_id": folder.parent.name, "trajectory": folder.name,
                                    "frames": len(poses), "renderer": "neumat.video.frame_render"})
    return folder


def write_synthetic_set(root: str | Path, bundles: dict[str, Bundle], size: int, video_frames: int = 81,
                        per_axis: int = 3) -> list[Path]:
    """Write ``<root>/<name>/video`` (``video_frames``) and ``<root>/<name>/cross``
    (``per_axis``⁴ frames) of every bundle at ``size``² pixels; returns the material folders."""
    root = Path(root)
    video, cross = video_trajectory(video_frames), cross_trajectory(per_axis)
    for name, bundle in bundles.items():
        write_posed_video(root / name / "video", bundle, video, size)
        write_posed_video(root / name / "cross", bundle, cross, size)
    return [root / name for name in bundles]
