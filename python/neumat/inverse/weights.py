"""Pretrained weights for :class:`~.model.MVInverse` from local files (nothing is downloaded).

Seed §6: the DINOv2 encoder and the alternating-attention decoder start from Pi3's released
weights, the ResNeXt from the WSL weights of Mahajan et al. (2018). Files are safetensors
(``.safetensors``) or torch checkpoints (anything else; read with ``weights_only=True``: no
pickled code), optionally wrapped in a ``"model"`` / ``"state_dict"`` entry. Accepted layouts:

==========  ======================================================  ==========================
source      tensor names                                            into
==========  ======================================================  ==========================
Pi3         ``encoder.*`` (DINOv2 naming), ``decoder.<i>.*``,       ``encoder``, ``decoder``
            ``register_token``; its point / confidence / camera
            decoders and heads are not used
DINOv2      Meta's (``cls_token``, ``register_tokens``,             ``encoder``
            ``pos_embed`` with the class position, ``blocks.*``,
            ``mask_token``) or timm's (``reg_token``, ...)
ResNeXt     torchvision / WSL / timm naming (``conv1``, ``bn1``,    ``detail``
            ``layer1..4``); ``fc.*`` unused
==========  ======================================================  ==========================

Meta's DINOv2 naming becomes timm's as timm itself converts it: the class token's position
embedding is folded into the class token (timm's registered DINOv2 has no position for the
class and register tokens), ``register_tokens`` becomes ``reg_token``. A file lacking tensors
the model needs, or holding them at other shapes, is refused with a :class:`WeightsError`
that lists them; nothing is loaded then.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .model import MVInverse

log = logging.getLogger(__name__)

OPTIONAL = ("num_batches_tracked",)
"""Tensor name endings a file may lack (batch-norm step counters; older checkpoints omit them)."""


class WeightsError(ValueError):
    """A weights file does not fit the model part it is loaded into; the message lists the
    missing or mis-shaped tensors."""


@dataclass
class LoadReport:
    """What one file contributed."""

    part: str
    """Model part filled (``"encoder"``, ``"decoder"``, ``"detail"``)."""
    path: str
    """The file."""
    loaded: int
    """Tensors loaded."""
    unused: list[str] = field(default_factory=list)
    """Tensors of the file that no part used."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file or torch checkpoint (on CPU).

    Raises:
        FileNotFoundError: no such file.
        WeightsError: the file holds no tensor dictionary.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist (weights load from local files only)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    data = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not any(isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsError(f"{path} holds no tensor dictionary (a safetensors file or a torch state dict)")
    return {k.removeprefix("module."): v for k, v in data.items() if isinstance(v, torch.Tensor)}


def dinov2_to_timm(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Meta's DINOv2 (with registers) tensor names -> timm's (module docstring); timm-named
    input passes through. ``mask_token`` (masked pretraining only) is dropped."""
    out = {k: v for k, v in tensors.items() if k != "mask_token"}
    if "register_tokens" in out:
        out["reg_token"] = out.pop("register_tokens")
        pos = out.pop("pos_embed")
        out["cls_token"] = out["cls_token"] + pos[:, :1]
        out["pos_embed"] = pos[:, 1:]
    return out


def assign(parts: list[tuple[nn.Module, dict[str, torch.Tensor], str]], path: str | Path) -> list[int]:
    """Load each ``(module, tensors, part name)`` (tensors named as in ``module.state_dict()``),
    all or nothing: every part is checked before any is loaded.

    Returns:
        The number of tensors loaded per part.
    Raises:
        WeightsError: tensors of a module missing from its ``tensors`` or of another shape
            (listing them, with the file and the part); then nothing is loaded.
    """
    for module, tensors, part in parts:
        own = module.state_dict()
        missing = [k for k in own if k not in tensors and not k.endswith(OPTIONAL)]
        shapes = [f"{k}: file {tuple(tensors[k].shape)}, model {tuple(v.shape)}" for k, v in own.items()
                  if k in tensors and tensors[k].shape != v.shape]
        if missing or shapes:
            lines = []
            if missing:
                lines.append(f"{len(missing)} missing tensor(s): {', '.join(missing[:24])}"
                             + (f", ... (+{len(missing) - 24} more)" if len(missing) > 24 else ""))
            if shapes:
                lines.append(f"{len(shapes)} tensor(s) of another shape: {'; '.join(shapes[:12])}"
                             + (f"; ... (+{len(shapes) - 12} more)" if len(shapes) > 12 else ""))
            raise WeightsError(f"{path} does not fit the model's {part}: " + "; ".join(lines)
                               + ". Is it the right checkpoint for this model config? Nothing was loaded.")
    counts = []
    for module, tensors, _ in parts:
        own = module.state_dict()
        module.load_state_dict({k: tensors[k] for k in own if k in tensors}, strict=False)
        counts.append(sum(1 for k in own if k in tensors))
    return counts


def _sub(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix``, with it removed."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_dinov2(model: MVInverse, path: str | Path) -> LoadReport:
    """Fill the encoder from a DINOv2 checkpoint (Meta or timm naming; ``encoder.`` / ``backbone.``
    prefixes stripped)."""
    tensors = read_state_dict(path)
    for prefix in ("encoder.", "backbone."):
        if any(k.startswith(prefix) for k in tensors):
            tensors = _sub(tensors, prefix)
    tensors = dinov2_to_timm(tensors)
    (n,) = assign([(model.encoder, tensors, "encoder")], path)
    own = model.encoder.state_dict()
    return LoadReport("encoder", str(path), n, sorted(k for k in tensors if k not in own))


def load_pi3(model: MVInverse, path: str | Path) -> list[LoadReport]:
    """Fill the encoder and the decoder from Pi3's checkpoint (module docstring)."""
    tensors = read_state_dict(path)
    encoder = dinov2_to_timm(_sub(tensors, "encoder."))
    decoder = {re.sub(r"^decoder\.(\d+)\.", r"blocks.\1.", k): v for k, v in tensors.items()
               if re.match(r"decoder\.\d+\.", k)}
    if "register_token" in tensors:
        decoder["register_token"] = tensors["register_token"]
    n_enc, n_dec = assign([(model.encoder, encoder, "encoder"), (model.decoder, decoder, "decoder")], path)
    used = {"register_token"} | {k for k in tensors if k.startswith("encoder.") or re.match(r"decoder\.\d+\.", k)}
    unused = sorted(k for k in tensors if k not in used)
    log.info("Pi3 weights %s: %d encoder and %d decoder tensors; %d of its tensors unused (its 3D heads)",
             path, n_enc, n_dec, len(unused))
    return [LoadReport("encoder", str(path), n_enc), LoadReport("decoder", str(path), n_dec, unused)]


def load_resnext(model: MVInverse, path: str | Path) -> LoadReport:
    """Fill the ResNeXt detail encoder (torchvision / WSL / timm naming; ``fc.*`` unused)."""
    if model.detail is None:
        raise WeightsError("this model fuses no ResNeXt features (fused_heads is empty): no ResNeXt to load")
    tensors = read_state_dict(path)
    (n,) = assign([(model.detail, tensors, "detail")], path)
    own = model.detail.state_dict()
    return LoadReport("detail", str(path), n, sorted(k for k in tensors if k not in own))


def load_pretrained(model: MVInverse, pi3: str | Path | None = None, dinov2: str | Path | None = None,
                    resnext: str | Path | None = None) -> list[LoadReport]:
    """The seed's initialization: Pi3's encoder and decoder (or a DINOv2 encoder alone) and the
    ResNeXt; parts without a file keep their random weights.

    Raises:
        ValueError: both ``pi3`` and ``dinov2`` given (both fill the encoder).
        WeightsError: a file that does not fit (:func:`assign`).
    """
    if pi3 is not None and dinov2 is not None:
        raise ValueError("give Pi3 weights (encoder + decoder) or DINOv2 weights (encoder), not both")
    reports = []
    if pi3 is not None:
        reports += load_pi3(model, pi3)
    if dinov2 is not None:
        reports.append(load_dinov2(model, dinov2))
    if resnext is not None:
        reports.append(load_resnext(model, resnext))
    return reports
