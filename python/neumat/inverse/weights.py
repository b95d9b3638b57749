"""Pretrained weights for :class:`~.model.MVInverse` from local files (nothing is downloaded).

Seed §6: the DINOv2 encoder and the alternating-attention decoder start from Pi3's released
weights, the ResNeXt from the WSL weights of Mahajan et al. (2018). Files are safetensors
(``.safetensors``) or torch checkpoints (``.pth``, ``.pt``, ``.bin``; read with
``weights_only=True``: no pickled code), optionally wrapped in a ``"model"`` / ``"state_dict"``
entry. The published layouts, as their own code names the tensors:

=======  =================================================================  ===================
source   tensor names (published files)                                     fills
=======  =================================================================  ===================
Pi3      ``encoder.*`` (Meta's DINOv2 ViT-L/14 with registers, its          ``encoder``,
         ``mask_token`` deleted), ``decoder.<i>.{norm1, attn.{qkv, q_norm,  ``decoder``
         k_norm, proj}, ls1.gamma, norm2, mlp.{fc1, fc2}, ls2.gamma}``
         (36 blocks), ``register_token`` ``[1, 1, 5, 1024]``; its
         ``point_*`` / ``conf_*`` / ``camera_*`` decoders and heads and
         ``image_mean`` / ``image_std`` unused (yyfz/Pi3
         ``pi3/models/pi3.py``; ``model.safetensors`` on Hugging Face
         ``yyfz233/Pi3``; Pi3X's file names these parts alike)
DINOv2   Meta's (``cls_token``, ``register_tokens``, ``pos_embed`` with     ``encoder``
         the class position, ``mask_token``, ``patch_embed.proj``,
         ``blocks.<i>.*``, ``norm``: ``dinov2_vitl14_reg4_pretrain.pth``)
         or timm's (``reg_token``, ``pos_embed`` without class position:
         ``vit_large_patch14_reg4_dinov2.lvd142m``); without registers
         (``vit_large_patch14_dinov2``) for a model built so
ResNeXt  torchvision / WSL / timm (``conv1``, ``bn1``, ``layer1..4``,       ``detail``
         ``fc`` unused: ``resnext101_32x8d``, ``ig_resnext101_32x8d``)
=======  =================================================================  ===================

**Locating a part.** Each layout declares an *anchor* tensor (:data:`LAYOUTS`); its name in the
file gives the part's prefix (``""``, ``"model."``, ``"backbone."``, ``"module."`` … whatever
wraps it), and the part is every tensor under that prefix. A file without the anchor is not that
checkpoint; one with the anchor under several prefixes is ambiguous (both refused, naming the
file and the prefixes).

**Conversions** (timm's own, :func:`timm.models.vision_transformer._convert_dinov2`): Meta's
DINOv2 with registers becomes timm's — the class token's position embedding folded into the
class token (timm's registered DINOv2 gives the class and register tokens no position),
``register_tokens`` becomes ``reg_token``, ``mask_token`` (masked pretraining) is dropped. A
position embedding laid out for another grid (the published 37 × 37 of 518 pixels against the
model's :attr:`~.config.ModelConfig.encoder_img_size`) is resampled as timm resamples it when
it loads a checkpoint (:func:`timm.layers.resample_abs_pos_embed`: bicubic, antialiased).

**All or nothing.** Every part of every file is checked before any tensor is copied: a part
with missing tensors, tensors the model does not have (under the part's prefix, bar the unused
ones the layout declares), or tensors of other shapes raises :class:`WeightsError` naming the
file, the part, and the first tensors of each kind with their counts; then nothing is loaded.

**Folder** (``neumat inverse train --pretrained DIR``; :func:`load_pretrained_dir`)::

    DIR/pi3.safetensors       Pi3's model.safetensors (encoder + decoder)   or
    DIR/dinov2.safetensors    a DINOv2 encoder alone
    DIR/resnext.safetensors   the ResNeXt detail encoder (optional)

(any of the suffixes :data:`SUFFIXES`; one file per part).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .model import MVInverse
from .timm_import import import_timm

log = logging.getLogger(__name__)

SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
"""File suffixes of a weights folder's files (:func:`find_weight_files`)."""
OPTIONAL = ("num_batches_tracked",)
"""Tensor name endings a file may lack (batch-norm step counters; older checkpoints omit them)."""
SHOWN = 6
"""Tensors named per kind in an error message (the count says how many more)."""


