"""Weights of the LRM from local folders (nothing is downloaded): pretrained Wan parts to start
from, and the trained LRM that ``neumat lrm reconstruct`` / ``neumat video2mat`` load.

**Pretrained Wan2.1** (:func:`load_wan_weights`): a diffusers folder such as
``Wan2.1-T2V-1.3B-Diffusers`` — only ``transformer/`` (``WanTransformer3DModel``) and ``vae/``
(``AutoencoderKLWan``) are read, each ``config.json`` + one or more ``*.safetensors`` shards. Every
tensor of the network must be there at its shape, except the new upsampler head
(``decoder.conv_out``: 2C outputs instead of RGB); the heads (:data:`.model.HEAD_PREFIXES`) are then
re-drawn (the texture head zeroed with ``model.residual``). Any missing or mis-shaped tensor is a
:class:`LrmWeightsError` listing them, raised after reading only the files' headers: nothing is
loaded then.

**A trained LRM** (:func:`save_lrm`, :func:`load_lrm`), one folder::

    lrm.json                {"format": WEIGHTS_FORMAT, "model": LrmModelConfig fields,
                             "value_scale": float, "max_offset": float, "training": {...}}
    lrm.safetensors         the network's state dict (float32)
    decoders.safetensors    the universal NeuMIP decoders trained with it
                            (neumat-neumip-decoders-v1, :func:`neumat.train.neumip.load_decoders`)

:func:`check_lrm` validates all of it from the JSON and the safetensors headers (shapes against
the network built on the meta device) before anything heavy is read or allocated. Files are
written atomically into a staged folder that replaces the target in one rename.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..train.config_io import ConfigError, config_from_dict, config_to_dict
from .config import LrmModelConfig
from .model import LrmNetwork

log = logging.getLogger(__name__)

WEIGHTS_FORMAT = "neumat.lrm.weights/1"
"""``format`` of ``lrm.json``."""
CONFIG_FILE, NETWORK_FILE, DECODERS_FILE = "lrm.json", "lrm.safetensors", "decoders.safetensors"
"""The files of a trained LRM folder (module docstring)."""
WAN_PARTS = {"transformer": "dit.", "vae": "vae."}
"""Subfolders of a diffusers Wan folder read, and the network prefix their tensors load into."""
NEW_HEAD = "vae.decoder.conv_out."
"""Prefix of the tensors a pretrained VAE cannot provide (other output width)."""


class LrmWeightsError(ValueError):
    """A weights folder is missing, incomplete, corrupt or does not fit the network; the message
    names the folder and what is wrong."""


def _headers(files: list[Path]) -> dict[str, tuple[tuple[int, ...], Path]]:
    """``{name: (shape, file)}`` from the headers of safetensors ``files`` (no tensor read)."""
    from safetensors import SafetensorError, safe_open

    out: dict[str, tuple[tuple[int, ...], Path]] = {}
    for path in files:
        try:
            with safe_open(str(path), "pt") as f:
                for k in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                    out[k] = (tuple(f.get_slice(k).get_shape()), path)
        except (OSError, SafetensorError, ValueError) as e:
            raise LrmWeightsError(f"{path}: not a readable safetensors file ({e})") from e
    return out


def _compare(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[tuple[int, ...], Path]],
             where: str) -> None:
    """Raise :class:`LrmWeightsError` naming every tensor of ``expected`` missing from ``found``
    or at another shape."""
    missing = [k for k in expected if k not in found]
    shaped = [f"{k} {list(found[k][0])} (expected {list(s)})" for k, s in expected.items()
              if k in found and found[k][0] != tuple(s)]
    if missing or shaped:
        parts = ([f"{len(missing)} missing: {', '.join(missing[:8])}{' …' if len(missing) > 8 else ''}"] if missing else [])
        parts += [f"{len(shaped)} of another shape: {', '.join(shaped[:8])}"] if shaped else []
        raise LrmWeightsError(f"{where} does not fit the network; " + "; ".join(parts) + ". Nothing was loaded.")


def _meta_shapes(cfg: LrmModelConfig) -> dict[str, tuple[int, ...]]:
    """Shapes of every state-dict tensor of the network of ``cfg`` (built on the meta device)."""
    with torch.device("meta"):
        net = LrmNetwork(cfg)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def wan_files(folder: str | Path) -> dict[str, list[Path]]:
    """``{"transformer": [shards], "vae": [shards]}`` of a diffusers Wan folder.

    Raises:
        LrmWeightsError: no such folder, or a part without ``config.json`` or safetensors shards.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise LrmWeightsError(f"no Wan weights folder at {folder} (a local diffusers folder such as "
                              "Wan2.1-T2V-1.3B-Diffusers; nothing is downloaded)")
    out, missing = {}, []
    for part in WAN_PARTS:
        shards = sorted((folder / part).glob("*.safetensors"))
        if not (folder / part / "config.json").is_file():
            missing.append(f"{part}/config.json")
        if not shards:
            missing.append(f"{part}/*.safetensors")
        out[part] = shards
    if missing:
        raise LrmWeightsError(f"{folder} is not a diffusers Wan folder the LRM can start from; missing: "
                              f"{', '.join(missing)}")
    return out


def _check_wan(folder: str | Path, shapes: dict[str, tuple[int, ...]]) -> dict[str, list[Path]]:
    files = wan_files(folder)
    for part, prefix in WAN_PARTS.items():
        expected = {k[len(prefix):]: s for k, s in shapes.items() if k.startswith(prefix) and not k.startswith(NEW_HEAD)}
        _compare(expected, _headers(files[part]), f"{Path(folder) / part}")
    return files


