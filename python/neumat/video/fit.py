"""Direct fitting of a NeuMIP material to a posed video (VideoNeuMat seed §4.2, the baseline of
the LRM): the feature textures T_off / T_rgb are optimized against the video's frames with the
universal decoders frozen, then optionally everything is fine-tuned.

It is a NeuMIP fit on the shared training engine (:mod:`neumat.train.engine`, the NeuMIP plug-in
:class:`neumat.train.neumip.plugin.NeuMipModel`: stages ``frozen`` then ``finetune``, QAT,
offset schedule and penalties, atomic checkpoints, bit-identical resume, the ``max_minutes``
budget, progress bar, live ``.nmat`` export), whose one material is the video: its training
samples are the frames' pixels seen through the frame renderer (:mod:`.frame_source`), so the
L1 loss in BTF units is the rendered frames' L1 against the video, pixel ``p`` weighted by
``1 / E(p)`` (:mod:`.frame_source`). The exported bundle renders the frames again through
:func:`.frame_render.render_bundle_frame` (:func:`frame_metrics`) and in the viewer.

Bundle provenance: as ``neumat neumip fit`` writes it (``source`` = :func:`video_spec`, the run
config without the synthetic-BTF fields, held-out figures in BTF units over the held-out
frames' pixels, ``decoders``, ``finetune_steps``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..bundle import Bundle
from ..metrics import error_metrics
from ..models.neumip import NeuMipDecoders, NeuMipField
from ..train.config_io import ConfigError
from ..train.engine import Engine, StepCallback, seed_everything
from ..train.neumip import FitResult, MaterialData, NeuMipConfig
from ..train.neumip.fit import CALIBRATION_SAMPLES
from ..train.neumip.plugin import NeuMipModel
from ..train.sampling import calibrate_value_scale, calibration_values, validation_batch
from .frame_render import render_bundle_frame
from .frame_source import LIGHT_MODEL, FrameSource, PosedFrames, heldout_frames
from .trajectory import TRAJECTORIES

log = logging.getLogger(__name__)

SOURCE_KIND = "video_frames"
"""``kind`` of a video fit's data spec (bundle provenance ``source``)."""
SYNTHETIC_FIELDS = ("map_resolution", "material_seed", "slice_resolution", "n_views", "n_lights")
""":class:`NeuMipConfig` fields of the synthetic BTF, which a video fit does not use (left out
of :meth:`VideoFitConfig.to_dict`)."""


