"""NeuMIP field -> ``.nmat`` bundle, held-out metrics, and the universal-decoder file.

Bundle (kind ``neumip``, :meth:`neumat.bundle.Bundle.neumip`): the material's two textures as
float32 ``[res, res, C]`` (the exact training values), both decoders as
:class:`~neumat.quant.Int8MLP` with the frozen observer scales (:func:`neumat.models.qat.
export_int8`), ``angle_param`` :data:`neumat.material.neumip.DIRECTION_ENCODING`, provenance
``max_offset``, ``value_scale``, ``source`` (data spec for ``neumat eval``), ``config``,
``metrics``, ``filter``, ``neumat_version``. :func:`neumat.material.neumip.render_neumip_int8` evaluates
it; :class:`neumat.models.neumip.Int8Decoders` reproduces that in torch.

Universal-decoder file (safetensors): the float decoder weights **and** their activation
observers (``amax`` — the INT8 scales of every material fitted with them), metadata
``format``, ``channels``, ``hidden``, ``max_offset``, ``materials`` and ``config`` (JSON); the
header is canonical (:func:`canonical_safetensors`): same decoders, same bytes.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ... import __version__
from ...bundle import Bundle
from ...fileio import atomic_write_bytes
from ...data import BtfBatch
from ...material import SOURCE_KEY
from ...material.neumip import (
    DIRECTION_ENCODING,
    MAX_OFFSET_KEY,
    bundle_max_offset,
    check_neumip,
    render_neumip_int8,
)
from ...metrics import error_metrics
from ...models.neumip import Int8Decoders, NeuMipDecoders, NeuMipField
from ...models.qat import QatMode, export_int8
from ...output_encoding import VALUE_SCALE_KEY
from ..config_io import ConfigError

DECODERS_FORMAT = "neumat-neumip-decoders-v1"
"""``format`` metadata of a universal-decoder file."""
FILTER = "bilinear-texel-centre-f32-wrap"
"""Provenance tag of the texture filter the model trained with."""
GRAZING_DEG = 60.0
"""Views with θo at or above this are "grazing" in the metrics (where parallax matters most)."""


def _sizes(field: NeuMipField, index: int, n: int) -> list[int]:
    return [n if k == index else 0 for k in range(len(field.textures))]


def predict(field: NeuMipField, index: int, batch: BtfBatch, *, int8: bool = False, zero_offset: bool = False,
            chunk: int = 1 << 15) -> np.ndarray:
    """Scaled RGB ``[B, 3]`` of material ``index`` at ``batch``'s (uv, ωi, ωo), as numpy (the
    field on any device).

    ``int8``: the exported INT8 networks (bit-exact with the bundle); else float decoders.
    """
    decoders = Int8Decoders(export_int8(field.decoders.offset), export_int8(field.decoders.rgb)) if int8 else None
    mode, training = field.decoders.offset.mode, field.training
    device = field.textures[0].rgb.device
    field.eval()
    field.decoders.set_qat_mode(QatMode.FLOAT)
    outs = []
    try:
        with torch.no_grad():
            for a in range(0, len(batch), chunk):
                uv, wi, wo = (torch.from_numpy(np.ascontiguousarray(x[a:a + chunk], dtype=np.float32)).to(device)
                              for x in (batch.uv, batch.wi, batch.wo))
                outs.append(field(uv, wi, wo, _sizes(field, index, len(uv)), zero_offset, decoders).cpu().numpy())
    finally:
        field.decoders.set_qat_mode(mode)
        field.train(training)
    return np.concatenate(outs) if outs else np.zeros((0, 3), np.float32)


def grazing(batch: BtfBatch, theta_deg: float = GRAZING_DEG) -> np.ndarray:
    """bool ``[B]``: samples whose view polar angle θo >= ``theta_deg``."""
    return batch.wo[:, 2] <= np.float32(math.cos(math.radians(theta_deg)))


def material_metrics(field: NeuMipField, index: int, batch: BtfBatch, value_scale: float,
                     bundle: Bundle | None = None, zero_offset: bool = False) -> dict[str, float]:
    """Held-out figures of material ``index`` (BTF units, PSNR peak 1, see :mod:`neumat.metrics`).

    ``fp32_*``: float decoders; ``int8_*``: the bundle through :func:`render_neumip_int8` (when
    given); ``grazing_*``: the float model on views with θo >= :data:`GRAZING_DEG`.
    ``zero_offset``: evaluate the float model with Δu = 0 (a model trained so).
    """
    scale = np.float32(value_scale)
    fp32 = predict(field, index, batch, zero_offset=zero_offset) * scale
    f = error_metrics(fp32, batch.rgb)
    out = {"fp32_l1": f["l1"], "fp32_rel_l1": f["rel_l1"], "fp32_psnr": f["psnr"]}
    mask = grazing(batch)
    if mask.any():
        g = error_metrics(fp32[mask], batch.rgb[mask])
        out.update(grazing_fp32_psnr=g["psnr"], grazing_fp32_l1=g["l1"], grazing_samples=int(mask.sum()))
    if bundle is not None:
        q = error_metrics(render_neumip_int8(bundle, batch.uv, batch.wi, batch.wo), batch.rgb)
        out.update(int8_l1=q["l1"], int8_rel_l1=q["rel_l1"], int8_psnr=q["psnr"], int8_gap_db=f["psnr"] - q["psnr"])
    return out


def to_bundle(field: NeuMipField, index: int, value_scale: float, provenance: dict[str, Any] | None = None) -> Bundle:
    """The INT8 ``neumip`` bundle of material ``index`` of ``field``.

    Raises:
        ValueError: the decoders' activation ranges were never observed.
    """
    tex = field.textures[index]
    prov = {
        VALUE_SCALE_KEY: float(value_scale),
        MAX_OFFSET_KEY: float(field.max_offset),
        "filter": FILTER,
        "neumat_version": __version__,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(provenance or {}),
    }
    return Bundle.neumip(
        tex.offset.detach().float().cpu().numpy().copy(), tex.rgb.detach().float().cpu().numpy().copy(),
        export_int8(field.decoders.offset), export_int8(field.decoders.rgb),
        angle_param=DIRECTION_ENCODING, provenance=prov,
    )


def field_from_bundle(bundle: Bundle) -> tuple[NeuMipField, Int8Decoders]:
    """The torch twin of a ``neumip`` bundle: ``(field with its textures, its INT8 decoders)``.

    ``field(uv, wi, wo, decoders=twin) * value_scale`` reproduces
    :func:`neumat.material.neumip.render_neumip_int8`. The field's own float decoders are fresh (unused).
    """
    check_neumip(bundle)
    tex = bundle.planes["offset"]
    model = NeuMipField(1, tex.shape[0], bundle_max_offset(bundle), NeuMipDecoders(tex.shape[2]))
    with torch.no_grad():
        model.textures[0].offset.copy_(torch.from_numpy(np.asarray(tex, np.float32)))
        model.textures[0].rgb.copy_(torch.from_numpy(np.asarray(bundle.planes["rgb"], np.float32)))
    return model.eval(), Int8Decoders(bundle.mlps["offset"], bundle.mlps["rgb"])


def bundle_provenance(spec: dict[str, Any], config: dict[str, Any], metrics: dict[str, float],
                      **extra: Any) -> dict[str, Any]:
    """Provenance of an exported material: data spec, run config, held-out metrics, extras."""
    return {SOURCE_KEY: spec, "config": config, "metrics": dict(metrics), **extra}


def save_decoders(decoders: NeuMipDecoders, path: str | Path, max_offset: float, materials: list[str],
                  config: dict[str, Any]) -> Path:
    """Write the universal decoders (float weights + observer ranges) as safetensors, atomically."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in decoders.state_dict().items()}
    meta = {"format": DECODERS_FORMAT, "channels": str(decoders.channels), "hidden": str(decoders.hidden),
            "max_offset": repr(float(max_offset)), "materials": json.dumps(materials), "config": json.dumps(config)}
    return atomic_write_bytes(path, canonical_safetensors(save(tensors, metadata=meta)))


