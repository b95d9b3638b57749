"""Wan2.1 pipelines read from a local folder in the diffusers layout — never downloaded.

A weights folder is what ``DiffusionPipeline.save_pretrained`` writes (and what the
``Wan-AI/Wan2.1-*-Diffusers`` repositories hold)::

    model_index.json        _class_name WanPipeline (text-to-video) or WanImageToVideoPipeline
    transformer/            WanTransformer3DModel: config.json + *.safetensors (the DiT)
    vae/                    AutoencoderKLWan: config.json + *.safetensors
    text_encoder/           UMT5EncoderModel: config.json + *.safetensors
    tokenizer/              tokenizer.json / spiece.model + tokenizer_config.json
    scheduler/              scheduler_config.json (UniPC or FlowMatchEuler, ``flow_shift``/``shift``)
    image_encoder/          image-to-video only: CLIPVisionModel
    image_processor/        image-to-video only: preprocessor_config.json

:func:`check_weights_dir` names everything missing before any weight is read;
:func:`load_pipeline` loads with ``local_files_only=True``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

PIPELINE_CLASSES = {"WanPipeline": "t2v", "WanImageToVideoPipeline": "i2v"}
"""``model_index.json`` class names this package reads, and the task each one runs."""
_MODEL_PARTS = ("transformer", "vae", "text_encoder")
_I2V_MODEL_PARTS = ("image_encoder",)
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
DEFAULT_FLOW_SHIFT = 3.0
"""Flow-matching shift when the scheduler config states none (Wan2.1's value at 480p/512²)."""


class WeightsError(ValueError):
    """A weights folder is missing, not in the diffusers Wan layout, or lacks a component."""


def check_weights_dir(path: str | Path) -> str:
    """Check that ``path`` holds a complete Wan2.1 pipeline (layout in the module docstring).

    Only file names and the small JSON files are read.

    Returns:
        ``"t2v"`` (WanPipeline) or ``"i2v"`` (WanImageToVideoPipeline).

    Raises:
        WeightsError: naming the folder and every missing part.
    """
    path = Path(path)
    if not path.is_dir():
        raise WeightsError(f"no Wan weights folder at {path} (give --weights a local diffusers folder; "
                           "nothing is downloaded)")
    index_file = path / "model_index.json"
    if not index_file.is_file():
        raise WeightsError(f"{path} is not a diffusers pipeline folder: model_index.json is missing "
                           "(save one with WanPipeline.save_pretrained or use a Wan2.1-*-Diffusers folder)")
    try:
        index = json.loads(index_file.read_text())
        cls = index["_class_name"]
    except (ValueError, KeyError, TypeError) as e:
        raise WeightsError(f"{index_file}: not a readable model_index.json ({e})") from e
    if cls not in PIPELINE_CLASSES:
        raise WeightsError(f"{path} holds a {cls}, not a Wan2.1 pipeline ({' or '.join(PIPELINE_CLASSES)})")
    task = PIPELINE_CLASSES[cls]
    missing = []
    for part in _MODEL_PARTS + (_I2V_MODEL_PARTS if task == "i2v" else ()):
        folder = path / part
        if not (folder / "config.json").is_file():
            missing.append(f"{part}/config.json")
        if not folder.is_dir() or not any(p.name.endswith(_WEIGHT_SUFFIXES) for p in folder.iterdir()):
            missing.append(f"{part}/*.safetensors")
    tokenizer = path / "tokenizer"
    if not any((tokenizer / name).is_file() for name in ("tokenizer.json", "spiece.model")):
        missing.append("tokenizer/tokenizer.json (or spiece.model)")
    if not (path / "scheduler" / "scheduler_config.json").is_file():
        missing.append("scheduler/scheduler_config.json")
    if task == "i2v" and not (path / "image_processor" / "preprocessor_config.json").is_file():
        missing.append("image_processor/preprocessor_config.json")
    if missing:
        raise WeightsError(f"{path} ({cls}) is incomplete; missing: {', '.join(missing)}")
    return task


def load_pipeline(path: str | Path, frozen_dtype=None, transformer_dtype=None):
    """Load the Wan pipeline in ``path`` (checked by :func:`check_weights_dir` first).

    Args:
        path: local diffusers folder.
        frozen_dtype: torch dtype of the VAE, text and image encoders (default float32).
        transformer_dtype: torch dtype of the DiT (default ``frozen_dtype``). Modules Wan keeps
            in float32 (norms, time embedding, RoPE) stay float32 either way.

    Returns:
        a ``WanPipeline`` or ``WanImageToVideoPipeline`` on the CPU.
    """
    import torch
    from diffusers import WanImageToVideoPipeline, WanPipeline

    task = check_weights_dir(path)
    frozen_dtype = frozen_dtype or torch.float32
    dtypes = {"default": frozen_dtype, "transformer": transformer_dtype or frozen_dtype}
    cls = WanImageToVideoPipeline if task == "i2v" else WanPipeline
    try:
        pipe = cls.from_pretrained(str(path), dtype=dtypes, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise WeightsError(f"{path}: the Wan pipeline does not load ({type(e).__name__}: {e})") from e
    pipe.set_progress_bar_config(disable=True)
    return pipe


def flow_shift(pipe) -> float:
    """The flow-matching shift of ``pipe``'s scheduler config (``flow_shift`` of Wan's UniPC
    scheduler or ``shift`` of FlowMatchEuler), else :data:`DEFAULT_FLOW_SHIFT`."""
    config = pipe.scheduler.config
    for key in ("flow_shift", "shift"):
        value = config.get(key)
        if value is not None:
            return float(value)
    return DEFAULT_FLOW_SHIFT


def task_of(pipe) -> str:
    """``"t2v"`` or ``"i2v"`` for a loaded Wan pipeline."""
    return PIPELINE_CLASSES[type(pipe).__name__]
