"""``neumat video finetune | generate | tiny-weights``: the Wan2.1 "virtual gonioreflectometer"
(:mod:`neumat.video.finetune`, :mod:`neumat.video.generate`), registered on ``neumat video``.

Examples::

    neumat video finetune --weights Wan2.1-T2V-1.3B-Diffusers --data out/videos --out runs/t2v
    neumat video finetune --weights W --data out/videos --out runs/full --mode full --set precision=bf16
    neumat video finetune --weights W --data out/videos --out runs/t2v --resume --steps 4000
    accelerate launch --multi_gpu --num_processes 4 -m neumat video finetune --weights W --data D --out R
    neumat video generate --weights W --finetuned runs/t2v --prompt "green moss" --out out/generated
    neumat video generate --weights Wan2.1-I2V-14B-480P-Diffusers --image photo.png --out out/generated
    neumat video tiny-weights /tmp/wan-tiny            # a tiny random Wan for a CPU smoke run
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .options import parse_size
from .train_cmd import setup_logging


def finetune(
    weights: Annotated[Path, typer.Option(help="Local Wan2.1 folder in the diffusers layout (WanPipeline or "
                                               "WanImageToVideoPipeline); never downloaded.")],
    data: Annotated[Path, typer.Option(help="Dataset of posed videos: <data>/<material>/<trajectory>/ with "
                                            "frames/, poses.json, caption.json, done.json.")],
    out: Annotated[Path, typer.Option(help="Run folder: config.json, ckpt_*.pt, final/ (the finished model).")],
    mode: Annotated[Optional[str], typer.Option(help="lora (rank-32 adapters on the attention projections) or "
                                                     "full (every DiT weight). Default: lora.")] = None,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Optimizer steps of the whole run. Default 1000.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="Config file (.json or .toml, any subset of the fields "
                                                        "of neumat.video.finetune_config.FinetuneConfig).")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override a config field: field=value (e.g. lr=2e-5, precision=bf16), repeatable.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint in --out (its config.json "
                                              "first, then --config/--set/options).")] = False,
    device: Annotated[str, typer.Option(help="auto (this process's GPU, else CPU) or cpu.")] = "auto",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Finetune Wan2.1 on posed material videos (DiT only: LoRA or full; flow matching; AdamW 1e-5).

    Checkpoints resume exactly; multi-GPU under `accelerate launch`. Bad input exits 2 before any
    weight is loaded."""
    from ..train.config_io import ConfigError, apply_overrides, merge_config, read_config_file
    from ..video.finetune import finetune as run
    from ..video.finetune_config import FinetuneConfig
    from ..video.folder import VideoFolderError
    from ..video.wan_parts import WeightsError

    setup_logging()
    try:
        cfg = FinetuneConfig()
        saved = out / "config.json"
        if resume and saved.is_file():
            cfg = merge_config(cfg, read_config_file(saved))
        if config is not None:
            cfg = merge_config(cfg, read_config_file(config))
        cfg = apply_overrides(cfg, list(overrides or []) + [f"{k}={json.dumps(v)}" for k, v in
                                                            (("mode", mode), ("steps", steps)) if v is not None])
        result = run(weights, data, out, cfg, resume=resume, device=device, progress=progress)
    except (ConfigError, VideoFolderError, WeightsError) as e:
        raise typer.BadParameter(str(e)) from None
    if result.step_seconds:
        typer.echo(f"{result.steps} steps; last loss {result.history[-1]['loss']:.5f}; "
                   f"{sum(result.step_seconds) / len(result.step_seconds):.3f} s/step; finished model in {result.final}")


def generate(
    weights: Annotated[Path, typer.Option(help="Local Wan2.1 folder (diffusers layout): the base model.")],
    out: Annotated[Path, typer.Option(help="Dataset folder; the video goes to <out>/<material-id>/video/.")],
    prompt: Annotated[Optional[str], typer.Option(help="Text prompt (text-to-video; optional with --image).")] = None,
    image: Annotated[Optional[Path], typer.Option(help="Conditioning image (image-to-video weights).")] = None,
    finetuned: Annotated[Optional[Path], typer.Option(help="A `neumat video finetune` run folder (or its final/) "
                                                           "applied on top of --weights.")] = None,
    material_id: Annotated[str, typer.Option(help="Name of the material folder.")] = "generated",
    frames: Annotated[int, typer.Option(min=5, help="Frames, 4k+1 (the trajectory's 81).")] = 81,
    size: Annotated[str, typer.Option(help="Frame WIDTHxHEIGHT, multiples of 16.")] = "512x512",
    steps: Annotated[int, typer.Option(min=1, help="Denoising steps.")] = 50,
    guidance: Annotated[float, typer.Option(min=1.0, help="Classifier-free guidance scale (1: off).")] = 5.0,
    negative_prompt: Annotated[str, typer.Option(help="Unconditional text of guidance.")] = "",
    seed: Annotated[int, typer.Option(help="Seed of the initial noise.")] = 0,
    precision: Annotated[str, typer.Option(help="fp32 or bf16.")] = "fp32",
    device: Annotated[str, typer.Option(help="auto (CUDA if available) or a torch device.")] = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing video of the same name.")] = False,
    progress: Annotated[bool, typer.Option(help="Show the denoising progress bar.")] = True,
) -> None:
    """Generate a posed material video: frames, the trajectory's poses, caption and done.json.

    The folder is laid out like a rendered one, ready for the LRM and `neumat video rpc`."""
    from ..video.finetuned import FinetunedError
    from ..video.generate import GenerateError, generate as run
    from ..video.wan_parts import WeightsError

    setup_logging()
    width, height = parse_size(size)
    try:
        video = run(weights, out, prompt=prompt, image=image, finetuned=finetuned, material_id=material_id,
                    frames=frames, width=width, height=height, steps=steps, guidance=guidance,
                    negative_prompt=negative_prompt, seed=seed, precision=precision, device=device,
                    overwrite=overwrite, progress=progress)
    except (GenerateError, WeightsError, FinetunedError) as e:
        raise typer.BadParameter(str(e)) from None
    typer.echo(str(video))


def tiny_weights(
    path: Annotated[Path, typer.Argument(help="Folder to write (diffusers layout).")],
    image_to_video: Annotated[bool, typer.Option("--i2v", help="An image-to-video pipeline.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
) -> None:
    """Write a tiny random Wan2.1 pipeline for CPU smoke runs of finetune and generate.

    Real diffusers classes with a few thousand weights; it generates noise-like videos, not materials."""
    from ..video.wan_tiny import write_tiny_wan

    typer.echo(str(write_tiny_wan(path, image_to_video, seed)))