class WeightsError(ValueError):
    """A weights file does not fit the model part it is loaded into; the message names the
    file, the part, and the missing, unexpected or mis-shaped tensors."""


@dataclass
class LoadReport:
    """What one file contributed to one model part."""

    part: str
    """Model part filled (``"encoder"``, ``"decoder"``, ``"detail"``)."""
    path: str
    """The file."""
    loaded: int
    """Tensors loaded."""
    unused: list[str] = field(default_factory=list)
    """Tensors of the file that no part used (sorted)."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file or torch checkpoint (on CPU).

    Raises:
        FileNotFoundError: no such file.
        WeightsError: the file does not read as either, or holds no tensor dictionary.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist (weights load from local files only)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # safetensors, pickle and zip errors have no common base
        raise WeightsError(f"{path} is not a readable {'safetensors file' if path.suffix == '.safetensors' else 'torch checkpoint'}"
                           f" ({type(e).__name__}: {e})") from e
    for key in ("model", "state_dict"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not any(isinstance(v, torch.Tensor) for v in data.values()):
        raise WeightsError(f"{path} holds no tensor dictionary (a safetensors file or a torch state dict)")
    return {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}


def part_prefix(tensors: dict[str, torch.Tensor], anchor: str, path: str | Path, layout: str) -> str:
    """The prefix under which ``tensors`` hold a part whose tensor ``anchor`` they contain
    (``"model.encoder."`` for ``"model.encoder.patch_embed.proj.weight"``).

    Raises:
        WeightsError: ``anchor`` under no prefix (not a ``layout`` checkpoint) or under several.
    """
    found = sorted(k[: -len(anchor)] for k in tensors if k.endswith(anchor)
                   and (len(k) == len(anchor) or k[-len(anchor) - 1] == "."))
    if not found:
        first = ", ".join(sorted(tensors)[:SHOWN])
        raise WeightsError(f"{path} is not a {layout} checkpoint: no tensor '{anchor}' under any prefix "
                           f"({len(tensors)} tensors, first: {first})")
    if len(found) > 1:
        raise WeightsError(f"{path} holds '{anchor}' under {len(found)} prefixes ({', '.join(map(repr, found))}): "
                           f"which {layout} part is meant is ambiguous; save that part alone")
    return found[0]


def under(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix``, with it removed."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def dinov2_to_timm(tensors: dict[str, torch.Tensor], vit: nn.Module) -> dict[str, torch.Tensor]:
    """A DINOv2 encoder's tensors (Meta's or timm's naming, no prefix) as timm's ViT ``vit``
    names them, the position embedding resampled to ``vit``'s patch grid (module docstring) when
    its patch positions form a square grid (otherwise it is left for :func:`assign` to refuse)."""
    import_timm()
    from timm.models.vision_transformer import _convert_dinov2

    out = dict(tensors)
    if "register_tokens" in out or "mask_token" in out:
        out = _convert_dinov2(out, vit)
    pos = out.get("pos_embed")
    if pos is not None and pos.shape != vit.pos_embed.shape and pos.shape[-1] == vit.pos_embed.shape[-1]:
        from timm.layers import resample_abs_pos_embed

        prefix = 0 if vit.no_embed_class else vit.num_prefix_tokens
        side = math.isqrt(max(pos.shape[1] - prefix, 0))
        if side * side != pos.shape[1] - prefix:  # another token layout: assign() names the mismatch
            return out
        out["pos_embed"] = resample_abs_pos_embed(pos, new_size=list(vit.patch_embed.grid_size), old_size=[side, side],
                                                  num_prefix_tokens=prefix, interpolation="bicubic", antialias=True)
        log.info("DINOv2 position embedding resampled from %d x %d to %d x %d patches", side, side,
                 *vit.patch_embed.grid_size)
    return out


def _listing(kind: str, names: list[str]) -> str:
    more = f", ... (+{len(names) - SHOWN} more)" if len(names) > SHOWN else ""
    return f"{len(names)} {kind}: {', '.join(names[:SHOWN])}{more}"


def assign(parts: list[tuple[nn.Module, dict[str, torch.Tensor], str]], path: str | Path) -> list[int]:
    """Load each ``(module, tensors, part name)`` (tensors named as in ``module.state_dict()``),
    all or nothing: every part is checked before any is loaded.

    Returns:
        The number of tensors loaded per part.
    Raises:
        WeightsError: a module's tensors missing from its ``tensors``, ``tensors`` the module
            does not have, or of other shapes (the first :data:`SHOWN` of each kind and their
            counts, with the file and the part); then nothing is loaded.
    """
    for module, tensors, part in parts:
        own = module.state_dict()
        missing = [k for k in own if k not in tensors and not k.endswith(OPTIONAL)]
        unexpected = sorted(k for k in tensors if k not in own)
        shapes = [f"{k} (file {tuple(tensors[k].shape)}, model {tuple(v.shape)})" for k, v in own.items()
                  if k in tensors and tensors[k].shape != v.shape]
        if missing or unexpected or shapes:
            lines = [_listing(kind, names) for kind, names in (
                ("missing tensor(s)", missing), ("unexpected tensor(s)", unexpected),
                ("tensor(s) of another shape", shapes)) if names]
            raise WeightsError(f"{path} does not fit the model's {part}: " + "; ".join(lines)
                               + ". Is it the right checkpoint for this model config? Nothing was loaded.")
    counts = []
    for module, tensors, _ in parts:
        module.load_state_dict(tensors, strict=False)
        counts.append(len(tensors))
    return counts


@dataclass(frozen=True)
class Layout:
    """A published checkpoint layout: how to find it in a file and which model parts it fills."""

    name: str
    """The layout's name (``"pi3"``, ``"dinov2"``, ``"resnext"``: also its file's stem in a folder)."""
    anchor: str
    """A tensor every file of the layout holds; its prefix in a file is the layout's prefix."""
    split: Callable[[MVInverse, dict[str, torch.Tensor]], list[tuple[nn.Module, dict[str, torch.Tensor], str]]]
    """``(model, tensors under the prefix) -> [(module, its tensors by its own names, part)]``."""
    used: Callable[[str], bool]
    """Whether a tensor name (under the prefix) belongs to the parts filled; others are reported
    as unused, not refused."""


