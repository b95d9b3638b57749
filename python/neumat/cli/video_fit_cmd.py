"""``neumat video fit``: direct fitting of a NeuMIP material to a posed video (:mod:`neumat.video.fit`,
the seed's baseline of the LRM), registered on ``neumat video``.

The fit runs on the training engine (progress bar, ``--minutes`` budget, atomic checkpoints in
``--run-dir``, ``--resume`` continuing a killed run bit-identically); the ``.nmat`` is written
atomically once, at the end (a killed run leaves none, or the previous one). Everything the fit
reads is checked before any frame is fitted: the output path, the decoder file, the config, the
folder's poses, frame count, names and sizes.

Examples::

    neumat video fit out/videos/leather_rot000/video --out leather_video.nmat
    neumat video fit VIDEO --out m.nmat --minutes 20 --texture-resolution 128 --holdout-every 8
    neumat video fit VIDEO --out m.nmat --finetune-decoders --finetune-steps 300
    neumat video fit VIDEO --out m.nmat --resume              # continue after a kill (m.run/)
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..assets import ASSETS
from .neumip_cmd import _is_main, _training_errors
from .train_cmd import setup_logging

log = logging.getLogger(__name__)

DEFAULT_DECODERS = ASSETS / "neumip" / "universal_mlps.safetensors"
"""The shipped universal NeuMIP decoders of a source checkout (``neumat neumip pretrain`` writes
others; a wheel install has none: give ``--decoders``)."""
RUN_SUFFIX = ".run"
"""Default run directory: ``--out`` with this suffix instead of ``.nmat``."""


def _config(run_dir: Path, resume: bool, defaults: dict[str, Any], options: dict[str, Any],
            config: Optional[Path], sets: Optional[list[str]]):
    """The run's :class:`~neumat.video.fit.VideoFitConfig`: ``defaults`` (the decoder file's
    texture side), then ``--config`` or, resuming, the run directory's ``config.json``, then the
    options given (None: not given), then ``--set``."""
    from ..train.config_io import layered_config, merge_config
    from ..video.fit import VideoFitConfig

    return layered_config(merge_config(VideoFitConfig(), defaults), config, run_dir, resume, options, sets)


def fit(
    frames_dir: Annotated[Path, typer.Argument(help="Posed video folder: frames/00000.png ..., poses.json "
                                                    "(`neumat video render-dataset` or `generate`).")],
    out: Annotated[Path, typer.Option(help="The .nmat (kind neumip) to write, atomically, at the end.")],
    minutes: Annotated[Optional[float], typer.Option(
        min=0, help="Wall-time budget, minutes (0: none); the run is rescaled so QAT and the decay fit in it.")] = None,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Texture-fitting steps (default 1000).")] = None,
    finetune_decoders: Annotated[Optional[bool], typer.Option(
        "--finetune-decoders/--no-finetune-decoders",
        help="Then fine-tune textures and decoders (the decoders stop being universal).")] = None,
    finetune_steps: Annotated[Optional[int], typer.Option(
        min=1, help="Fine-tune steps with --finetune-decoders (default: a quarter of --steps).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint in --run-dir.")] = False,
    run_dir: Annotated[Optional[Path], typer.Option(
        help="Checkpoints, config.json, history.json, loss.png (default: --out with .run for .nmat).")] = None,
    decoders: Annotated[Path, typer.Option(help="Universal decoder file (`neumat neumip pretrain`).")] = DEFAULT_DECODERS,
    holdout_every: Annotated[Optional[int], typer.Option(
        min=0, help="Hold out every k-th frame for the figures (0: fit all frames, as the seed).")] = None,
    texture_resolution: Annotated[Optional[int], typer.Option(
        min=2, help="Side of T_off / T_rgb, texels per sample (default: the decoders').")] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Pixels per step (default 1024).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of initialization and pixel sampling.")] = None,
    config: Annotated[Optional[Path], typer.Option(
        help="Config file (.json or .toml): any fields of neumat.video.fit.VideoFitConfig.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override a config field: field=value (e.g. lr_textures=0.01), repeatable.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Fit a NeuMIP material (T_off, T_rgb; universal decoders frozen) to a posed video's frames.

    Exit 2 for a bad option, decoder file, config value, video folder or output path (checked
    before the fit); exit 1 when a checkpoint cannot be read, the run diverges or the bundle
    cannot be written."""
    from ..fileio import check_output_path
    from ..train.guards import check_run_outputs
    from ..train.neumip import load_decoders
    from ..video.fit import fit_video, frame_metrics
    from ..video.frame_source import heldout_frames, read_posed_frames

    setup_logging()
    run_dir = run_dir if run_dir is not None else out.with_suffix(RUN_SUFFIX)
    if finetune_steps is not None and finetune_decoders is not True:
        raise typer.BadParameter("--finetune-steps needs --finetune-decoders")
    with _training_errors():
        check_output_path(out, (".nmat",), "--out")
        nets, max_offset, info = load_decoders(decoders)
        res = info["config"].get("texture_resolution")
        options = {"steps": steps, "max_minutes": minutes, "holdout_every": holdout_every, "seed": seed,
                   "texture_resolution": texture_resolution, "batch_size": batch_size, "out": str(run_dir),
                   "export": str(out), "progress": None if progress else False}
        cfg = _config(run_dir, resume, {"texture_resolution": int(res)} if res else {}, options, config, set_)
        if finetune_decoders is not None:
            ft = (finetune_steps or max(1, cfg.steps // 4)) if finetune_decoders else 0
            cfg = dataclasses.replace(cfg, finetune_steps=ft)
        check_run_outputs(cfg)
        video = read_posed_frames(frames_dir, cfg.holdout_every)
        result = fit_video(cfg, video, nets, max_offset, resume=resume,
                           bundle_extra={"decoders": str(decoders), "pretrained_on": info["materials"]})
    if not _is_main():  # torchrun: the main process writes and reports
        return
    if result.export_error:
        log.error("%s; the checkpoints in %s are intact: `neumat export %s --out X.nmat` writes it",
                  result.export_error, run_dir, run_dir)
        raise typer.Exit(1)
    material = result.materials[0]
    log.info("fitted %s in %.1f s (%d steps%s); wrote %s", material.name, result.seconds, result.steps_done,
             ", stopped by the time budget" if result.stopped_by_budget else "", out)
    m = result.metrics[0]
    held = heldout_frames(len(video.poses), cfg.holdout_every)
    log.info("%s pixels: BTF relative L1 fp32 %.4f / int8 %.4f, PSNR int8 %.2f dB",
             "held-out frames'" if held else "training frames'", m.get("fp32_rel_l1", float("nan")),
             m.get("int8_rel_l1", float("nan")), m.get("int8_psnr", float("nan")))
    if held:
        from ..bundle import load_bundle

        f = frame_metrics(load_bundle(out), material.source, held)
        typer.echo(f"held-out frames {held}: relative L1 {f['rel_l1']:.4f}, FLIP {f['flip']:.4f}, PSNR "
                   f"{f['psnr']:.2f} dB ({f['pixels']} pixels)")
