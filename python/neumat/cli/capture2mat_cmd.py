"""``neumat capture2mat``: a capture (frames, a video, or a posed video folder) to a neural material
in one command — ``neumat inverse`` (MVInverse, registration, fusion: a PBR maps folder), then
``neumat train --maps`` on those maps (the same code path: :func:`neumat.train.loop.train` with a
``maps`` source), then the bundle — under one progress display, ending with the line that
opens it in the viewer.

Files: the maps in ``--maps-dir`` (default ``X.maps`` beside ``X.nmat``), the training run in
``--run-dir`` (default ``X.run``), the bundle ``X.nmat`` written atomically by the trainer.
Everything is checked before MVInverse runs: the capture (frames, sizes), the weights, the
output paths and the training config.

Examples::

    neumat capture2mat capture.mp4 --out rock.nmat --weights runs/inverse
    neumat capture2mat frames/ --out rock.nmat --weights runs/inverse --minutes 20
    neumat capture2mat out/videos/leather_rot000/video --out leather.nmat --weights runs/inverse
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from .inverse_cmd import WEIGHTS_HELP, StageProgress, capture_errors
from .train_cmd import setup_logging

log = logging.getLogger(__name__)


def capture2mat(
    capture: Annotated[Path, typer.Argument(help="Folder of frames, video file, or posed video folder (poses.json).")],
    out: Annotated[Path, typer.Option(help="The .nmat to write.")],
    weights: Annotated[Optional[Path], typer.Option(help=WEIGHTS_HELP)] = None,
    random_init: Annotated[bool, typer.Option(help="Random MVInverse weights (smoke tests; meaningless maps).")] = False,
    minutes: Annotated[float, typer.Option(min=0, help="Training budget, minutes (0: none; --steps then bounds "
                                                       "it).")] = 5.0,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Training steps (default: neumat train's).")] = None,
    maps_dir: Annotated[Optional[Path], typer.Option(help="Maps folder (default: --out with .maps).")] = None,
    run_dir: Annotated[Optional[Path], typer.Option(help="Training run folder (default: --out with .run).")] = None,
    max_frames: Annotated[int, typer.Option(min=2, help="Frames used, evenly spaced over the capture.")] = 24,
    poses: Annotated[Optional[Path], typer.Option(help="Pose file (neumat.video.poses/1) of a frame folder or "
                                                       "video: one pose per frame; registration by these poses.")
                     ] = None,
    long_side: Annotated[int, typer.Option(min=14, help="Long side of the frames fed to MVInverse, px.")] = 518,
    resolution: Annotated[int, typer.Option(min=0, help="Texels per map side (0: the frames' short side).")] = 0,
    fov: Annotated[float, typer.Option(min=1, max=170, help="Horizontal field of view of unposed frames, "
                                                             "degrees.")] = 60.0,
    train_set: Annotated[Optional[list[str]], typer.Option(
        "--train-set", help="Override a `neumat train` config field: section.field=value, repeatable.")] = None,
    progress: Annotated[bool, typer.Option(help="Show the progress display.")] = True,
) -> None:
    """Capture -> maps (MVInverse) -> neural material (.nmat) -> `neumat view` line.

    Exit 2 for bad input (a frame that does not decode or register, sizes, weights, paths, config:
    checked before the work that needs them); exit 1 when training fails or the bundle cannot be
    written."""
    from ..fileio import check_output_path
    from ..inverse.capture import CaptureSettings, capture_to_maps
    from ..inverse.frames import read_capture
    from ..inverse.maps_io import check_maps_dir
    from ..inverse.predictor import load_model
    from ..train import ConfigError, TrainConfig, apply_overrides
    from ..train.guards import TrainingDiverged, check_run_outputs
    from ..train.loop import train as run_training
    from ..train.sources import SourceError

    setup_logging()
    maps_dir = maps_dir if maps_dir is not None else out.with_suffix(".maps")
    run_dir = run_dir if run_dir is not None else out.with_suffix(".run")

    def train_config(height_scale: float) -> TrainConfig:
        given = {"source.kind": "maps", "source.path": str(maps_dir), "source.height_scale": height_scale,
                 "source.resolution": 0, "out": str(run_dir), "export": str(out), "max_minutes": minutes,
                 "progress": False, **({"steps": steps} if steps is not None else {})}
        return apply_overrides(TrainConfig(), [f"{k}={json.dumps(v)}" for k, v in given.items()] + list(train_set or []))

    try:
        check_output_path(out, (".nmat",), "--out")
        check_maps_dir(maps_dir)
        check_run_outputs(train_config(0.03))  # the config and the run's paths, before any work
        frames = read_capture(capture, max_frames, poses)
        net, description = load_model(weights, "tiny", random_init)
        log.info("%s; %d frames of %s", description, len(frames.names), capture)
        with StageProgress(progress) as bar:
            record = capture_to_maps(frames, maps_dir, net, CaptureSettings(long_side, resolution, fov), bar)
            cfg = train_config(record["height_scale"])
            bar("train", 0, cfg.steps)
            result = run_training(cfg, callbacks=[lambda engine, done: bar("train", done, engine.total_steps)])
    except (ConfigError, SourceError, *capture_errors()) as e:
        raise typer.BadParameter(str(e)) from None
    except (TrainingDiverged, OSError) as e:
        log.error("%s", e)
        raise typer.Exit(1) from None
    if result.export_error:
        log.error("%s; the maps (%s) and the run's checkpoints (%s) are intact: `neumat export %s --out %s`",
                  result.export_error, maps_dir, run_dir, run_dir, out)
        raise typer.Exit(1)
    h = result.heldout
    if h:
        log.info("trained %d steps on the maps; held-out INT8 relative L1 %.2f %%, PSNR %.2f dB", result.steps_done,
                 100 * h["int8"]["rel_l1"], h["int8"]["psnr"])
    typer.echo(f"wrote {out} (maps: {maps_dir}, run: {run_dir})\nview it: neumat view {out}")
