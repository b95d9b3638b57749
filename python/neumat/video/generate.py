"""Generating a posed material video with a (finetuned) Wan2.1 pipeline — the "virtual
gonioreflectometer" at work (VideoNeuMat seed, §3.3).

A text prompt drives a text-to-video model, an image (plus an optional prompt) an
image-to-video one. The frames are written as a posed video folder (:mod:`.folder`) that part 2
(the LRM) and the RPC metric read like a rendered one::

    <out>/<material_id>/video/frames/00000.png ...   8-bit sRGB, as the model outputs them
    <out>/<material_id>/video/poses.json             video_trajectory(frames) at the frames' size
    <out>/<material_id>/video/caption.json           the prompt (both styles) + generation metadata
    <out>/<material_id>/video/done.json              completion marker

The poses are the trajectory the model was finetuned on (:func:`.trajectory.video_trajectory`
with the generated frame count; sample size 1), not something measured from the pixels. The
folder is assembled under a hidden temporary name and renamed into place, so a reader never
sees a half-written video.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..fileio import staged_folder
from .clips import CAPTION_KEYS
from .folder import CAPTION_FILE, DONE_FILE, POSES_FILE, frame_path, write_json, write_png
from .trajectory import save_poses, video_trajectory

log = logging.getLogger(__name__)

TRAJECTORY_NAME = "video"
"""``<trajectory_name>`` of a generated video (the two-phase trajectory, :data:`.trajectory.TRAJECTORIES`)."""
DEFAULT_MAX_TEXT_TOKENS = 512
"""Text tokens per prompt when no finetuned model says otherwise (Wan2.1's 512)."""


class GenerateError(ValueError):
    """A generation request that cannot run (the message says what to change)."""


def check_request(task: str, prompt: str | None, image: str | Path | None, frames: int, width: int,
                  height: int) -> None:
    """Refuse requests the weights cannot serve, before loading them.

    Raises:
        GenerateError: no prompt and no image, an image for a text-to-video model or none for
            an image-to-video one, an unreadable image, frames not 4k+1, sides not multiples of 16.
    """
    if image is None and not prompt:
        raise GenerateError("give --prompt (text-to-video) or --image (image-to-video)")
    if task == "t2v" and image is not None:
        raise GenerateError("--image needs image-to-video weights (WanImageToVideoPipeline); these are text-to-video")
    if task == "i2v" and image is None:
        raise GenerateError("these weights are image-to-video: give --image (and optionally --prompt)")
    if image is not None:
        from PIL import Image

        try:
            with Image.open(image) as img:
                img.verify()
        except (OSError, ValueError) as e:
            raise GenerateError(f"--image {image}: not a readable image ({e})") from e
    if frames < 5 or (frames - 1) % 4:
        raise GenerateError(f"frames must be 4k+1 and >= 5 (Wan's VAE packs 4 frames per latent), got {frames}")
    if width < 16 or height < 16 or width % 16 or height % 16:
        raise GenerateError(f"frame sides must be multiples of 16 pixels, got {width}x{height}")


def generate(weights: str | Path, out: str | Path, prompt: str | None = None, image: str | Path | None = None,
             finetuned: str | Path | None = None, material_id: str = "generated", frames: int = 81,
             width: int = 512, height: int = 512, steps: int = 50, guidance: float = 5.0,
             negative_prompt: str = "", seed: int = 0, precision: str = "fp32", device: str = "auto",
             overwrite: bool = False, progress: bool = True) -> Path:
    """Generate one posed material video into ``<out>/<material_id>/video``.

    Args:
        weights: local diffusers Wan2.1 folder (:mod:`.wan_parts`): the base model.
        out: dataset folder to write into.
        prompt: text prompt (required for text-to-video, optional with ``image``).
        image: conditioning image file (image-to-video weights only).
        finetuned: a finetuning run folder or its ``final/`` (:mod:`.finetuned`), applied on top
            of ``weights``; None: the weights as they are.
        material_id: name of the material folder.
        frames, width, height: video size (4k+1 frames, sides multiples of 16 pixels).
        steps: denoising steps; guidance: classifier-free guidance scale (1: off).
        negative_prompt: the unconditional text of guidance ("" as trained with caption dropout).
        seed: seed of the initial noise (CPU generator: same video on any device).
        precision: ``"fp32"`` or ``"bf16"`` (all components).
        device: ``"auto"`` (CUDA if available) or a torch device name.
        overwrite: replace an existing finished video of the same name.
        progress: show the denoising progress bar.
    Returns:
        the video folder.
    Raises:
        WeightsError, FinetunedError, GenerateError: bad input, before any weight is loaded.
    """
    import torch

    from .finetuned import apply_finetuned, read_manifest
    from .wan_parts import check_weights_dir, load_pipeline

    task = check_weights_dir(weights)
    check_request(task, prompt, image, frames, width, height)
    manifest = read_manifest(finetuned)[1] if finetuned is not None else {}
    if manifest and manifest.get("task") != task:
        raise GenerateError(f"{finetuned} was finetuned for {manifest.get('task')}, --weights is a {task} model")
    if precision not in ("fp32", "bf16"):
        raise GenerateError(f"precision must be fp32 or bf16, got {precision!r}")
    target = Path(out) / material_id / TRAJECTORY_NAME
    if target.exists() and not overwrite:
        raise GenerateError(f"{target} exists: pass --overwrite or another --material-id")

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    pipe = load_pipeline(weights, frozen_dtype=dtype)
    if finetuned is not None:
        apply_finetuned(pipe, finetuned)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    pipe.to(device)
    pipe.set_progress_bar_config(disable=not progress, desc="generate")
    kwargs = dict(prompt=prompt or "", negative_prompt=negative_prompt, num_frames=frames, height=height,
                  width=width, num_inference_steps=steps, guidance_scale=guidance, output_type="np",
                  generator=torch.Generator().manual_seed(seed),
                  max_sequence_length=int(manifest.get("max_text_tokens", DEFAULT_MAX_TEXT_TOKENS)))
    if image is not None:
        from PIL import Image

        with Image.open(image) as img:
            kwargs["image"] = img.convert("RGB")
    with torch.no_grad():
        video = pipe(**kwargs).frames[0]  # [F, H, W, 3] float in [0, 1], sRGB-encoded
    pixels = np.clip(np.rint(np.asarray(video, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    meta = {"source": "generated", "weights": str(Path(weights).resolve()), "finetuned":
            str(Path(finetuned).resolve()) if finetuned is not None else None, "task": task, "seed": seed,
            "steps": steps, "guidance": guidance, "negative_prompt": negative_prompt, "precision": precision,
            "image": str(Path(image).resolve()) if image is not None else None}
    return _write_video(target, pixels, prompt or "", meta, overwrite)


def _write_video(target: Path, pixels: np.ndarray, prompt: str, meta: dict, overwrite: bool) -> Path:
    """Assemble the posed video folder under a temporary name, then rename it to ``target``
    (replacing a previous one only when ``overwrite``: the caller refuses it otherwise)."""
    if target.exists() and not overwrite:
        raise GenerateError(f"{target} exists: pass --overwrite or another --material-id")
    with staged_folder(target) as tmp:
        for i, frame in enumerate(pixels):
            write_png(frame_path(tmp, i), frame)
        count, height, width = pixels.shape[:3]
        save_poses(tmp / POSES_FILE, video_trajectory(count), width=int(width), height=int(height), sample_size=1.0)
        write_json(tmp / CAPTION_FILE, {**{k: prompt for k in CAPTION_KEYS}, "metadata": meta})
        write_json(tmp / DONE_FILE, {"frames": int(count), "width": int(width), "height": int(height)})
    log.info("wrote %d frames of %dx%d to %s", count, width, height, target)
    return target
