"""Temporal consistency of MVInverse's predictions over a video (seed 002 §3.3 and §4.4): the
finetuning objective (eq. 6) and the before / after metric (Table 4).

**Objective** (eq. 6, its symbols lost from the seed's text; the form its words give):
``L = L_anchor + λ · L_cons``.

* ``L_cons`` — for every adjacent pair (t, t + 1) of a clip, the prediction of frame t + 1
  warped to frame t by the optical flow ``F_{t→t+1}`` (:mod:`.flow`; backward warping,
  ``M̃_t(p) = M_{t+1}(p + F(p))``, bilinear) against the prediction of frame t: mean squared
  difference over the pixels the flow trusts (inside frame t + 1, forward–backward consistent),
  averaged over pairs and over the maps :data:`TEMPORAL_MAPS` — albedo, metallic, roughness
  and diffuse shading, the maps of Table 4. Camera-space normals are left out: they turn
  with the camera between frames, so equal values are not the goal. Gradients reach both
  frames' predictions.
* ``L_anchor`` — frame 0 of the clip: the finetuned model's prediction against the frozen
  pretrained model's prediction of the same clip, mean squared difference over all pixels,
  averaged over all five maps (normals included, so they cannot drift either).
* ``λ`` — :attr:`~.config.FinetuneConfig.consistency_weight` (the seed's value is lost; 1).

**Metric** (Table 4 protocol on unlabeled sequences): predictions of every frame, adjacent
frames related by optical flow from the frames (the model never sees it), and per map the RMSE
between frame t's prediction and frame t + 1's read at the flow's target, over the trusted pixels
of all adjacent pairs of a sequence (:func:`~.evaluate.consistency_rmse`, the cross-view figure
of Table 2 with flow correspondences instead of depth and poses); the mean over sequences.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .evaluate import consistency_rmse
from .flow import PairFlow
from .intrinsics import SPECS, Intrinsic
from .losses import mse_loss

TEMPORAL_MAPS = (Intrinsic.ALBEDO, Intrinsic.METALLIC, Intrinsic.ROUGHNESS, Intrinsic.SHADING)
"""Maps held consistent over time and measured (seed Table 4)."""


def warp(values: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``values`` ``[N, C, H, W]`` read bilinearly at ``p + flow(p)`` (differentiable; outside
    positions read the border). ``flow``: ``[N, H, W, 2]`` ``(dx, dy)`` pixels (:mod:`.flow`)."""
    n, _, h, w = values.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=flow.dtype, device=flow.device),
                            torch.arange(w, dtype=flow.dtype, device=flow.device), indexing="ij")
    gx = (xs + flow[..., 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[..., 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1).to(values.dtype)
    return F.grid_sample(values, grid, mode="bilinear", padding_mode="border", align_corners=True)


def consistency_loss(pred: Mapping[Intrinsic, torch.Tensor], flow: torch.Tensor, valid: torch.Tensor,
                     maps: Sequence[Intrinsic] = TEMPORAL_MAPS) -> torch.Tensor:
    """``L_cons`` (module docstring) of one clip.

    Args:
        pred: ``{map: [1, T, C, H, W]}`` the finetuned model's predictions of the clip.
        flow: ``[T - 1, H, W, 2]`` ``F_{t→t+1}``.
        valid: ``[T - 1, 1, H, W]`` bool, the pixels of frame t the flow trusts.
    """
    terms = [mse_loss(pred[m][0, :-1], warp(pred[m][0, 1:], flow), valid) for m in maps]
    return torch.stack(terms).mean()


def anchor_loss(pred: Mapping[Intrinsic, torch.Tensor], reference: Mapping[Intrinsic, torch.Tensor]) -> torch.Tensor:
    """``L_anchor`` (module docstring): ``pred`` and ``reference`` ``{map: [1, T, C, H, W]}``
    (the reference from the frozen pretrained model; only frame 0 counts), every map of
    :data:`~.intrinsics.SPECS`."""
    terms = []
    for m in SPECS:
        p, r = pred[m][:, 0], reference[m][:, 0].to(pred[m].dtype)
        terms.append(mse_loss(p, r, torch.ones_like(p[:, :1], dtype=torch.bool)))
    return torch.stack(terms).mean()


def finetune_loss(pred: Mapping[Intrinsic, torch.Tensor], reference: Mapping[Intrinsic, torch.Tensor],
                  flow: torch.Tensor, valid: torch.Tensor, consistency_weight: float,
                  maps: Sequence[Intrinsic] = TEMPORAL_MAPS) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 6: ``(L_anchor + λ L_cons, {"anchor": ..., "consistency": ...})`` (terms unweighted)."""
    anchor = anchor_loss(pred, reference)
    cons = consistency_loss(pred, flow, valid, maps)
    return anchor + consistency_weight * cons, {"anchor": float(anchor.detach()), "consistency": float(cons.detach())}


def temporal_rmse(pred: Mapping[str, np.ndarray], pairs: Iterable[PairFlow],
                  maps: Sequence[Intrinsic] = TEMPORAL_MAPS) -> dict[str, float]:
    """Table 4's figure of one sequence: ``{map name: RMSE}`` between adjacent frames' predictions
    ``pred`` ``{map: [T, H, W, C]}`` through the flows ``pairs`` (module docstring)."""
    corr = [p.correspondences() for p in pairs]
    return {m.value: consistency_rmse(np.asarray(pred[m.value], np.float32), corr) for m in maps}


def temporal_report(sequences: Sequence[tuple[np.ndarray, list[PairFlow]]],
                    methods: Mapping[str, Callable[[np.ndarray], Mapping[str, np.ndarray]]],
                    maps: Sequence[Intrinsic] = TEMPORAL_MAPS) -> dict[str, dict[str, float]]:
    """``{method: {map name: mean over sequences of :func:`temporal_rmse`}}`` of every method (a
    function ``frames [T, H, W, 3] -> {map: [T, H, W, C]}``) on ``sequences`` (frames and their
    adjacent flows, :func:`~.flow.adjacent_flows`)."""
    out = {}
    for name, method in methods.items():
        figures = [temporal_rmse(method(frames), pairs, maps) for frames, pairs in sequences]
        out[name] = {m.value: float(np.nanmean([f[m.value] for f in figures])) for m in maps}
    return out


def markdown_table(report: Mapping[str, Mapping[str, float]]) -> str:
    """:func:`temporal_report` as Table 4: one row per method, one RMSE column per map."""
    maps = list(next(iter(report.values())))
    head = "| method | " + " | ".join(f"{m} RMSE ↓" for m in maps) + " |"
    rows = [f"| {name} | " + " | ".join(f"{r[m]:.4f}" for m in maps) + " |" for name, r in report.items()]
    return "\n".join([head, "|---" * (len(maps) + 1) + "|", *rows]) + "\n"
