"""Capture -> PBR maps (issue 18 item 5): MVInverse on every frame, the frames registered to the
sample's texture plane, the predictions fused in texture space, the normals integrated to a
height map, the maps written where ``neumat train --maps`` reads them.

Stages (each reports to ``progress(stage, done, total)``):

1. ``read`` — the capture (:mod:`.frames`), already loaded by the caller;
2. ``predict`` — frames resized (area filter) to :func:`~.predictor.working_size` with the long
   side ``long_side``, MVInverse in chunks of views (:mod:`.predictor`);
3. ``register`` — known poses (posed video folders) or features to frame 0 (:mod:`.register`),
   on the resized frames;
4. ``fuse`` — texture-space median and confidence (:mod:`.fuse`), Frankot–Chellappa height
   (:mod:`.height`);
5. ``write`` — the maps folder, contact sheet and ``inverse.json`` (:mod:`.maps_io`).

The output folder is checked before any work and written as a whole at the end (a failure
leaves the previous folder, or none).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .frames import Capture
from .fuse import fuse, warp_to_texture
from .height import height_map
from .maps_io import check_maps_dir, write_maps
from .predictor import MAX_VIEWS, predict, resize_frames
from .register import DEFAULT_FOV_DEG, feature_registration, pose_registration

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)`` (module docstring)."""
STAGES = ("predict", "register", "fuse", "write")
"""Stages reported by :func:`capture_to_maps`, in order."""


@dataclass(frozen=True)
class CaptureSettings:
    """How a capture becomes maps."""

    long_side: int = 518
    """Long side of the frames fed to MVInverse, pixels (rounded to a multiple of 14; the seed
    trains at 518)."""
    resolution: int = 0
    """Texels per side of the maps; 0: the short side of the resized frames."""
    fov_deg: float = DEFAULT_FOV_DEG
    """Horizontal field of view of unposed frames, degrees (their normals' rotation)."""
    max_views: int = MAX_VIEWS
    """Views per forward pass."""
    device: str = "cpu"
    """Torch device of the network."""


def capture_to_maps(capture: Capture, out: str | Path, model, settings: CaptureSettings = CaptureSettings(),
                    progress: Progress | None = None, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """Turn ``capture`` into a maps folder at ``out`` (module docstring) with the network ``model``.

    Returns:
        the record written to ``inverse.json`` (height_scale, registration, timings, ...).
    Raises:
        :class:`~.maps_io.MapsDirError` (before any work), :class:`~.batch.ViewError`,
        :class:`~.register.RegistrationError`, :class:`~.fuse.FusionError`, naming the frame
        where one is to blame.
    """
    check_maps_dir(out)
    report = progress or (lambda stage, done, total: None)
    v = len(capture.names)
    seconds = {}
    t0 = time.perf_counter()
    frames = resize_frames(capture.frames, settings.long_side)
    h, w = frames.shape[1:3]
    report("predict", 0, v)
    done = [0]

    def chunk_done(n: int) -> None:
        done[0] += n
        report("predict", done[0], v)

    predictions = predict(model, frames, capture.names, settings.max_views, settings.device, chunk_done)
    seconds["predict"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    report("register", 0, v)
    r = settings.resolution or min(h, w)
    if capture.poses is not None:
        registration = pose_registration(capture.poses, w, h, r, capture.sample_size, capture.names)
    else:
        u8 = np.round(frames * 255.0).astype(np.uint8)
        registration = feature_registration(u8, r, settings.fov_deg, capture.names)
    report("register", v, v)
    seconds["register"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    report("fuse", 0, 1)
    fused = fuse(predictions, registration)
    height, height_scale = height_map(fused.normal)
    report("fuse", 1, 1)
    seconds["fuse"] = time.perf_counter() - t0
    report("write", 0, 1)
    doc = {"frames": capture.names, "working_size": [w, h], "registration": registration.method,
           "inliers": registration.inliers, "settings": asdict(settings), "seconds": seconds, **(record or {})}
    first = warp_to_texture(frames[0], registration.homographies[0], r)[0]  # lines up with the maps
    write_maps(out, fused, height, height_scale, doc, np.round(np.clip(first, 0, 1) * 255).astype(np.uint8))
    report("write", 1, 1)
    log.info("%d frames -> %s (%d² texels, %s registration, mean confidence %.2f, height scale %.4g UV)",
             v, out, r, registration.method, float(fused.confidence.mean()), height_scale)
    return {"height_scale": float(height_scale), "mean_confidence": float(fused.confidence.mean()), **doc}
