"""Atomic training checkpoints and the random-number state they carry.

A checkpoint ``<out>/ckpt_<step:08d>.pt`` is one ``torch.save`` dict (loaded back with
``weights_only=True``: tensors, numbers, strings, lists and dicts only — no pickled code):

=================  ==============================================================
``format``         :data:`CHECKPOINT_FORMAT`
``step``           optimizer steps completed
``config``         the resolved :class:`~neumat.train.config.TrainConfig` as a dict
``model``          ``TriplePlaneField.state_dict()`` (planes, decoder weights,
                   observer ranges)
``optimizer``      ``AdamW.state_dict()``
``scaler``         AMP gradient scaler state (empty dict when AMP is off)
``value_scale``,   the run's output encoding (:mod:`neumat.output_encoding`):
``output_*``       ``output_encoding`` (absent in older checkpoints: ``"linear"``) with
                   ``value_scale`` (float) or ``output_scale`` (3 floats, and
                   ``output_range_bits`` for ``"log-v1"``)
``angle_param``    the run's H/D plane parameterization (absent in older checkpoints:
                   ``"rusinkiewicz-concentric-v1"``)
``source``         data source spec (:mod:`neumat.train.sources`)
``rng``            Python, numpy-global, torch CPU and CUDA generator states
``history``        loss / validation records so far
=================  ==============================================================

That is a triple-plane run's (:class:`~neumat.train.loop.TriplePlaneModel`); the engine
(:mod:`neumat.train.engine`) writes ``format``, ``step``, ``config``, ``rng``, ``history`` and
``total_steps`` for every model and the plug-in the rest: a NeuMIP run
(:mod:`neumat.train.neumip.plugin`) writes ``model_kind`` ``"neumip"``, ``model`` (textures,
decoders, observer ranges), ``optimizer`` and ``neumip`` (stages, materials, ``max_offset``).

The training batches come from seeded per-step streams (:mod:`.sampling`), so the data
sampler has no state of its own; the global generators are saved anyway so that anything
drawing from them (now or later) resumes identically. Files are written to a temporary file
and renamed (:func:`neumat.fileio.atomic_write_bytes`): a kill leaves the previous
checkpoint intact and never a partial one. ``config.json`` beside them holds the same config.
"""

from __future__ import annotations

import io
import logging
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..fileio import atomic_write_bytes

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "neumat.train.checkpoint/1"
"""Value of a checkpoint's ``format`` key."""
_NAME = re.compile(r"ckpt_(\d{8})\.pt")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or not a neumat training checkpoint."""


def checkpoint_path(out: str | Path, step: int) -> Path:
    """``<out>/ckpt_<step:08d>.pt``."""
    return Path(out) / f"ckpt_{step:08d}.pt"


def list_checkpoints(out: str | Path) -> list[Path]:
    """Checkpoints in ``out`` ordered by step (oldest first)."""
    out = Path(out)
    if not out.is_dir():
        return []
    return sorted((p for p in out.iterdir() if _NAME.fullmatch(p.name)), key=lambda p: p.name)


def latest_checkpoint(out: str | Path) -> Path | None:
    """The newest checkpoint in ``out``, or None."""
    found = list_checkpoints(out)
    return found[-1] if found else None


def load_latest_checkpoint(out: str | Path,
                           map_location: str | torch.device = "cpu") -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint in ``out`` that loads, with its state (:func:`load_checkpoint`);
    None when ``out`` holds no checkpoint.

    A newer checkpoint that does not load (truncated by a full disk, damaged on disk) is skipped
    with a warning naming it and why, so ``--resume`` continues from the newest intact one. The
    damaged file stays (for inspection) until the run writes that step again or prunes it.

    Raises:
        CheckpointError: ``out`` holds checkpoints and none of them loads (each named).
    """
    failures = []
    for path in reversed(list_checkpoints(out)):
        try:
            return path, load_checkpoint(path, map_location)
        except CheckpointError as e:
            log.warning("skipping a checkpoint that does not load, %s; trying the one before it", e)
            failures.append(str(e))
    if failures:
        raise CheckpointError(f"no intact checkpoint in {out}: " + "; ".join(failures))
    return None


def resolve_checkpoint(path: str | Path) -> Path:
    """``path`` itself, or for a run directory its newest checkpoint.

    Raises:
        CheckpointError: a directory without checkpoints, or a path that does not exist.
    """
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise CheckpointError(f"no ckpt_*.pt checkpoint in {path}")
        return found
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    return path


def rng_state() -> dict[str, Any]:
    """Current states of Python's, numpy's global and torch's (CPU + every CUDA device) generators."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": list(random.getstate()[1]) + [random.getstate()[0]],
        "python_gauss": random.getstate()[2],
        "numpy": {"kind": kind, "keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by :func:`rng_state`."""
    py = state["python"]
    random.setstate((py[-1], tuple(py[:-1]), state["python_gauss"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], np.asarray(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (see the module docstring) atomically to ``path``."""
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buf)
    out = atomic_write_bytes(path, buf.getvalue())
    log.debug("checkpoint %s (%d bytes)", out, buf.tell())
    return out


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (safe ``weights_only`` loading)."""
    try:
        state = torch.load(Path(path), map_location=map_location, weights_only=True)
    except FileNotFoundError as e:
        raise CheckpointError(f"no checkpoint at {path}") from e
    except Exception as e:  # torch raises many types for corrupt/foreign files
        raise CheckpointError(f"{path}: not a readable neumat checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a neumat training checkpoint (format {CHECKPOINT_FORMAT!r} expected)")
    return state


def prune_checkpoints(out: str | Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints in ``out``."""
    for old in list_checkpoints(out)[:-keep]:
        old.unlink(missing_ok=True)
