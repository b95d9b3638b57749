"""Trained field -> ``.nmat`` bundle (seed 003, section 4.1.5), and checkpoint -> bundle.

The bundle holds the planes as float32 ``[rows, cols, C]`` (the exact values training used),
the decoder as an :class:`~neumat.quant.Int8MLP` with the frozen observer scales
(:func:`neumat.models.qat.export_int8`), input order U, H, D, angle parameterization
:data:`neumat.angles.PLANE_PARAMETERIZATION`, and provenance:

=====================  ========================================================
``value_scale``        renderers multiply the MLP's [0, 1] output by it to get BTF
                       values (see :mod:`neumat.eval`)
``source``             data source spec (:mod:`.sources`) for ``neumat eval``
``step``               optimizer steps trained
``config``             the resolved training config
``metrics``            last validation figures (FP32 and INT8 held-out L1/PSNR)
``plane_addressing``   ``{"U": "wrap", "H": "clamp", "D": "clamp"}``
``filter``             ``"bilinear-texel-centre-f32"`` (see :mod:`neumat.models.triple_plane`)
``neumat_version``     version of the exporter
=====================  ========================================================

Materials rendered from PBR maps also carry their height map (``height`` in [0, 1],
``height_range`` ``[0, height_scale]`` in UV units) so renderers can trace the height field.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..angles import PLANE_PARAMETERIZATION
from ..bundle import Bundle, export_inm, save_bundle
from ..eval import SOURCE_KEY, VALUE_SCALE_KEY
from ..models.qat import export_int8
from ..models.triple_plane import ADDRESSING, FEATURE_ORDER, TriplePlaneField
from .checkpoint import load_checkpoint
from .config import config_from_dict
from .sources import make_source

log = logging.getLogger(__name__)

FILTER = "bilinear-texel-centre-f32"
"""Provenance tag of the plane filter the model trained with."""


def material_surface(source: Any) -> dict[str, Any]:
    """Bundle height fields of a data source built from PBR maps (``source.material``), else ``{}``.

    Returns ``{"height": float32 [R, R] in [0, 1], "height_range": (0, height_scale),
    "height_units": "uv"}`` — the displaced surface the BTF was rendered from.
    """
    material = getattr(source, "material", None)
    height = getattr(material, "height", None)
    if height is None:
        return {}
    return {"height": np.ascontiguousarray(height, dtype=np.float32),
            "height_range": (0.0, float(material.height_scale)), "height_units": "uv"}


def to_bundle(model: TriplePlaneField, value_scale: float, provenance: dict[str, Any] | None = None,
              surface: dict[str, Any] | None = None) -> Bundle:
    """The INT8 bundle of ``model`` (any device; copied to host numpy).

    ``surface``: optional height fields from :func:`material_surface`.

    Raises:
        ValueError: the decoder's activation ranges were never observed.
    """
    planes = {p: model.planes[p].detach().float().cpu().numpy().copy() for p in FEATURE_ORDER}
    prov = {
        VALUE_SCALE_KEY: float(value_scale),
        "plane_addressing": dict(ADDRESSING),
        "filter": FILTER,
        "neumat_version": __version__,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(provenance or {}),
    }
    return Bundle.triple_plane(
        planes["U"], planes["H"], planes["D"], export_int8(model.mlp), order=FEATURE_ORDER,
        angle_param=PLANE_PARAMETERIZATION, provenance=prov, **(surface or {}),
    )


def model_from_state(state: dict[str, Any]) -> TriplePlaneField:
    """Rebuild the field stored in a checkpoint dict (on CPU)."""
    m = config_from_dict(state["config"]).model
    model = TriplePlaneField(m.u_res, m.hd_res, m.channels, m.hidden, m.plane_init_std)
    model.load_state_dict(state["model"])
    model.eval()
    return model


def run_provenance(state: dict[str, Any]) -> dict[str, Any]:
    """Provenance of a checkpoint's model: source, step, config, last validation metrics."""
    vals = [h for h in state.get("history", []) if h.get("kind") == "val"]
    return {
        SOURCE_KEY: state["source"],
        "step": int(state["step"]),
        "config": state["config"],
        "metrics": {k: v for k, v in vals[-1].items() if k != "kind"} if vals else {},
    }


def export_checkpoint(ckpt: str | Path, out: str | Path, inm_dir: str | Path | None = None,
                      inm_name: str = "material") -> Bundle:
    """Write the bundle of checkpoint ``ckpt`` to ``out`` (atomic) and optionally the INM layout.

    Returns the bundle written.
    """
    state = load_checkpoint(ckpt)
    try:
        surface = material_surface(make_source(state["source"]))
    except Exception as e:  # noqa: BLE001 — the data may be gone; the material still exports
        log.warning("exporting without a height map: cannot rebuild the data source (%s)", e)
        surface = {}
    bundle = to_bundle(model_from_state(state), float(state["value_scale"]), run_provenance(state), surface)
    save_bundle(bundle, out)
    if inm_dir is not None:
        export_inm(bundle, inm_dir, inm_name)
    return bundle


def fp32_predict(model: TriplePlaneField, uv: np.ndarray, h: np.ndarray, d: np.ndarray,
                 chunk: int = 1 << 16) -> np.ndarray:
    """FP32 decoder output ``[B, 3]`` in [0, 1] (scaled units) on the model's device, as numpy."""
    from ..models.qat import QatMode

    device = next(model.parameters()).device
    mode, was_training = model.mlp.mode, model.training
    model.eval()
    model.set_qat_mode(QatMode.FLOAT)
    try:
        with torch.no_grad():
            outs = [
                model(*(torch.from_numpy(np.ascontiguousarray(a[i:i + chunk])).to(device) for a in (uv, h, d)))
                .float().cpu().numpy()
                for i in range(0, len(uv), chunk)
            ]
    finally:
        model.set_qat_mode(mode)
        model.train(was_training)
    return np.concatenate(outs) if outs else np.zeros((0, 3), np.float32)
