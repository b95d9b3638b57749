"""Trained field -> ``.nmat`` bundle (seed 003, section 4.1.5), and checkpoint -> bundle.

The bundle holds the planes as float32 ``[rows, cols, C]`` (the exact values training used),
the decoder as an :class:`~neumat.quant.Int8MLP` with the frozen observer scales
(:func:`neumat.models.qat.export_int8`), input order U, H, D, the run's angle
parameterization (``angle_param``; new runs :data:`neumat.angles.PLANE_PARAMETERIZATION`), and
provenance:

=====================  ========================================================
``output_encoding``    how renderers decode the MLP's [0, 1] output to BTF values
                       (:mod:`neumat.output_encoding`): ``"linear"``,
                       ``"reinhard-v1"`` or ``"log-v1"``
``value_scale``        ``"linear"``: the scale (BTF value of output 1.0)
``output_scale``       ``"reinhard-v1"``, ``"log-v1"``: ``[s_r, s_g, s_b]``
``output_range_bits``  ``"log-v1"``: ``k`` (output 1.0 decodes to ``s_c (2^k - 1)``)
``source``             data source spec (:mod:`.sources`) for ``neumat eval``
``step``               optimizer steps trained
``config``             the resolved training config
``metrics``            final held-out figures of the run, as ``neumat eval`` computes
                       them (:func:`neumat.train.evaluate.heldout_report`: INT8 and
                       FP32 relative L1, PSNR, L1 over ``source.heldout_images()``);
                       absent from the exports before the run's last step
``validation``         last periodic validation on random held-out samples (a progress
                       figure of the trainer, not comparable with ``neumat eval``)
``plane_addressing``   ``{"U": "wrap", "H": "clamp", "D": "clamp"}``
``filter``             ``"bilinear-texel-centre-f32"`` (see :mod:`neumat.models.triple_plane`)
``u_filter``           ``"learned-mip-trilinear-v1"`` when the run fitted the learned
                       LoD pyramid (``lod_pyramid``; the levels are the bundle's
                       ``u_levels``), ``"box-mip-trilinear-v1"`` when it trained jointly on
                       prefiltered samples (``points.lod_fraction`` > 0): renderers read
                       the U plane through that chain (:mod:`neumat.material.mips`)
``neumat_version``     version of the exporter
=====================  ========================================================

Materials rendered from PBR maps also carry their height map (``height`` in [0, 1],
``height_range`` ``[0, height_scale]`` in UV units) so renderers can trace the height field.
"""

from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..angles import LEGACY_PLANE_PARAMETERIZATION, PLANE_PARAMETERIZATION
from ..bundle import Bundle, export_inm, save_bundle
from ..material import SOURCE_KEY, ReliefSlope
from ..material.mips import BOX_MIP, LEARNED_MIP_VISIBLE, U_FILTER_KEY
from ..models.qat import export_int8
from ..models.triple_plane import ADDRESSING, FEATURE_ORDER, TriplePlaneField
from ..output_encoding import OutputEncoding
from .checkpoint import load_checkpoint
from .config import TrainConfig, validate_config
from .config_io import config_from_dict
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


def surface_relief(surface: dict[str, Any], u_cols: int = 0, angle_param: str = PLANE_PARAMETERIZATION,
                   visible_gain: float = 0.0) -> ReliefSlope | None:
    """The relief (:mod:`neumat.material.relief`) of :func:`material_surface`'s height fields
    beside a U plane ``u_cols`` wide, with the point slope of ``angle_param`` and the visible
    frame's gain (the learned pyramid's runs: :data:`~neumat.material.visible_slope.VISIBLE_SLOPE_GAIN`),
    exactly as the exported bundle's will be; ``None`` without height map (flat)."""
    if not surface:
        return None
    return ReliefSlope.for_parameterization(angle_param, surface["height"], surface["height_range"], u_cols,
                                            visible_gain)


def to_bundle(model: TriplePlaneField, output: OutputEncoding, angle_param: str,
              provenance: dict[str, Any] | None = None, surface: dict[str, Any] | None = None) -> Bundle:
    """The INT8 bundle of ``model`` (any device; copied to host numpy).

    ``output``, ``angle_param``: the output encoding and H/D plane parameterization the model
    was trained with. ``surface``: optional height fields from :func:`material_surface`.

    Raises:
        ValueError: the decoder's activation ranges were never observed.
    """
    planes = {p: model.planes[p].detach().float().cpu().numpy().copy() for p in FEATURE_ORDER}
    spec = (provenance or {}).get(SOURCE_KEY)
    prefiltered = isinstance(spec, dict) and isinstance(spec.get("points"), dict) and \
        spec["points"].get("lod_fraction", 0) > 0
    levels = tuple(level.detach().float().cpu().numpy().copy() for level in model.u_levels) if model.pyramid else ()
    u_filter = LEARNED_MIP_VISIBLE if levels else BOX_MIP if prefiltered else None
    prov = {
        **({U_FILTER_KEY: u_filter} if u_filter else {}),
        **output.provenance(),
        "plane_addressing": dict(ADDRESSING),
        "filter": FILTER,
        "neumat_version": __version__,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(provenance or {}),
    }
    return Bundle.triple_plane(
        planes["U"], planes["H"], planes["D"], export_int8(model.mlp), order=FEATURE_ORDER,
        angle_param=angle_param, provenance=prov, u_levels=levels, **(surface or {}),
    )


