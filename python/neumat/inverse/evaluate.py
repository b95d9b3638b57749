"""Figures of MVInverse predictions on held-out rendered views (:mod:`.dataset`), the seed's
protocol (§4.1-4.3, Tables 1-4) on our data, beside trivial baselines.

Per view (``[H, W, C]``; scenes' views pooled, each figure the mean over views unless said):

* **albedo** — scale-invariant as the seed's loss (eq. 7): the prediction times its per-channel
  least-squares scale to the ground truth (:func:`~.losses.albedo_scale`), then relative L1
  (Σ|Â−A| / Σ|A|, the project's scale-free figure, first), PSNR (peak 1) and SSIM (Wang et al.
  2004, 7×7 Gaussian-free window of scikit-image, data range 1, mean over channels);
* **metallic**, **roughness** — RMSE;
* **normal** — angle between predicted and true camera-space normals, degrees, pooled over all
  pixels: mean, and the percentages below 11.25° and 30° (Table 3);
* **consistency** — the seed's Table 2 protocol: every pixel of view i is taken to its surface
  point (the ground-truth hit), projected into view j (j ≠ i, same scene) and, where view j
  sees that very point (its own ground-truth depth there within :data:`DEPTH_TOLERANCE`), the
  prediction of view j read there bilinearly; RMSE between the two predictions over all such
  pixels and ordered pairs, for albedo (raw, not scale-aligned), metallic and roughness.

Curved-shape scenes (:mod:`.shapes`) carry a ``mask``: every figure counts only the pixels fully
on the shape (the albedo scale too; SSIM: its per-pixel map averaged there; consistency: pixels
of view i on the shape whose reprojection lands on the shape in view j).

Baselines (no learning, :func:`baselines`), their constants from the **training** set
(:func:`training_constants`: mean albedo, metallic and roughness over its pixels):

* ``mean`` — the training set's mean albedo, metallic and roughness everywhere, normals
  (0, 0, −1): facing the camera. After the scale alignment of the albedo figures any constant
  albedo becomes each view's per-channel mean of the truth — an oracle constant;
* ``flat`` — the same constants, normals the sample plane's (+z, :mod:`.views`) in each view's
  camera frame (from the known pose: the best flat guess on a plane);
* ``image`` — the input view decoded to linear as albedo (what a user without inverse rendering
  has), the rest as ``mean``.

**Cross-view consistency and constants**: a constant prediction reprojects onto itself, so
``mean`` and ``flat`` score exactly 0 on the consistency figures; the model's albedo consistency
is compared with ``image`` instead, and metallic / roughness consistency (every baseline constant
there) is reported without a comparison. :func:`margins` states, per figure, the model's margin
over the best comparable baseline (positive: the model is better): over the pose-free ones
(``mean``, ``image``: the network sees only the images), and separately over ``flat``, which
knows each camera's pose.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ..data.pbr import srgb_to_linear
from ..metrics import psnr
from .dataset import Scene

DEPTH_TOLERANCE = 0.01
"""Relative depth difference under which view j sees the projected point (occlusion test)."""
NORMAL_THRESHOLDS = (11.25, 30.0)
"""Angular thresholds of the normal figures, degrees (seed Table 3)."""
CONSISTENT_MAPS = ("albedo", "metallic", "roughness")
"""Maps whose cross-view consistency is measured (seed Table 2)."""
HIGHER_IS_BETTER = ("albedo_psnr", "albedo_ssim", "normal_within_11.25_pct", "normal_within_30_pct")
"""Figures where larger is better (all others: smaller)."""
COMPARABLE = {"consistency_albedo": ("image",), "consistency_metallic": (), "consistency_roughness": ()}
"""Baselines a figure is compared with when not all of them (module docstring: a constant is
trivially consistent)."""

Predictor = Callable[[Scene], Mapping[str, np.ndarray]]
"""A scene -> ``{map: [V, H, W, C]}`` (normals in each view's camera frame)."""


def aligned_albedo(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``pred`` ``[H, W, 3]`` times its per-channel least-squares scale to ``target`` (seed eq. 7,
    :func:`~.losses.albedo_scale`) over the pixels of ``mask`` ``[H, W]`` bool (None: all)."""
    import torch

    from .losses import albedo_scale

    p = torch.from_numpy(np.array(pred, np.float64)).permute(2, 0, 1)[None]
    t = torch.from_numpy(np.array(target, np.float64)).permute(2, 0, 1)[None]
    m = torch.ones_like(p[:, :1], dtype=torch.bool) if mask is None else torch.from_numpy(np.asarray(mask, bool))[None, None]
    s = albedo_scale(p, t, m)
    return (s * p)[0].permute(1, 2, 0).numpy()


def ssim(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """SSIM of two ``[H, W, C]`` images in [0, 1] (data range 1), mean over channels; with
    ``mask`` ``[H, W]`` bool, the mean of the per-pixel SSIM map over the masked pixels whose
    whole window lies in the mask (so nothing outside it counts; NaN where none does)."""
    import cv2
    from skimage.metrics import structural_similarity

    win = min(7, *(s - (1 - s % 2) for s in pred.shape[:2]))
    value, full = structural_similarity(np.clip(pred, 0, 1), np.clip(target, 0, 1), channel_axis=-1,
                                        data_range=1.0, win_size=win, full=True)
    if mask is None:
        return float(value)
    keep = cv2.erode(np.asarray(mask, np.uint8), np.ones((win, win), np.uint8), borderType=cv2.BORDER_CONSTANT,
                     borderValue=0) > 0
    return float(full[keep].mean()) if keep.any() else float("nan")


def rmse(pred: np.ndarray, target: np.ndarray) -> float:
    """Root mean square difference over every element."""
    d = np.asarray(pred, np.float64) - np.asarray(target, np.float64)
    return float(np.sqrt(np.mean(d * d)))


def angular_error_deg(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Angles between ``[..., 3]`` normals (made unit first), degrees."""
    p = np.asarray(pred, np.float64)
    t = np.asarray(target, np.float64)
    p = p / np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-12)
    t = t / np.maximum(np.linalg.norm(t, axis=-1, keepdims=True), 1e-12)
    return np.degrees(np.arccos(np.clip((p * t).sum(-1), -1.0, 1.0)))


def reprojection_pairs(scene: Scene) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """Per ordered view pair (i, j): ``(i, j, pixels of view i [N, 2] (row, col), their positions in
    view j [N, 2] (x, y) in OpenCV pixel coordinates)`` where view j sees the same surface point,
    both on the shape's mask (module docstring)."""
    import cv2

    pts, depth = scene.arrays["points"].astype(np.float64), scene.arrays["depth"].astype(np.float32)
    s = scene.meta["sample_size"]
    v, h, w = pts.shape[:3]
    on = scene_mask(scene)
    on_f = on.astype(np.float32)
    out = []
    for i in range(v):
        world = (pts[i] - np.array([0.5, 0.5, 0.0])) * s
        for j in range(v):
            if i == j:
                continue
            pose = scene.poses[j]
            pix = pose.project(world, w, h) - 0.5
            z = (world - np.asarray(pose.camera_position)) @ pose.camera_basis()[2]
            x, y = pix[..., 0], pix[..., 1]
            inside = np.isfinite(x) & (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
            xf, yf = np.nan_to_num(x).astype(np.float32), np.nan_to_num(y).astype(np.float32)
            seen_depth = cv2.remap(depth[j, ..., 0], xf, yf, cv2.INTER_LINEAR)
            visible = inside & on[i] & (np.abs(seen_depth - z) <= DEPTH_TOLERANCE * z)
            if not on[j].all():  # every pixel read bilinearly in view j on the shape
                visible &= cv2.remap(on_f[j], xf, yf, cv2.INTER_LINEAR) > 0.999
            rows, cols = np.nonzero(visible)
            if rows.size:
                out.append((i, j, np.stack([rows, cols], 1), np.stack([x[rows, cols], y[rows, cols]], 1)))
    return out


def consistency_rmse(pred: np.ndarray, pairs: Iterable[tuple[int, int, np.ndarray, np.ndarray]]) -> float:
    """RMSE between view i's ``pred`` and view j's ``pred`` read at the reprojected positions,
    pooled over all pairs of :func:`reprojection_pairs` (NaN without any overlap)."""
    import cv2

    total, count = 0.0, 0
    for i, j, pix, xy in pairs:
        xs = np.ascontiguousarray(xy[:, 0:1], np.float32)
        ys = np.ascontiguousarray(xy[:, 1:2], np.float32)
        img = np.ascontiguousarray(pred[j], np.float32)
        warped = cv2.remap(img, xs, ys, cv2.INTER_LINEAR).reshape(len(pix), -1)
        d = pred[i][pix[:, 0], pix[:, 1]].reshape(len(pix), -1) - warped
        total += float(np.sum(d.astype(np.float64) ** 2))
        count += d.size
    return math.sqrt(total / count) if count else float("nan")


def scene_figures(scene: Scene, pred: Mapping[str, np.ndarray]) -> dict[str, list[float]]:
    """Per-view figures, pooled normal angles and cross-view consistency of one scene (see
    :func:`summarize`)."""
    fig = view_figures({**scene.arrays, "mask": scene_mask(scene)}, pred)
    pairs = reprojection_pairs(scene)
    for key in CONSISTENT_MAPS:
        fig[f"consistency_{key}"] = [consistency_rmse(np.asarray(pred[key], np.float32), pairs)]
    return fig


def view_figures(truth: Mapping[str, np.ndarray], pred: Mapping[str, np.ndarray]) -> dict[str, list]:
    """The supervised figures of every view (module docstring) and its normal angles: ``truth``
    and ``pred`` ``{map: [V, H, W, C]}`` (albedo, metallic, roughness, normal); an optional
    ``truth["mask"]`` (``[V, H, W]`` or ``[V, H, W, 1]``, nonzero = counted) restricts every
    figure to its pixels."""
    a = truth
    masks = (np.asarray(a["mask"]).reshape(np.shape(a["albedo"])[:3]) > 0 if "mask" in a
             else np.ones(np.shape(a["albedo"])[:3], bool))
    fig: dict[str, list] = {k: [] for k in ("albedo_rel_l1", "albedo_psnr", "albedo_ssim", "metallic_rmse",
                                            "roughness_rmse", "angles")}
    for v in range(len(a["albedo"])):
        m = masks[v]
        whole = bool(m.all())
        gt = a["albedo"][v].astype(np.float64)
        al = aligned_albedo(pred["albedo"][v], gt, None if whole else m)
        fig["albedo_rel_l1"].append(float(np.abs(al - gt)[m].sum() / max(gt[m].sum(), 1e-12)))
        fig["albedo_psnr"].append(psnr(float(np.mean((al - gt)[m] ** 2))))
        fig["albedo_ssim"].append(ssim(al, gt, None if whole else m))
        fig["metallic_rmse"].append(rmse(np.asarray(pred["metallic"][v])[m], a["metallic"][v][m]))
        fig["roughness_rmse"].append(rmse(np.asarray(pred["roughness"][v])[m], a["roughness"][v][m]))
        fig["angles"].append(angular_error_deg(np.asarray(pred["normal"][v])[m], a["normal"][v][m]).ravel())
    return fig


def summarize(figures: Iterable[Mapping[str, list]]) -> dict[str, float]:
    """Pool :func:`scene_figures` of many scenes: means over views (consistency: over scenes),
    normal angle mean and percentages below :data:`NORMAL_THRESHOLDS`."""
    pooled: dict[str, list] = {}
    for f in figures:
        for k, v in f.items():
            pooled.setdefault(k, []).extend(v)
    angles = np.concatenate(pooled.pop("angles"))
    out = {k: float(np.nanmean(v)) for k, v in pooled.items()}
    out["normal_mean_deg"] = float(angles.mean())
    for t in NORMAL_THRESHOLDS:
        out[f"normal_within_{t:g}_pct"] = float(100.0 * (angles < t).mean())
    return out


def scene_mask(scene: Scene) -> np.ndarray:
    """``[V, H, W]`` bool: the pixels a scene's figures count (its ``mask``; all without one)."""
    if "mask" in scene.arrays:
        return scene.arrays["mask"][..., 0] > 0
    return np.ones(scene.arrays["image"].shape[:3], bool)


def training_constants(scenes: Iterable[Scene]) -> dict[str, Any]:
    """The trivial baselines' constants from a **training** set: ``{"albedo": [r, g, b] linear,
    "metallic", "roughness"}``, means over every counted pixel (:func:`scene_mask`) of every view."""
    sums, count = {"albedo": np.zeros(3), "metallic": np.zeros(1), "roughness": np.zeros(1)}, 0
    for scene in scenes:
        m = scene_mask(scene)
        count += int(m.sum())
        for key in sums:
            sums[key] += scene.arrays[key][m].astype(np.float64).sum(axis=0)
    if not count:
        raise ValueError("no pixels to take the baselines' constants from")
    return {"albedo": (sums["albedo"] / count).tolist(), "metallic": float(sums["metallic"][0] / count),
            "roughness": float(sums["roughness"][0] / count)}


def baselines(constants: Mapping[str, Any]) -> dict[str, Predictor]:
    """The trivial predictors of the module docstring (``mean``, ``flat``, ``image``) with
    ``constants`` of :func:`training_constants`."""
    from .views import camera_from_world

    def constant(scene: Scene, albedo: np.ndarray | None = None, plane_normal: bool = False) -> dict[str, np.ndarray]:
        v, h, w = scene.arrays["image"].shape[:3]
        normal = (np.stack([camera_from_world(p) @ np.array([0.0, 0.0, 1.0]) for p in scene.poses]) if plane_normal
                  else np.tile(np.array([0.0, 0.0, -1.0]), (v, 1)))
        return {"albedo": np.broadcast_to(np.asarray(constants["albedo"], np.float64), (v, h, w, 3))
                if albedo is None else albedo,
                "metallic": np.full((v, h, w, 1), constants["metallic"]),
                "roughness": np.full((v, h, w, 1), constants["roughness"]),
                "normal": np.broadcast_to(normal[:, None, None, :], (v, h, w, 3))}

    return {"mean": constant, "flat": lambda scene: constant(scene, plane_normal=True),
            "image": lambda scene: constant(scene, srgb_to_linear(scene.arrays["image"] / 255.0))}


def evaluate(scenes: list[Scene], methods: Mapping[str, Predictor], on_scene=None) -> dict[str, Any]:
    """``{"scenes", "views", "methods": {name: summarize(...)}}`` of every method on every scene;
    ``on_scene()`` after each scene (progress)."""
    figures: dict[str, list] = {name: [] for name in methods}
    for scene in scenes:
        for name, method in methods.items():
            figures[name].append(scene_figures(scene, method(scene)))
        if on_scene is not None:
            on_scene()
    return {"scenes": len(scenes), "views": int(sum(s.views for s in scenes)),
            "methods": {name: summarize(f) for name, f in figures.items()}}


COLUMNS = (("albedo_rel_l1", "albedo rel. L1 ↓", "{:.3f}"), ("albedo_psnr", "albedo PSNR ↑", "{:.2f}"),
           ("albedo_ssim", "albedo SSIM ↑", "{:.3f}"), ("metallic_rmse", "metallic RMSE ↓", "{:.3f}"),
           ("roughness_rmse", "roughness RMSE ↓", "{:.3f}"), ("normal_mean_deg", "normal mean° ↓", "{:.1f}"),
           ("normal_within_11.25_pct", "< 11.25° % ↑", "{:.1f}"), ("normal_within_30_pct", "< 30° % ↑", "{:.1f}"),
           ("consistency_albedo", "consist. albedo ↓", "{:.4f}"),
           ("consistency_metallic", "consist. metallic ↓", "{:.4f}"),
           ("consistency_roughness", "consist. roughness ↓", "{:.4f}"))
"""Markdown columns: (key, header, format)."""


BASELINES = ("mean", "flat", "image")
"""Names of :func:`baselines`' predictors."""
POSE_FREE = ("mean", "image")
"""Baselines that know what the network knows — the images — and not the camera poses."""


def margins(report: Mapping[str, Any], model: str = "mvinverse", against: tuple[str, ...] = POSE_FREE
            ) -> dict[str, dict[str, Any]]:
    """Per figure of :data:`COLUMNS`: ``{"model", "baseline" (the best of the ``against``
    baselines comparable on it, :data:`COMPARABLE`; None where none is), "baseline_value",
    "margin"}``; the margin is the model's improvement over that baseline in the figure's own
    units, positive when the model is better (baseline − model for smaller-is-better figures,
    model − baseline otherwise)."""
    methods = report["methods"]
    out = {}
    for key, _, _ in COLUMNS:
        sign = 1.0 if key in HIGHER_IS_BETTER else -1.0
        names = [n for n in COMPARABLE.get(key, BASELINES) if n in methods and n in against]
        best = max(names, key=lambda n: sign * methods[n][key], default=None)
        value = methods[model][key]
        out[key] = {"model": value, "baseline": best,
                    "baseline_value": None if best is None else methods[best][key],
                    "margin": None if best is None else sign * (value - methods[best][key])}
    return out


NOTES = ("Baselines: `mean` — the training set's mean albedo / metallic / roughness (after the scale-invariant "
         "alignment a constant albedo is each view's mean), normals facing the camera; `flat` — the same constants, "
         "normals the sample plane's in the camera frame, from the ground-truth pose (the network is not given "
         "poses); `image` — the input view (linear) as albedo.",
         "Cross-view consistency: any constant prediction scores 0 by construction, so the albedo consistency is "
         "compared with `image` (the input image as albedo); metallic / roughness consistency has no non-constant "
         "baseline and is not compared.",
         "Margin: the model's improvement over the best comparable baseline (named), in the figure's units; "
         "positive = the model is better. `margin` against the pose-free baselines (mean, image), `margin vs posed` "
         "against `flat`.")
"""Notes printed under the markdown table."""


def markdown_table(report: Mapping[str, Any]) -> str:
    """The report of :func:`evaluate` as a markdown table, one row per method, then (when the
    report holds them: ``margins``, ``margins_posed`` of :func:`margins`) the model's margins per
    figure and the notes."""
    head = "| method | " + " | ".join(h for _, h, _ in COLUMNS) + " |"
    rule = "|---" * (len(COLUMNS) + 1) + "|"
    rows = [f"| {name} | " + " | ".join(fmt.format(m[k]) for k, _, fmt in COLUMNS) + " |"
            for name, m in report["methods"].items()]
    for field, label in (("margins", "margin"), ("margins_posed", "margin vs posed")):
        if field in report:
            cells = []
            for key, _, fmt in COLUMNS:
                mg = report[field][key]
                cells.append("n/a" if mg["baseline"] is None
                             else fmt.replace("{:", "{:+").format(mg["margin"]) + f" vs {mg['baseline']}")
            rows.append(f"| **{label}** | " + " | ".join(cells) + " |")
    text = "\n".join([head, rule, *rows]) + f"\n\n{report['scenes']} scenes, {report['views']} views"
    if "constants_from" in report:
        text += f"; baseline constants from {report['constants_from']}"
    text += ".\n"
    if "margins" in report:
        text += "\n" + "\n".join(f"- {n}" for n in NOTES) + "\n"
    return text