def _pi3_parts(model: MVInverse, tensors: dict[str, torch.Tensor]):
    decoder = {re.sub(r"^decoder\.(\d+)\.", r"blocks.\1.", k): v for k, v in tensors.items()
               if re.match(r"decoder\.\d+\.", k)}
    if "register_token" in tensors:
        decoder["register_token"] = tensors["register_token"]
    encoder = dinov2_to_timm(under(tensors, "encoder."), model.encoder)
    return [(model.encoder, encoder, "encoder"), (model.decoder, decoder, "decoder")]


def _dinov2_parts(model: MVInverse, tensors: dict[str, torch.Tensor]):
    return [(model.encoder, dinov2_to_timm(tensors, model.encoder), "encoder")]


def _resnext_parts(model: MVInverse, tensors: dict[str, torch.Tensor]):
    if model.detail is None:
        raise WeightsError("this model fuses no ResNeXt features (fused_heads is empty): no ResNeXt to load")
    return [(model.detail, tensors, "detail")]


LAYOUTS = {
    "pi3": Layout("pi3", "decoder.0.attn.qkv.weight", _pi3_parts,
                  lambda k: k.startswith("encoder.") or k == "register_token" or bool(re.match(r"decoder\.\d+\.", k))),
    "dinov2": Layout("dinov2", "patch_embed.proj.weight", _dinov2_parts, lambda k: True),
    "resnext": Layout("resnext", "layer1.0.conv1.weight", _resnext_parts, lambda k: not k.startswith("fc.")),
}
"""The published layouts by name (module docstring)."""