@dataclass
class VideoFitConfig(NeuMipConfig):
    """A direct fit of one posed video: :class:`NeuMipConfig` (texture size, steps, batch,
    learning rates, QAT, offset schedule, run control) plus the fields below."""

    holdout_every: int = 0
    """Hold out every k-th frame from training (frames i with i % k == k // 2; the figures are
    then measured on them); 0: train on every frame, as the seed's direct optimization does."""
    finetune_steps: int = 0
    """Steps of a fine-tune stage after the texture fit (textures and decoders, fake-quantized,
    learning rates times ``qat.finetune_lr_scale``); 0: the decoders stay universal."""

    def validate(self) -> None:
        """:meth:`NeuMipConfig.validate` plus ``holdout_every >= 0`` and ``finetune_steps >= 0``."""
        super().validate()
        if self.holdout_every < 0 or self.finetune_steps < 0:
            raise ConfigError("invalid video fit config: holdout_every and finetune_steps must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        """:meth:`NeuMipConfig.to_dict` without :data:`SYNTHETIC_FIELDS`."""
        return {k: v for k, v in super().to_dict().items() if k not in SYNTHETIC_FIELDS}


def material_name(video: PosedFrames) -> str:
    """``<folder>``, or ``<material_id>_<trajectory>`` for a dataset folder (``.../leather_rot000/video``)."""
    path = video.path.resolve()
    return f"{path.parent.name}_{path.name}" if path.name in TRAJECTORIES else path.name


def video_spec(video: PosedFrames, holdout_every: int) -> dict[str, Any]:
    """The data spec of a video fit (bundle provenance ``source``; :data:`SOURCE_KIND`)."""
    width, height = video.size
    return {"kind": SOURCE_KIND, "path": str(video.path.resolve()), "frames": len(video.poses), "width": width,
            "height": height, "sample_size": video.sample_size, "holdout_every": int(holdout_every),
            "heldout_frames": heldout_frames(len(video.poses), holdout_every), "light_model": LIGHT_MODEL}


def video_material(cfg: VideoFitConfig, video: PosedFrames, name: str | None = None) -> MaterialData:
    """The video as the NeuMIP plug-in's material: its :class:`.frame_source.FrameSource`, the
    ``value_scale`` calibrated on its training pixels (the ``value_quantile`` of their BTF
    values) and ``val_samples`` held-out pixels."""
    name = name or material_name(video)
    source = FrameSource(video, cfg.holdout_every, name)
    scale = calibrate_value_scale(calibration_values(source, cfg.seed, CALIBRATION_SAMPLES), cfg.value_quantile)
    return MaterialData(name, video_spec(video, cfg.holdout_every), source, scale,
                        validation_batch(source, cfg.seed, cfg.val_samples))


def fit_video(cfg: VideoFitConfig, video: PosedFrames, decoders: NeuMipDecoders, max_offset: float, *,
              name: str | None = None, progress: bool = True, resume: bool | str | Path = False,
              callbacks: Sequence[StepCallback] = (), bundle_extra: dict[str, Any] | None = None) -> FitResult:
    """Fit ``video``'s NeuMIP textures with frozen ``decoders`` (``max_offset`` UV units, from the
    decoder file) for ``cfg.steps`` steps, then fine-tune for ``cfg.finetune_steps`` (module
    docstring). ``decoders`` are frozen in place (and trained in place by a fine-tune).

    With ``cfg.out`` the run directory holds ``config.json`` and checkpoints; ``resume`` (True:
    its newest checkpoint, or a checkpoint path) continues a killed run bit-identically; with
    ``cfg.export`` the INT8 bundle is written atomically at every validation (``val_every``; 0:
    at the end); ``cfg.max_minutes`` rescales the run to a time budget. ``callbacks``: called after
    every step with ``(engine, steps_done)``.
    """
    cfg.validate()
    cfg = dataclasses.replace(cfg, progress=cfg.progress and progress)
    stages = [("frozen", cfg.steps)] + ([("finetune", cfg.finetune_steps)] if cfg.finetune_steps else [])
    extra = {**(bundle_extra or {}), "finetune_steps": cfg.finetune_steps}

    def build(info, state):
        material = video_material(cfg, video, name)
        seed_everything(cfg.seed)
        decoders.freeze()
        model = NeuMipField(1, cfg.texture_resolution, max_offset, decoders)
        return NeuMipModel(cfg, [material], model, stages, info, state, task="fit", bundle_extra=extra)

    engine = Engine(cfg, build, resume, callbacks, cfg.steps + cfg.finetune_steps)
    outcome = engine.run()
    plugin = engine.plugin
    plugin.model.decoders.freeze_observers(True)
    return FitResult(plugin.model, plugin.materials, plugin.seconds, plugin.metrics, outcome.history,
                     outcome.steps_done, outcome.checkpoint, outcome.stopped_by_budget, outcome.export_error)


def frame_metrics(bundle: Bundle, source: FrameSource, frames: Sequence[int]) -> dict[str, float]:
    """Image-space figures of ``bundle`` rendered at ``frames`` of ``source``'s video
    (:func:`.frame_render.render_bundle_frame`, INT8, the dataset's disk light) against the
    frames' decoded radiance, over the pixels a fit may sample (:meth:`FrameSource.usable`), in
    the order ARCHITECTURE.md reports them: ``rel_l1`` (Σ|pred − frame| / Σ|frame| over all
    those pixels), ``flip`` (HDR-ꟻLIP per frame, :func:`neumat.fidelity.metrics.image_metrics`,
    averaged over the pixels), ``psnr`` (peak 1), ``pixels``."""
    from ..fidelity.metrics import image_metrics

    video = source.video
    width, height = video.size
    pred, ref, flip = [], [], []
    for i in frames:
        keep = source.usable(i)
        image = render_bundle_frame(bundle, video.poses[i], width, height, video.sample_size, LIGHT_MODEL)
        flip.append((image_metrics(image, source.frame_radiance(i), keep)["flip"], int(keep.sum())))
        pred.append(image[keep])
        ref.append(source.frame_radiance(i)[keep])
    m = error_metrics(np.concatenate(pred), np.concatenate(ref))
    return {"rel_l1": m["rel_l1"], "flip": sum(f * n for f, n in flip) / m["valid"], "psnr": m["psnr"],
            "pixels": m["valid"]}
