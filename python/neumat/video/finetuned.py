"""The finished model of a finetuning run, ``<run>/final/``, and how a pipeline takes it on.

Only what was trained is written, never a copy of the frozen VAE or encoders::

    final/finetuned.json                    format, mode (lora | full), task (t2v | i2v),
                                            base weights folder, steps, the run's config
    final/pytorch_lora_weights.safetensors  mode lora: the adapters, in the diffusers LoRA format
                                            (``WanPipeline.load_lora_weights`` reads it)
    final/transformer/                      mode full: the DiT (``save_pretrained`` layout)

:func:`apply_finetuned` loads either onto a pipeline of the base weights. To save a complete
pipeline with a LoRA in it, :func:`fuse_for_saving` fuses and unloads the adapters first
(diffusers' ``save_pretrained`` of a pipeline with a live LoRA writes base weights that reload
as random, with only a warning).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..fileio import staged_folder

FINAL_DIR = "final"
"""Sub-folder of a run holding its finished model."""
MANIFEST_FILE = "finetuned.json"
"""Description of a finished model (module docstring)."""
FINETUNED_FORMAT = "neumat.video.finetuned/1"
"""``format`` of :data:`MANIFEST_FILE`."""
LORA_FILE = "pytorch_lora_weights.safetensors"
"""The adapters of a LoRA run, diffusers' default LoRA file name."""


class FinetunedError(ValueError):
    """A finished-model folder is missing, incomplete, or does not fit the pipeline given."""


def write_finetuned(run_dir: str | Path, transformer, manifest: dict[str, Any]) -> Path:
    """Write ``<run_dir>/final/`` for the (unwrapped) trained ``transformer``.

    Everything goes to a hidden temporary folder beside it that is renamed into place, so a
    reader sees the previous finished model or the new one, never a mix.

    Args:
        manifest: must hold ``mode`` (``"lora"`` | ``"full"``); written with ``format`` added.
            A full DiT is saved in its training dtype (float32 master weights); a pipeline loads
            it in its own dtype (:func:`apply_finetuned`).
    Returns:
        the ``final`` folder.
    """
    from diffusers import WanPipeline

    final = Path(run_dir) / FINAL_DIR
    with staged_folder(final) as tmp:
        if manifest["mode"] == "lora":
            from peft.utils import get_peft_model_state_dict

            layers = {k: v.detach().float().cpu() for k, v in get_peft_model_state_dict(transformer).items()}
            WanPipeline.save_lora_weights(str(tmp), transformer_lora_layers=layers, weight_name=LORA_FILE)
        else:
            transformer.save_pretrained(str(tmp / "transformer"))
        (tmp / MANIFEST_FILE).write_text(json.dumps({"format": FINETUNED_FORMAT, **manifest}, indent=1) + "\n")
    return final


def read_manifest(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The finished-model folder ``path`` (a run folder or its ``final/``) and its manifest.

    Raises:
        FinetunedError: no manifest, another format, or the files the mode needs are missing.
    """
    path = Path(path)
    if not (path / MANIFEST_FILE).is_file() and (path / FINAL_DIR / MANIFEST_FILE).is_file():
        path = path / FINAL_DIR
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
    except (OSError, ValueError) as e:
        raise FinetunedError(f"{path}: not a finished finetuning run (no readable {MANIFEST_FILE}: {e})") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FINETUNED_FORMAT:
        raise FinetunedError(f"{path / MANIFEST_FILE}: format {FINETUNED_FORMAT!r} expected")
    need = path / (LORA_FILE if manifest.get("mode") == "lora" else "transformer/config.json")
    if not need.is_file():
        raise FinetunedError(f"{path}: {manifest.get('mode')} finetune without {need.relative_to(path)}")
    return path, manifest


def apply_finetuned(pipe, path: str | Path) -> dict[str, Any]:
    """Load the finished model in ``path`` onto ``pipe`` (a pipeline of its base weights): the
    LoRA adapters (active, scale 1) or the full DiT in place of the base one.

    Returns:
        the manifest.
    Raises:
        FinetunedError: see :func:`read_manifest`; a model trained for the other task (t2v/i2v).
    """
    from diffusers import WanTransformer3DModel

    from .wan_parts import task_of

    path, manifest = read_manifest(path)
    if manifest.get("task") != task_of(pipe):
        raise FinetunedError(f"{path} was finetuned for {manifest.get('task')}, the weights are a {task_of(pipe)} model")
    dtype = pipe.transformer.dtype
    if manifest["mode"] == "lora":
        pipe.load_lora_weights(str(path), weight_name=LORA_FILE, adapter_name="neumat")
    else:
        pipe.transformer = WanTransformer3DModel.from_pretrained(str(path / "transformer"), dtype=dtype,
                                                                  local_files_only=True)
    return manifest


def fuse_for_saving(pipe) -> None:
    """Fuse any loaded LoRA into the base DiT weights and unload the adapters, so that
    ``pipe.save_pretrained`` writes the finetuned weights (module docstring)."""
    if getattr(pipe.transformer, "peft_config", None):
        pipe.fuse_lora()
        pipe.unload_lora_weights()
