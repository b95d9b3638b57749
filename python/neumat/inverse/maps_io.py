"""Writing fused maps as a PBR texture folder that ``neumat train --maps`` reads
(:func:`neumat.data.pbr_io.find_pbr_maps` naming), plus a contact sheet and a record.

Folder (written to a staged folder and renamed into place: readers see the old folder or the
complete new one)::

    basecolor.png      8-bit sRGB base colour (the linear albedo encoded)
    roughness.png      8-bit linear perceptual roughness
    metallic.png       8-bit linear metalness
    normal_gl.png      8-bit OpenGL tangent-space normals: RGB = (n_x, −n_y, n_z)/2 + 1/2 (green
                       toward the image top, what ``--maps`` assumes for ``gl`` names)
    height.png         16-bit height in [0, 1]; its displacement in UV units is ``height_scale``
    confidence.png     8-bit per-texel confidence (:mod:`.fuse`; no ``--maps`` role)
    contact_sheet.png  the first frame resampled into texture space and every map side by side,
                       labelled
    inverse.json       height_scale, resolution, registration, frames, figures

Maps are ``[row = v, column = u]``, row 0 the image's top (:mod:`.register`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import staged_folder
from .fuse import FusedMaps

RECORD_FILE = "inverse.json"
"""The record every maps folder written here holds (and the mark that :func:`check_maps_dir`
lets it be replaced)."""
FILES = {"albedo": "basecolor.png", "roughness": "roughness.png", "metallic": "metallic.png",
         "normal": "normal_gl.png", "height": "height.png"}
"""File of each ``--maps`` role."""
SHEET_TILE = 192
"""Side of each contact-sheet tile, pixels."""


class MapsDirError(ValueError):
    """An output folder that must not be replaced (the message says why)."""


def check_maps_dir(out: str | Path) -> Path:
    """Refuse ``out`` when it is a file, or a non-empty folder that is not a maps folder written
    here (no :data:`RECORD_FILE`): writing replaces the whole folder."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MapsDirError(f"--out {str(out)!r} is a file; give a folder for the maps")
    if out.is_dir() and any(out.iterdir()) and not (out / RECORD_FILE).is_file():
        raise MapsDirError(f"--out {str(out)!r} is a non-empty folder that holds no {RECORD_FILE}; the maps replace "
                           "the whole folder, so give a new or empty one")
    return out


def encode_normals(normal: np.ndarray) -> np.ndarray:
    """uint8 ``[R, R, 3]`` OpenGL normal map of unit tangent-space normals (module docstring);
    :func:`neumat.data.pbr_io.decode_normal_map` with ``"opengl"`` inverts it up to rounding."""
    n = np.asarray(normal, np.float64) * np.array([1.0, -1.0, 1.0])
    return np.round(np.clip(n * 0.5 + 0.5, 0, 1) * 255).astype(np.uint8)


def write_maps(out: str | Path, fused: FusedMaps, height: np.ndarray, height_scale: float,
               record: Mapping[str, Any], first_frame: np.ndarray | None = None) -> Path:
    """Write the folder of the module docstring at ``out`` (checked by :func:`check_maps_dir`).

    Args:
        fused: the texture-space maps.
        height: ``[R, R]`` in [0, 1] (:func:`.height.height_map`); ``height_scale`` its depth, UV units.
        record: extra JSON-able entries for :data:`RECORD_FILE`.
        first_frame: optional uint8 ``[H, W, 3]`` image for the contact sheet (frame 0 in texture
            space).
    Returns:
        ``out``.
    """
    from ..video.folder import srgb8, write_png

    out = check_maps_dir(out)
    grey8 = lambda a: np.round(np.clip(np.asarray(a)[..., 0] if np.ndim(a) == 3 else a, 0, 1) * 255).astype(np.uint8)  # noqa: E731
    images = {
        "albedo": srgb8(fused.albedo), "roughness": grey8(fused.roughness), "metallic": grey8(fused.metallic),
        "normal": encode_normals(fused.normal),
        "height": np.round(np.clip(height, 0, 1) * 65535).astype(np.uint16),
    }
    doc = {"height_scale": float(height_scale), "resolution": int(fused.albedo.shape[0]),
           "mean_confidence": float(fused.confidence.mean()), "seen_fraction": float((fused.coverage > 0).mean()),
           "files": FILES, **record}
    with staged_folder(out) as tmp:
        for role, name in FILES.items():
            write_png(tmp / name, images[role])
        write_png(tmp / "confidence.png", grey8(fused.confidence))
        tiles = [("basecolor", images["albedo"]), ("roughness", images["roughness"]),
                 ("metallic", images["metallic"]), ("normal", images["normal"]),
                 ("height", (images["height"] >> 8).astype(np.uint8)), ("confidence", grey8(fused.confidence))]
        if first_frame is not None:
            tiles.insert(0, ("frame 0 (texture)", np.asarray(first_frame, np.uint8)))
        write_png(tmp / "contact_sheet.png", contact_sheet(tiles))
        (tmp / RECORD_FILE).write_text(json.dumps(doc, indent=1, sort_keys=True, default=str))
    return out


def contact_sheet(tiles: list[tuple[str, np.ndarray]], tile: int = SHEET_TILE) -> np.ndarray:
    """uint8 ``[tile + 24, n·tile, 3]``: each image (grey or RGB uint8) fitted into a ``tile``²
    square (aspect kept, nearest-neighbour so texels stay visible), its label underneath."""
    import cv2

    sheet = np.full((tile + 24, tile * len(tiles), 3), 32, np.uint8)
    for i, (label, img) in enumerate(tiles):
        img = np.repeat(img[..., None], 3, axis=-1) if img.ndim == 2 else img[..., :3]
        h, w = img.shape[:2]
        scale = tile / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        fitted = cv2.resize(np.ascontiguousarray(img), size, interpolation=cv2.INTER_NEAREST if scale >= 1
                            else cv2.INTER_AREA)
        y0, x0 = (tile - size[1]) // 2, i * tile + (tile - size[0]) // 2
        sheet[y0:y0 + size[1], x0:x0 + size[0]] = fitted
        cv2.putText(sheet, label, (i * tile + 6, tile + 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (230, 230, 230), 1,
                    cv2.LINE_AA)
    return sheet