def load_file(model: MVInverse, layout: str, path: str | Path) -> list[LoadReport]:
    """Fill ``model``'s parts from one file of ``layout`` (:data:`LAYOUTS`), all or nothing.

    Raises:
        FileNotFoundError, WeightsError: :func:`read_state_dict`, :func:`part_prefix`,
            :func:`assign`.
    """
    spec = LAYOUTS[layout]
    everything = read_state_dict(path)
    prefix = part_prefix(everything, spec.anchor, path, layout)
    tensors = under(everything, prefix)
    parts = spec.split(model, {k: v for k, v in tensors.items() if spec.used(k)})
    counts = assign(parts, path)
    unused = sorted(k for k in everything if not (k.startswith(prefix) and spec.used(k[len(prefix):])))
    reports = [LoadReport(part, str(path), n) for (_, _, part), n in zip(parts, counts)]
    reports[-1].unused = unused
    log.info("%s weights %s (prefix %r): %s; %d tensors unused", layout, path, prefix,
             ", ".join(f"{r.loaded} {r.part} tensors" for r in reports), len(unused))
    return reports


def load_pretrained(model: MVInverse, pi3: str | Path | None = None, dinov2: str | Path | None = None,
                    resnext: str | Path | None = None) -> list[LoadReport]:
    """The seed's initialization: Pi3's encoder and decoder (or a DINOv2 encoder alone) and the
    ResNeXt; parts without a file keep their random weights. Each file loads all or nothing.

    Raises:
        ValueError: both ``pi3`` and ``dinov2`` given (both fill the encoder).
        FileNotFoundError, WeightsError: a file that is absent or does not fit (:func:`load_file`).
    """
    if pi3 is not None and dinov2 is not None:
        raise ValueError("give Pi3 weights (encoder + decoder) or DINOv2 weights (encoder), not both")
    reports = []
    for layout, path in (("pi3", pi3), ("dinov2", dinov2), ("resnext", resnext)):
        if path is not None:
            reports += load_file(model, layout, path)
    return reports


def find_weight_files(folder: str | Path) -> dict[str, Path]:
    """The weights files of a folder by layout (module docstring: ``<layout><suffix>``).

    Raises:
        FileNotFoundError: no such folder, or none of the expected files in it.
        WeightsError: two files for one layout, or both ``pi3`` and ``dinov2``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"pretrained weights folder {folder} does not exist")
    found: dict[str, Path] = {}
    for layout in LAYOUTS:
        files = [folder / f"{layout}{s}" for s in SUFFIXES if (folder / f"{layout}{s}").is_file()]
        if len(files) > 1:
            raise WeightsError(f"{folder} holds {len(files)} {layout} files ({', '.join(f.name for f in files)}): keep one")
        if files:
            found[layout] = files[0]
    if not found:
        raise FileNotFoundError(f"{folder} holds none of {', '.join(f'{n}{SUFFIXES[0]}' for n in LAYOUTS)} "
                                f"(suffixes {', '.join(SUFFIXES)}): nothing to load")
    if "pi3" in found and "dinov2" in found:
        raise WeightsError(f"{folder} holds both {found['pi3'].name} and {found['dinov2'].name}: both fill the "
                           f"encoder; keep one")
    return found


def load_pretrained_dir(model: MVInverse, folder: str | Path) -> list[LoadReport]:
    """:func:`load_pretrained` from a folder's files (:func:`find_weight_files`)."""
    return load_pretrained(model, **find_weight_files(folder))
