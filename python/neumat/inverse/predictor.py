"""Running a trained MVInverse on frames: where the weights come from and how many views go through
the network at once.

Weights: a run directory of :mod:`.train` or of :mod:`.finetune` (``config.json`` +
``ckpt_*.pt``; the newest intact checkpoint) or one such checkpoint file — the config beside it
gives the architecture. Or, for tests and smoke runs, random weights of :meth:`~.config.ModelConfig.tiny` /
:meth:`~.config.ModelConfig.full` (``random_init``; the predictions mean nothing).

Inference: frames are ``[V, H, W, 3]`` sRGB in [0, 1] (or uint8), ``H`` and ``W`` multiples of 14
(:func:`working_size` picks them); the views go through the network in chunks of at most
``max_views`` (global attention spans a chunk; the seed trains with up to 12), split evenly so
no chunk holds a single view. Outputs are numpy ``[V, H, W, C]`` float32 per map, conventions
of :mod:`.intrinsics` (normals: camera frame, OpenCV axes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .config import PATCH

log = logging.getLogger(__name__)

MAX_VIEWS = 12
"""Views per forward pass (the seed's images per GPU)."""


class WeightsNotFound(ValueError):
    """No usable MVInverse weights where the user pointed; the message says what to give."""


def working_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """``(H, W)`` multiples of 14 with the long side ``long_side`` (rounded to 14) and the aspect
    ratio of ``height`` × ``width`` kept as well as rounding allows (each side >= 14)."""
    long_side = max(PATCH, round(long_side / PATCH) * PATCH)
    scale = long_side / max(height, width)
    return (max(PATCH, round(height * scale / PATCH) * PATCH), max(PATCH, round(width * scale / PATCH) * PATCH))


def resize_frames(frames: np.ndarray, long_side: int) -> np.ndarray:
    """``[V, H, W, 3]`` float frames in [0, 1] resized (area filter) to :func:`working_size` with
    the long side ``long_side``: ``[V, H', W', 3]`` float32 in [0, 1]."""
    import cv2

    h, w = working_size(*frames.shape[1:3], long_side)
    out = np.stack([cv2.resize(np.asarray(f, np.float32), (w, h), interpolation=cv2.INTER_AREA) for f in frames])
    return np.clip(out, 0.0, 1.0)


def load_model(weights: str | Path | None, architecture: str = "full", random_init: bool = False, seed: int = 0):
    """The network to predict with (module docstring): ``(model in eval mode, description)``.

    Raises:
        WeightsNotFound: no weights given without ``random_init``, a path that holds no checkpoint,
            a checkpoint of another model kind, or a run directory without its config.json.
    """
    import torch

    from ..train.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint
    from ..train.config_io import ConfigError, load_config
    from .config import FinetuneConfig, InverseTrainConfig, ModelConfig
    from .finetune import FINETUNE_KIND
    from .model import MVInverse
    from .train import MODEL_KIND

    if weights is None:
        if not random_init:
            raise WeightsNotFound("MVInverse needs trained weights: --weights RUN_DIR (a `neumat inverse train` run "
                                  "directory or one of its ckpt_*.pt files); --random-init only for smoke tests")
        if architecture not in ("tiny", "full"):
            raise WeightsNotFound(f"architecture must be 'tiny' or 'full', got {architecture!r}")
        torch.manual_seed(seed)
        model = MVInverse(getattr(ModelConfig, architecture)())
        return model.eval(), f"random {architecture} MVInverse (seed {seed}; predictions mean nothing)"
    configs = {MODEL_KIND: InverseTrainConfig, FINETUNE_KIND: FinetuneConfig}
    try:
        path = resolve_checkpoint(weights)
        state = load_checkpoint(path)
        kind = state.get("model_kind")
        if kind not in configs:
            raise WeightsNotFound(f"--weights {weights}: {path.name} is a {kind!r} checkpoint, not an MVInverse one "
                                  f"({' or '.join(map(repr, configs))})")
        cfg = load_config(path.parent / "config.json", configs[kind])
    except (CheckpointError, ConfigError, OSError) as e:
        raise WeightsNotFound(f"--weights {weights}: {e}") from None
    model = MVInverse(cfg.model)
    model.load_state_dict(state["model"])
    return model.eval(), f"MVInverse from {path} ({state.get('step', '?')} steps)"


def chunks(views: int, max_views: int = MAX_VIEWS) -> list[range]:
    """Consecutive view ranges of at most ``max_views`` (>= 2 each when ``views`` >= 2), as even
    as possible."""
    n = max(1, -(-views // max_views))
    bounds = np.linspace(0, views, n + 1).round().astype(int)
    return [range(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def predict(model, frames: np.ndarray, names: Sequence[str] | None = None, max_views: int = MAX_VIEWS,
            device: str = "cpu", on_chunk=None) -> dict[str, np.ndarray]:
    """Every map of every frame (module docstring).

    Args:
        frames: ``[V, H, W, 3]`` uint8, or float in [0, 1]; V >= 2, H and W multiples of 14.
        names: frame names for error messages.
        on_chunk: called with the number of views after each chunk (progress).
    Raises:
        :class:`~.batch.ViewError` naming the frame (values, sizes, too few views).
    """
    import torch

    from .batch import check_images

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    check_images(x[None], names)
    model = model.to(device)
    out: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for part in chunks(x.shape[0], max_views):
            pred = model(x[part.start:part.stop][None].to(device))
            for key, value in pred.items():
                out.setdefault(key.value, []).append(value[0].permute(0, 2, 3, 1).float().cpu().numpy())
            if on_chunk is not None:
                on_chunk(len(part))
    return {k: np.concatenate(v) for k, v in out.items()}