def canonical_safetensors(blob: bytes) -> bytes:
    """``blob`` (safetensors bytes) with its JSON header's keys sorted and compact.

    The ``safetensors`` writer emits the metadata in the order of a Rust ``HashMap``, different
    in every call, so equal decoders gave files with different checksums; the rewritten header
    makes the file a function of its contents (``make assets`` is reproducible bit for bit).
    Tensor records keep their ``data_offsets`` (relative to the data start), the data is
    untouched, and the header is padded with spaces to a multiple of 8 bytes, as the writer does.
    """
    n = int.from_bytes(blob[:8], "little")
    header = json.dumps(json.loads(blob[8:8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + blob[8 + n:]


def load_decoders(path: str | Path) -> tuple[NeuMipDecoders, float, dict[str, Any]]:
    """Read a universal-decoder file: ``(decoders, max_offset, metadata)``; decoders on CPU, frozen.

    Raises:
        ConfigError: missing file, not a decoder file, or inconsistent contents.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"NeuMIP decoder file {path} does not exist; create one with `neumat neumip pretrain` "
                          "(the shipped set is assets/neumip/universal_mlps.safetensors)")
    try:
        with safe_open(str(path), "pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a mapping)
    except (OSError, SafetensorError, ValueError) as e:
        raise ConfigError(f"{path} is not a readable safetensors file: {e}") from e
    if meta.get("format") != DECODERS_FORMAT:
        raise ConfigError(f"{path} is not a NeuMIP decoder file (format {meta.get('format')!r}, "
                          f"expected {DECODERS_FORMAT!r}); create one with `neumat neumip pretrain`")
    try:
        decoders = NeuMipDecoders(int(meta["channels"]), int(meta["hidden"]))
        decoders.load_state_dict(tensors)
        max_offset = float(meta["max_offset"])
        info = {"materials": json.loads(meta.get("materials", "[]")), "config": json.loads(meta.get("config", "{}"))}
    except (KeyError, ValueError, RuntimeError) as e:
        raise ConfigError(f"{path}: inconsistent NeuMIP decoder file: {e}") from e
    decoders.freeze()
    return decoders, max_offset, info


def checkpoint_bundle(state: dict[str, Any]) -> Bundle:
    """The bundle of a NeuMIP fit's checkpoint (:mod:`.plugin`): the textures and INT8 decoders
    of its step, provenance as the run's live export writes it (the last validation's figures
    as ``metrics``; at the run's last step exactly the exported bundle's).

    Raises:
        ValueError: a pretraining checkpoint (its decoders are exported by ``neumat neumip
            pretrain``), or a checkpoint that does not hold a NeuMIP model.
    """
    from .config import RUN_CONTROL

    meta, weights = state.get("neumip"), state.get("model")
    if not isinstance(meta, dict) or not isinstance(weights, dict) or "textures.0.rgb" not in weights:
        raise ValueError("not a NeuMIP checkpoint")
    if meta.get("task") != "fit" or len(meta["materials"]) != 1:
        raise ValueError("a NeuMIP pretraining checkpoint holds universal decoders, not one material: "
                         "`neumat neumip pretrain --resume` writes them (and --export-dir its materials)")
    tex = weights["textures.0.rgb"]
    model = NeuMipField(1, int(tex.shape[0]), float(meta["max_offset"]),
                        NeuMipDecoders(int(tex.shape[2]), int(weights["decoders.rgb.layers.0.weight"].shape[0])))
    model.load_state_dict(weights)
    material = meta["materials"][0]
    vals = [h for h in state.get("history", []) if h.get("kind") == "val"]
    metrics = {k: v for k, v in vals[-1].items() if k not in ("kind", "step")} if vals else {}
    config = {k: v for k, v in state["config"].items() if k not in RUN_CONTROL}
    prov = bundle_provenance(material["spec"], config, metrics, material=material["name"],
                             fit_seconds=round(float(meta["seconds"]), 2), **meta.get("bundle_extra", {}),
                             step=int(state["step"]), total_steps=int(state.get("total_steps", state["step"])))
    return to_bundle(model, 0, float(material["value_scale"]), prov)