def state_coding(state: dict[str, Any]) -> tuple[OutputEncoding, str]:
    """``(output encoding, angle_param)`` a checkpoint's run trained with; checkpoints that record
    neither are ``"linear"`` with their ``value_scale`` and ``"rusinkiewicz-concentric-v1"``."""
    return OutputEncoding.from_provenance(state), state.get("angle_param", LEGACY_PLANE_PARAMETERIZATION)


def model_from_state(state: dict[str, Any]) -> TriplePlaneField:
    """Rebuild the field stored in a checkpoint dict (on CPU).

    Raises:
        neumat.train.config.ConfigError: the recorded config is malformed or out of range (its
            sizes are allocated here, so a checkpoint's config is checked like a user's).
    """
    cfg = config_from_dict(state["config"], TrainConfig)
    validate_config(cfg)
    m = cfg.model
    u_res = int(state["model"]["planes.U"].shape[0])  # model.u_res may be 0 (resolved at training)
    model = TriplePlaneField(u_res, m.hd_res, m.channels, m.hidden, m.plane_init_std)
    model.load_state_dict(state["model"])
    model.eval()
    return model


def heldout_record(history: list[dict[str, Any]], step: int) -> dict[str, Any]:
    """The held-out figures (:func:`neumat.train.evaluate.heldout_report`) a run recorded in its
    history at ``step``; ``{}`` if it recorded none there (the run went on or stopped earlier)."""
    found = [h for h in history if h.get("kind") == "heldout" and h.get("step") == step]
    return {k: v for k, v in found[-1].items() if k != "kind"} if found else {}


def run_provenance(state: dict[str, Any]) -> dict[str, Any]:
    """Provenance of a checkpoint's model: source, step, config, final held-out figures
    (``metrics``, if the checkpoint is a run's last step) and last periodic validation."""
    history = state.get("history", [])
    vals = [h for h in history if h.get("kind") == "val"]
    prov = {
        SOURCE_KEY: state["source"],
        "step": int(state["step"]),
        "config": state["config"],
        "validation": {k: v for k, v in vals[-1].items() if k != "kind"} if vals else {},
    }
    heldout = heldout_record(history, int(state["step"]))
    return {**prov, "metrics": heldout} if heldout else prov


def export_checkpoint(ckpt: str | Path, out: str | Path, inm_dir: str | Path | None = None,
                      inm_name: str = "material") -> Bundle:
    """Write the bundle of checkpoint ``ckpt`` (any model plug-in's, :data:`CHECKPOINT_BUNDLES`)
    to ``out`` (atomic) and optionally the INM layout (triple-plane materials only).

    Returns the bundle written.

    Raises:
        ValueError: a checkpoint of an unknown model kind, or one with no bundle to write.
    """
    state = load_checkpoint(ckpt)
    kind = state.get("model_kind", TRIPLE_PLANE_CHECKPOINT)
    if kind not in CHECKPOINT_BUNDLES:
        raise ValueError(f"{ckpt}: unknown model kind {kind!r}; this neumat exports {sorted(CHECKPOINT_BUNDLES)}")
    module, name = CHECKPOINT_BUNDLES[kind].split(":")
    bundle = getattr(importlib.import_module(module), name)(state)
    save_bundle(bundle, out)
    if inm_dir is not None:
        export_inm(bundle, inm_dir, inm_name)
    return bundle


def checkpoint_bundle(state: dict[str, Any]) -> Bundle:
    """The bundle of a triple-plane checkpoint dict (height map from its data source if it can
    be rebuilt; provenance :func:`run_provenance`)."""
    try:
        surface = material_surface(make_source(state["source"]))
    except Exception as e:  # noqa: BLE001 — the data may be gone; the material still exports
        log.warning("exporting without a height map: cannot rebuild the data source (%s)", e)
        surface = {}
    return to_bundle(model_from_state(state), *state_coding(state), run_provenance(state), surface)


TRIPLE_PLANE_CHECKPOINT = "triple_plane"
"""``model_kind`` of checkpoints that record none (the triple-plane trainer writes none)."""
CHECKPOINT_BUNDLES = {
    TRIPLE_PLANE_CHECKPOINT: "neumat.train.export:checkpoint_bundle",
    "neumip": "neumat.train.neumip.export:checkpoint_bundle",
}
"""Checkpoint ``model_kind`` -> ``module:function`` building its bundle from the checkpoint dict
(each model plug-in declares its own; imported on use)."""


def fp32_predict(model: TriplePlaneField, uv: np.ndarray, h: np.ndarray, d: np.ndarray,
                 chunk: int = 1 << 16) -> np.ndarray:
    """FP32 decoder output ``[B, 3]`` in [0, 1] (encoded units) on the model's device, as numpy."""
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
