"""MVInverse: feed-forward multi-view inverse rendering (seed 002) — a capture's views in, per
view albedo, metallic, roughness, camera-space normal and diffuse shading maps out (PBR maps
that ``neumat train --maps`` reads).

Modules (one concept each; timm and accelerate, the ``inverse`` extra, are imported lazily —
``import neumat.inverse`` loads neither, nor torch):

* :mod:`.intrinsics` — the five output maps declared once (channels, range, activation, loss);
* :mod:`.config` — :class:`ModelConfig` (``full()``: the seed's network, ``tiny()``: tests),
  :class:`InverseTrainConfig` and :class:`~.config.FinetuneConfig`;
* :mod:`.batch` — the ``[B, V, 3, H, W]`` input, its checks (errors name the frame), training
  batches and the dynamic number of views per step;
* :mod:`.timm_import` — importing timm, with or without torchvision;
* :mod:`.encoders` — the DINOv2 ViT-L/14 (registers) and ResNeXt-101 32x8d encoders (timm);
* :mod:`.attention` — Pi3's permutation-equivariant alternating frame-wise / global attention;
* :mod:`.dpt` — the DPT heads and the seed's detail fusion with the ResNeXt features;
* :mod:`.model` — :class:`~.model.MVInverse`, the network, and its parameter groups;
* :mod:`.weights` — pretrained Pi3 / DINOv2 / ResNeXt weights from local files in their
  published key layouts (a weights folder, prefixes, position-embedding resampling);
* :mod:`.losses` — MSE + multi-scale gradient, scale-invariant albedo, cosine normal loss,
  the unreliable-albedo mask, the weighted sum (seed eq. 2-5, 7-8);
* :mod:`.train` — the training engine's plug-in: stages (pretraining with frozen encoders, then
  heads only), one optimizer step per call, exact resume;
* :mod:`.flow` — OpenCV optical flow (DIS, TV-L1) between adjacent frames, forward–backward
  occlusion masks;
* :mod:`.consistency` — the consistency finetuning objective (flow-warped adjacent frames +
  anchor at frame 0, eq. 6) and the adjacent-frame reprojection error (Table 4);
* :mod:`.finetune` — consistency finetuning on unlabeled videos, the engine's plug-in;
* :mod:`.synthetic` — synthetic multi-view scenes and panning videos with exact maps (tests,
  smoke runs);
* :mod:`.views` — capture cameras and light of a scene, exact ground-truth buffers of a view
  (the frames and axes every other module uses);
* :mod:`.shapes` — curved sample shapes (a sphere, a cylinder): Mitsuba's parametrization, exact buffers;
* :mod:`.dataset` — rendered training / evaluation data (Mitsuba 3 images and shading, reference
  ground truth), its folder and batch source;
* :mod:`.register` — frames to the texture plane: homographies from known poses, or SIFT/ORB +
  RANSAC to frame 0; texture-to-camera rotations;
* :mod:`.fuse` — per-frame maps resampled into texture space, robust median, confidence;
* :mod:`.height` — Frankot–Chellappa height from the fused normals;
* :mod:`.maps_io` — the maps folder ``neumat train --maps`` reads, contact sheet, record;
* :mod:`.predictor` — trained weights from a run directory, inference in chunks of views;
* :mod:`.frames` — reading a capture (image folder or video file, optionally with a pose file;
  posed video folder);
* :mod:`.capture` — the capture -> maps pipeline (predict, register, fuse, height, write);
* :mod:`.evaluate` — the seed's figures (scale-invariant albedo PSNR / SSIM, metallic and
  roughness RMSE, normal angles, reprojection consistency) beside trivial baselines.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Intrinsic", "ModelConfig", "InverseTrainConfig", "MVInverse"]


def __getattr__(name: str) -> Any:
    """Lazy access to the public names (keeps ``import neumat.inverse`` free of torch and timm)."""
    if name == "Intrinsic":
        from .intrinsics import Intrinsic
        return Intrinsic
    if name in ("ModelConfig", "InverseTrainConfig"):
        from . import config
        return getattr(config, name)
    if name == "MVInverse":
        from .model import MVInverse
        return MVInverse
    raise AttributeError(f"module 'neumat.inverse' has no attribute {name!r}")
