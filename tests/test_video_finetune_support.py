"""Shared pieces of the Wan finetuning and generation tests: tiny offline Wan weights and a tiny
posed-clip dataset in the folder layout of :mod:`neumat.video.folder` (no tests of its own)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="the video extra is not installed: pip install -e '.[video]'")
pytest.importorskip("peft", reason="the video extra is not installed: pip install -e '.[video]'")

FRAMES, SIZE = 5, 32
"""Tiny clips: 5 frames (one latent frame + 4 packed) of 32x32 pixels (2x2 DiT tokens per latent frame)."""


def clip_frame(material: int, index: int, frames: int = FRAMES, size: int = SIZE) -> np.ndarray:
    """uint8 [size, size, 3] frame ``index`` of material ``material``: smooth waves moving with
    the frame (so the video has content the tiny model can learn)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    a = 2 * np.pi * index / frames
    img = np.stack([0.5 + 0.4 * np.sin(6 * xx + a + material), 0.5 + 0.4 * np.cos(5 * yy - a),
                    0.5 + 0.3 * np.sin(4 * (xx + yy) + material)], -1)
    return (img * 255 + 0.5).astype(np.uint8)


def write_clip(root: Path, material: int, frames: int = FRAMES, size: int = SIZE, done: bool = True,
               trajectory: str = "video") -> Path:
    """Write clip ``<root>/mat<material>/<trajectory>`` (frames, poses, captions, done marker)."""
    from neumat.video.folder import frame_path, write_json, write_png
    from neumat.video.trajectory import save_poses, video_trajectory

    clip = Path(root) / f"mat{material}" / trajectory
    for i in range(frames):
        write_png(frame_path(clip, i), clip_frame(material, i, frames, size))
    save_poses(clip / "poses.json", video_trajectory(frames), width=size, height=size, sample_size=1.0)
    write_json(clip / "caption.json", {"material_only": f"red stone texture with fine grooves {material}",
                                       "filtered": "rough brick pattern", "metadata": {"id": material}})
    if done:
        write_json(clip / "done.json", {})
    return clip


@pytest.fixture(scope="session")
def clips_root(tmp_path_factory) -> Path:
    """Two finished tiny clips, one unfinished (skipped) and one of another trajectory (not
    trained on: 9 frames, which would not batch with the others)."""
    root = tmp_path_factory.mktemp("clips")
    write_clip(root, 0)
    write_clip(root, 0, frames=9, trajectory="cross")
    write_clip(root, 1)
    write_clip(root, 2, done=False)
    return root


@pytest.fixture(scope="session")
def t2v_weights(tmp_path_factory) -> Path:
    """A tiny text-to-video Wan pipeline folder."""
    from neumat.video.wan_tiny import write_tiny_wan

    return write_tiny_wan(tmp_path_factory.mktemp("wan") / "t2v")


@pytest.fixture(scope="session")
def i2v_weights(tmp_path_factory) -> Path:
    """A tiny image-to-video Wan pipeline folder."""
    from neumat.video.wan_tiny import write_tiny_wan

    return write_tiny_wan(tmp_path_factory.mktemp("wan") / "i2v", image_to_video=True)


def tiny_config(**changes):
    """A :class:`FinetuneConfig` for the tiny models: a learning rate that shows learning in tens
    of steps (the seed's 1e-5 is for 14B weights), short text, no gradient checkpointing unless asked."""
    from neumat.video.finetune_config import FinetuneConfig

    base = dict(lr=2e-3, steps=4, max_text_tokens=16, checkpoint_every=2, log_every=100, gradient_checkpointing=False)
    return FinetuneConfig(**{**base, **changes})
