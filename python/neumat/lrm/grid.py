"""The picture grid of ``neumat lrm eval`` (``<out>/grid.png``), after the seed's Fig. 3: one row
per held-out material (the first :data:`GRID_ROWS` evaluated), one titled column per picture:

* ``ground truth`` — the data set's 8-bit sRGB frame;
* ``LRM`` — the same frame rendered from the LRM's INT8 bundle (:mod:`.reconstruct`);
* ``direct fit`` — the same frame rendered from the direct fit's INT8 bundle; only when the
  evaluation fits (``--fit-steps`` > 0), otherwise the column is left out;
* ``T_off (PCA)`` — the LRM's offset texture T_off ``[R, R, C]``: its first three principal
  components over the R² texels as R, G, B, each min-max normalised to [0, 1] and written as
  display values (no sRGB curve; a constant component is mid grey).

The frame is a novel view *and* light: the middle frame of the material's cross-joined set
(loss frame ``V + C // 2``, :class:`.data.LrmMaterial`), whose poses the LRM never sees (its input
is 17 frames of the trajectory video). Renders are the disk-light frames of
:func:`neumat.video.frame_render.render_bundle_frame` encoded as the data set's frames are
(:func:`neumat.video.folder.srgb8`: clipped, no exposure or tone curve), so the tiles compare
pixel for pixel. Tiles are square, :func:`tile_side` pixels (pictures upscaled nearest-neighbour,
downscaled by box filter); above each row a band names the material and the frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bundle import Bundle
from ..video.folder import srgb8, write_png
from ..video.frame_render import render_bundle_frame
from .data import LrmMaterial

GRID_ROWS = 6
"""Materials (rows) in the grid at most."""
TILE_MIN, TILE_MAX = 128, 256
"""Bounds of a tile's side, pixels (the frame side clamped to them)."""
HEADER = 16
"""Height of the column-title band and of each row's name band, pixels."""


@dataclass
class GridRow:
    """One material's pictures (module docstring)."""

    name: str
    """The material."""
    frame: int
    """The loss frame shown (:func:`grid_frame`)."""
    truth: np.ndarray
    """uint8 ``[S, S, 3]``: the data set's frame."""
    renders: dict[str, np.ndarray]
    """Column title → uint8 ``[S, S, 3]`` sRGB render of the frame (``LRM``, ``direct fit``)."""
    offset: np.ndarray
    """uint8 ``[R, R, 3]``: :func:`offset_picture` of the LRM's T_off."""


def grid_frame(material: LrmMaterial) -> int:
    """The loss frame of the grid: the middle of the cross-joined set (module docstring)."""
    return len(material.video.poses) + len(material.cross.poses) // 2


def offset_picture(offset: np.ndarray) -> np.ndarray:
    """uint8 ``[R, R, 3]``: the first three principal components of ``offset`` (float ``[R, R, C]``)
    as R, G, B, each min-max normalised (module docstring); fewer than three channels leave the
    rest mid grey. A component's sign puts its largest loading positive (deterministic colours)."""
    r = offset.shape[0]
    x = offset.reshape(r * r, -1).astype(np.float64)
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    vt = vt[:3]
    vt = vt * np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])[:, None]
    out = np.full((r * r, 3), 0.5)
    for i, comp in enumerate((x @ vt.T).T):
        span = comp.max() - comp.min()
        if span > 1e-12 * max(1.0, float(np.abs(x).max())):
            out[:, i] = (comp - comp.min()) / span
    return np.round(255 * out.reshape(r, r, 3)).astype(np.uint8)


def grid_row(material: LrmMaterial, offset: np.ndarray, bundles: dict[str, Bundle]) -> GridRow:
    """The pictures of ``material``: ``bundles`` (column title → bundle) rendered at
    :func:`grid_frame`, beside the LRM's T_off ``offset``."""
    k = grid_frame(material)
    pose, truth = material.loss_frame(k)
    size, sample = material.video.size, material.video.sample_size
    renders = {title: srgb8(render_bundle_frame(b, pose, size, size, sample)) for title, b in bundles.items()}
    return GridRow(material.name, k, truth, renders, offset_picture(offset))


def tile_side(frame_size: int) -> int:
    """A tile's side for frames of ``frame_size`` pixels: clamped to [TILE_MIN, TILE_MAX]."""
    return min(max(frame_size, TILE_MIN), TILE_MAX)


def columns(rows: list[GridRow]) -> list[str]:
    """The column titles of ``rows``' grid, left to right."""
    return ["ground truth", *rows[0].renders, "T_off (PCA)"]


def grid_image(rows: list[GridRow]) -> np.ndarray:
    """uint8 ``[HEADER + n (HEADER + T), c T, 3]`` grid of ``rows`` (n rows, c :func:`columns`,
    tiles of side T = :func:`tile_side`), white background, black titles."""
    from PIL import Image, ImageDraw

    if not rows:
        raise ValueError("no materials for a grid")
    titles = columns(rows)
    side = tile_side(rows[0].truth.shape[0])
    img = Image.new("RGB", (len(titles) * side, HEADER + len(rows) * (HEADER + side)), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for j, title in enumerate(titles):
        draw.text((j * side + 3, 2), title, fill=(0, 0, 0))
    for i, row in enumerate(rows):
        top = HEADER + i * (HEADER + side)
        draw.text((3, top + 2), f"{row.name} (loss frame {row.frame}, cross-joined)", fill=(0, 0, 0))
        for j, tile in enumerate([row.truth, *row.renders.values(), row.offset]):
            picture = Image.fromarray(np.ascontiguousarray(tile))
            up = tile.shape[0] < side
            picture = picture.resize((side, side), Image.Resampling.NEAREST if up else Image.Resampling.BOX)
            img.paste(picture, (j * side, top + HEADER))
    return np.asarray(img)


def write_grid(rows: list[GridRow], path: str | Path) -> Path:
    """Write :func:`grid_image` of ``rows`` as PNG, atomically."""
    return write_png(path, grid_image(rows))
