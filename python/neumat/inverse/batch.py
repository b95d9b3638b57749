"""What MVInverse takes in: multi-view image stacks, their checks, and training batches.

Images are ``[B, V, 3, H, W]`` float tensors: ``B`` scenes of ``V >= 2`` views each, every view
of one size, RGB in [0, 1] (sRGB-encoded as photographs and the training sets' tone-mapped
renders are; the network ImageNet-normalizes them), ``H`` and ``W`` multiples of 14. Checks
happen here, at the boundary, with errors that name the offending frame; the network trusts
its input after them.

Dynamic batches (seed §7, after VGGT): each step draws its number of views ``V`` in
``[min_views, max_views]`` and trains ``max_images // V`` scenes of ``V`` views, so a process
always sees at most ``max_images`` images; single-view datasets repeat their image ``V``
times (a static camera).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .config import PATCH
from .intrinsics import Intrinsic


class ViewError(ValueError):
    """Multi-view input that MVInverse cannot take; the message names the frame and the fix."""


def _frame(index: int, names: Sequence[str] | None) -> str:
    return f"frame {index}" + (f" ({names[index]!r})" if names is not None else "")


def stack_views(frames: Sequence[torch.Tensor], names: Sequence[str] | None = None) -> torch.Tensor:
    """One scene's views ``[3, H, W]`` each -> ``[1, V, 3, H, W]``, checked by :func:`check_images`.

    Args:
        frames: the views, float RGB in [0, 1].
        names: optional frame names (file names) for the error messages.
    Raises:
        ViewError: fewer than 2 frames, a frame that is not ``[3, H, W]``, frames of different
            sizes (naming the first that differs from frame 0), or a failed :func:`check_images`.
    """
    if names is not None and len(names) != len(frames):
        raise ValueError(f"{len(names)} names for {len(frames)} frames")
    if len(frames) < 2:
        only = f": only {_frame(0, names)}" if frames else ""
        raise ViewError(f"MVInverse needs at least 2 views of a scene, got {len(frames)}{only}; repeat a single "
                        "image to treat it as a static camera")
    for i, f in enumerate(frames):
        if f.ndim != 3 or f.shape[0] != 3:
            raise ViewError(f"{_frame(i, names)} has shape {tuple(f.shape)}; expected [3, H, W] RGB")
        if f.shape != frames[0].shape:
            raise ViewError(f"{_frame(i, names)} is {f.shape[1]}x{f.shape[2]} pixels but {_frame(0, names)} is "
                            f"{frames[0].shape[1]}x{frames[0].shape[2]}: all views of a scene must share one size "
                            "(resize or crop them alike)")
    images = torch.stack(list(frames))[None]
    check_images(images, names)
    return images


def check_images(images: torch.Tensor, names: Sequence[str] | None = None) -> None:
    """Check a ``[B, V, 3, H, W]`` image stack (module docstring); ``names``: of the ``V`` views.

    Raises:
        ViewError: wrong rank or channel count, ``V < 2``, ``H`` or ``W`` not a multiple of 14,
            not floating point, or a view with values outside [0, 1] or not finite (named).
    """
    if images.ndim != 5 or images.shape[2] != 3:
        raise ViewError(f"images must be [B, V, 3, H, W], got shape {tuple(images.shape)}")
    b, v, _, h, w = images.shape
    if v < 2:
        raise ViewError(f"MVInverse needs at least 2 views of a scene, got 1 ({_frame(0, names)}); repeat a single "
                        "image to treat it as a static camera")
    if h % PATCH or w % PATCH or h == 0 or w == 0:
        raise ViewError(f"frames are {h}x{w} pixels: height and width must be positive multiples of {PATCH} "
                        f"(e.g. {max(PATCH, h // PATCH * PATCH)}x{max(PATCH, w // PATCH * PATCH)}); crop or resize "
                        f"every frame, starting with {_frame(0, names)}")
    if not images.is_floating_point():
        raise ViewError(f"images must be float RGB in [0, 1], got {images.dtype}")
    if images.device.type == "meta":
        return
    bad = ~torch.isfinite(images) | (images < 0) | (images > 1)
    if bool(bad.any()):
        s, i = (int(k) for k in bad.flatten(2).any(-1).nonzero()[0])
        raise ViewError(f"{_frame(i, names)} of scene {s} has values outside [0, 1] or not finite "
                        f"(min {float(images[s, i].min()):.4g}, max {float(images[s, i].max()):.4g}); divide 8-bit "
                        "images by 255")


@dataclass
class InverseBatch:
    """One training step's data on one process.

    Targets and masks are per intrinsic map and may be absent: every set supervises only some
    maps (seed Table 5), and a target may be missing for some scenes of the batch (its mask
    is then all False there).
    """

    images: torch.Tensor
    """``[B, V, 3, H, W]`` input views (module docstring)."""
    targets: dict[Intrinsic, torch.Tensor] = field(default_factory=dict)
    """``[B, V, C, H, W]`` ground truth per supervised map (conventions: :mod:`.intrinsics`)."""
    masks: dict[Intrinsic, torch.Tensor] = field(default_factory=dict)
    """``[B, V, 1, H, W]`` bool: pixels where that target is valid (the set's own masks, e.g.
    mirrors); absent: all valid. The albedo range mask (:func:`~.losses.reliable_albedo`) is
    applied on top by the loss."""

    def to(self, device: torch.device | str) -> "InverseBatch":
        """The batch on ``device``."""
        return InverseBatch(self.images.to(device), {k: t.to(device) for k, t in self.targets.items()},
                            {k: m.to(device) for k, m in self.masks.items()})


def dynamic_views(rng: np.random.Generator, min_views: int, max_views: int, max_images: int) -> tuple[int, int]:
    """``(scenes, views)`` of one dynamic batch: ``views`` uniform in ``[min_views, max_views]``,
    ``scenes = max_images // views`` (module docstring)."""
    views = int(rng.integers(min_views, max_views + 1))
    return max(1, max_images // views), views