def check_wan_weights(folder: str | Path, model: LrmModelConfig) -> None:
    """Check, from file headers and the network built on the meta device, that the Wan folder
    ``folder`` fits the network of ``model`` (raises :class:`LrmWeightsError`; nothing is loaded)."""
    _check_wan(folder, _meta_shapes(model))


def load_wan_weights(net: LrmNetwork, folder: str | Path) -> dict[str, int]:
    """Fill ``net``'s DiT and VAE from the Wan folder ``folder`` and re-draw its heads (module
    docstring). Returns the tensors loaded per part.

    Raises:
        LrmWeightsError: (before loading anything) the folder, a file or a tensor does not fit.
    """
    from safetensors.torch import load_file

    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    files = _check_wan(folder, shapes)
    counts = {}
    for part, prefix in WAN_PARTS.items():
        state = {}
        for shard in files[part]:
            state.update({prefix + k: v for k, v in load_file(str(shard)).items()
                          if (prefix + k) in shapes and not (prefix + k).startswith(NEW_HEAD)})
        net.load_state_dict(state, strict=False)
        counts[part] = len(state)
    net.reset_heads()
    log.info("initialised the LRM from %s (%d DiT and %d VAE tensors; heads random)", folder,
             counts["transformer"], counts["vae"])
    return counts


@dataclass
class LrmWeights:
    """A trained LRM folder's description (:func:`check_lrm`)."""

    folder: Path
    """The folder."""
    model: LrmModelConfig
    """The network's sizes."""
    value_scale: float
    """BTF value of decoder output 1.0 in the bundles it writes."""
    max_offset: float
    """The decoders' largest |Δu| per axis, UV units."""
    training: dict[str, Any]
    """What the run recorded (steps, data, loss, perceptual term)."""


def save_lrm(folder: str | Path, net: LrmNetwork, decoders, value_scale: float, max_offset: float,
             training: dict[str, Any]) -> Path:
    """Write the trained LRM folder (module docstring), replacing ``folder`` in one rename."""
    from safetensors.torch import save

    from ..fileio import atomic_write_bytes, staged_folder
    from ..train.neumip.export import canonical_safetensors, save_decoders

    state = {k: v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()}
    doc = {"format": WEIGHTS_FORMAT, "model": config_to_dict(net.cfg), "value_scale": float(value_scale),
           "max_offset": float(max_offset), "training": training}
    with staged_folder(folder) as tmp:
        atomic_write_bytes(tmp / NETWORK_FILE, canonical_safetensors(save(state)))
        save_decoders(decoders, tmp / DECODERS_FILE, max_offset, list(training.get("materials", [])),
                      {"lrm": True, **{k: v for k, v in training.items() if k != "materials"}})
        atomic_write_bytes(tmp / CONFIG_FILE, json.dumps(doc, indent=1, sort_keys=True).encode())
    return Path(folder)


def check_lrm(folder: str | Path) -> LrmWeights:
    """Validate a trained LRM folder from its JSON and headers only (module docstring).

    Raises:
        LrmWeightsError: no folder, a missing file, unreadable or foreign JSON, an invalid model
            config, a network file that is truncated or does not fit that config, an unreadable
            decoder file or decoders of another channel count.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise LrmWeightsError(f"no LRM weights folder at {folder} (`neumat lrm train` writes <run>/weights)")
    missing = [n for n in (CONFIG_FILE, NETWORK_FILE, DECODERS_FILE) if not (folder / n).is_file()]
    if missing:
        raise LrmWeightsError(f"{folder} is not a trained LRM folder; missing: {', '.join(missing)}")
    try:
        doc = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, ValueError) as e:
        raise LrmWeightsError(f"{folder / CONFIG_FILE}: not readable JSON ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != WEIGHTS_FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise LrmWeightsError(f"{folder / CONFIG_FILE}: format {got!r}, expected {WEIGHTS_FORMAT!r}")
    try:
        model = config_from_dict(doc["model"], LrmModelConfig, "model.")
        model.validate()
        value_scale, max_offset = float(doc["value_scale"]), float(doc["max_offset"])
        if not (value_scale > 0 and max_offset > 0):
            raise ValueError(f"value_scale {value_scale} and max_offset {max_offset} must be > 0")
    except (KeyError, TypeError, ValueError) as e:  # ConfigError is a ValueError
        raise LrmWeightsError(f"{folder / CONFIG_FILE}: {e}") from e
    _compare(_meta_shapes(model), _headers([folder / NETWORK_FILE]), str(folder / NETWORK_FILE))
    _decoders(folder, model)
    return LrmWeights(folder, model, value_scale, max_offset, dict(doc.get("training", {})))


def _decoders(folder: Path, model: LrmModelConfig):
    """The folder's decoders (frozen, CPU) and their file's ``max_offset`` and metadata."""
    from ..train.neumip import load_decoders

    try:
        decoders, max_offset, info = load_decoders(folder / DECODERS_FILE)
    except ConfigError as e:
        raise LrmWeightsError(str(e)) from e
    if decoders.channels != model.channels:
        raise LrmWeightsError(f"{folder / DECODERS_FILE}: decoders read {decoders.channels} channels, the network "
                              f"writes {model.channels}")
    return decoders, max_offset, info


def load_lrm(folder: str | Path, device: str | torch.device = "cpu") -> tuple[LrmNetwork, Any, LrmWeights]:
    """``(network in eval mode, universal decoders (frozen), description)`` of a trained LRM
    folder, checked first (:func:`check_lrm`)."""
    from safetensors.torch import load_file

    info = check_lrm(folder)
    net = LrmNetwork(info.model)
    net.load_state_dict(load_file(str(info.folder / NETWORK_FILE)))
    decoders, _, _ = _decoders(info.folder, info.model)
    return net.to(device).eval(), decoders.to(device), info
