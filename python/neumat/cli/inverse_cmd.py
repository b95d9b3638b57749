"""``neumat inverse``: capture -> PBR maps with MVInverse (seed 002), one command per step.

* ``neumat inverse FRAMES_OR_VIDEO --out MAPS_DIR`` (the ``run`` command, the default) —
  predictions of every frame registered to the texture plane and fused into the maps
  ``neumat train --maps`` reads (:mod:`neumat.inverse.capture`);
* ``render-data`` — multi-view Mitsuba renders of materials with exact intrinsic maps
  (:mod:`neumat.inverse.dataset`);
* ``train`` — MVInverse on such data (:mod:`neumat.inverse.train`);
* ``eval`` — albedo / metallic / roughness / normal / cross-view consistency figures on held-out
  rendered views beside trivial baselines (:mod:`neumat.inverse.evaluate`);
* ``finetune`` — consistency finetuning on unlabeled videos, and ``consistency`` — its figure,
  the reprojection error between adjacent frames (:mod:`.inverse_finetune_cmd`).

Heavy dependencies (torch, timm, Mitsuba, OpenCV) are imported inside the commands.

Examples::

    neumat inverse render-data data/inverse --scenes 20 --size 112
    neumat inverse train data/inverse --out runs/inverse --model tiny --minutes 10
    neumat inverse train data/inverse --out runs/inverse --pretrained weights/   # pi3 + resnext files
    neumat inverse eval data/inverse_test --weights runs/inverse --train-data data/inverse --json eval.json
    neumat inverse capture.mp4 --out maps/capture --weights runs/inverse
    neumat inverse out/videos/leather_rot000/video --out maps/leather      # posed: known poses
    neumat inverse frames/ --poses poses.json --out maps/sample             # frames + a pose file
    neumat inverse finetune --frames clip.mp4 --weights runs/inverse --out runs/inverse_ft
    neumat inverse consistency heldout.mp4 --weights runs/inverse --weights runs/inverse_ft
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from .train_cmd import setup_logging

log = logging.getLogger(__name__)


class _RunByDefault(TyperGroup):
    """A group whose first argument, when it is not a command name, starts the ``run`` command
    (``neumat inverse FRAMES --out DIR`` = ``neumat inverse run FRAMES --out DIR``)."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_RunByDefault, no_args_is_help=True,
                  help="Capture -> PBR maps with MVInverse: run on frames or a video (default command), "
                       "render training data, train, evaluate.")


class StageProgress:
    """One live display for a pipeline: a progress line per stage (``stage(name, done, total)``),
    added when the stage first reports. A context manager; ``enabled=False`` shows nothing."""

    def __init__(self, enabled: bool = True) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.enabled = enabled
        self._bar = Progress(TextColumn("{task.description:>9}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), disable=not enabled)
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> "StageProgress":
        self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self._bar.stop()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self._tasks:
            self._tasks[stage] = self._bar.add_task(stage, total=total)
        self._bar.update(self._tasks[stage], completed=done, total=total)


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def render_data(
    out: Annotated[Path, typer.Argument(help="Data set folder: <out>/<scene>/views.npz, poses.json, scene.json.")],
    material: Annotated[str, typer.Option(
        help="Comma list of registry materials (procedural and photo-based); 'all' for every one.")] = "all",
    maps: Annotated[Optional[list[Path]], typer.Option(help="PBR map folder (repeatable).")] = None,
    scenes: Annotated[int, typer.Option(min=1, help="Scenes per material.")] = 4,
    views: Annotated[int, typer.Option(min=1, help="Cameras per scene.")] = 6,
    size: Annotated[int, typer.Option(min=14, help="Image side, pixels (a multiple of 14).")] = 112,
    spp: Annotated[int, typer.Option(min=1, help="Mitsuba samples per pixel.")] = 16,
    resolution: Annotated[int, typer.Option(min=8, help="Texels per side of the materials' maps.")] = 64,
    metal_probability: Annotated[float, typer.Option(min=0, max=1, help="Chance of a partly metal scene.")] = 0.3,
    seed: Annotated[int, typer.Option(help="Seed of materials, rotations, cameras and lights.")] = 0,
    variant: Annotated[str, typer.Option(help="Mitsuba variant: auto, scalar_rgb, llvm_ad_rgb.")] = "auto",
    shape: Annotated[str, typer.Option(help="Sample shape: plane (displaced height field), sphere or cylinder "
                                            "(the maps wrapped on it, normal-mapped; background masked).")] = "plane",
) -> None:
    """Render multi-view scenes of materials on a plane, a sphere or a cylinder (Mitsuba 3 images and diffuse
    shading; exact albedo, metallic, roughness, camera-space normal maps from the project's
    reference geometry).
    Finished scenes are skipped; a killed run leaves no partial scene."""
    from ..data import DataError, MATERIALS, PbrLoadError
    from ..fileio import OutputPathError, check_output_dir
    from ..inverse.dataset import DataSettings, render_data as render, scene_materials

    setup_logging()
    try:
        check_output_dir(out, "OUT")
        names = sorted(MATERIALS) if material == "all" else _split(material)
        settings = DataSettings(size=size, views=views, spp=spp, resolution=resolution,
                                metal_probability=metal_probability, variant=variant, shape=shape)
        factories = scene_materials(names, maps or [], resolution)
    except (DataError, PbrLoadError, OutputPathError, ValueError) as e:
        raise typer.BadParameter(str(e)) from None
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("render", total=len(factories) * scenes)
        folders = render(out, factories, scenes, settings, seed, on_scene=lambda _: bar.advance(task))
    log.info("%d scenes of %d views (%dx%d px) in %s", len(folders), views, size, size, out)


app.command("render-data", short_help="Render multi-view training / evaluation scenes with exact maps.")(render_data)


def capture_errors():
    """The exceptions of reading, predicting, registering, fusing and writing that are the
    input's fault (exit 2 with their message)."""
    from ..fileio import OutputPathError
    from ..inverse.batch import ViewError
    from ..inverse.frames import FrameError
    from ..inverse.fuse import FusionError
    from ..inverse.maps_io import MapsDirError
    from ..inverse.predictor import WeightsNotFound
    from ..inverse.register import RegistrationError

    return (FrameError, ViewError, RegistrationError, FusionError, MapsDirError, WeightsNotFound, OutputPathError)


WEIGHTS_HELP = "Trained MVInverse: a `neumat inverse train` run directory or one of its ckpt_*.pt files."


def run(
    capture: Annotated[Path, typer.Argument(help="Folder of frames, video file, or posed video folder (poses.json).")],
    out: Annotated[Path, typer.Option(help="Maps folder to write (replaced as a whole; basecolor, roughness, "
                                           "metallic, normal_gl, height, confidence, contact_sheet.png).")],
    weights: Annotated[Optional[Path], typer.Option(help=WEIGHTS_HELP)] = None,
    random_init: Annotated[bool, typer.Option(help="Random weights (smoke tests; the maps mean nothing).")] = False,
    model: Annotated[str, typer.Option(help="--random-init architecture: tiny or full.")] = "tiny",
    max_frames: Annotated[int, typer.Option(min=2, help="Frames used, evenly spaced over the capture.")] = 24,
    poses: Annotated[Optional[Path], typer.Option(help="Pose file (neumat.video.poses/1) of a frame folder or "
                                                       "video: one pose per frame; registration by these poses.")
                     ] = None,
    long_side: Annotated[int, typer.Option(min=14, help="Long side of the frames fed to the network, px.")] = 518,
    resolution: Annotated[int, typer.Option(min=0, help="Texels per map side (0: the frames' short side).")] = 0,
    fov: Annotated[float, typer.Option(min=1, max=170, help="Horizontal field of view of unposed frames, "
                                                             "degrees (normals' rotation).")] = 60.0,
    progress: Annotated[bool, typer.Option(help="Show the progress display.")] = True,
) -> None:
    """Frames or a video of a flat material sample -> PBR maps: MVInverse per frame, frames
    registered to the sample's plane (known poses, else features matched to frame 0), robust
    texture-space fusion, Frankot-Chellappa height. Exit 2 for bad input (the message names the
    frame)."""
    from ..inverse.capture import CaptureSettings, capture_to_maps
    from ..inverse.frames import read_capture
    from ..inverse.maps_io import check_maps_dir
    from ..inverse.predictor import load_model

    setup_logging()
    try:
        check_maps_dir(out)
        frames = read_capture(capture, max_frames, poses)
        net, description = load_model(weights, model, random_init)
        log.info("%s; %d frames of %s", description, len(frames.names), capture)
        with StageProgress(progress) as bar:
            record = capture_to_maps(frames, out, net, CaptureSettings(long_side, resolution, fov), bar)
    except capture_errors() as e:
        raise typer.BadParameter(str(e)) from None
    typer.echo(f"maps in {out} (contact sheet: {out / 'contact_sheet.png'}); a material from them: neumat train "
               f"--maps {out} --height-scale {record['height_scale']:.6g} --resolution 0 --export X.nmat")


app.command("run", short_help="Frames or a video -> PBR maps folder (the default command).")(run)


def evaluate(
    data: Annotated[Path, typer.Argument(help="Held-out rendered scenes (`neumat inverse render-data`).")],
    weights: Annotated[Optional[Path], typer.Option(help=WEIGHTS_HELP)] = None,
    random_init: Annotated[bool, typer.Option(help="Random weights (smoke tests; the figures mean nothing).")] = False,
    model: Annotated[str, typer.Option(help="--random-init architecture: tiny or full.")] = "tiny",
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the report as JSON here.")] = None,
    markdown: Annotated[Optional[Path], typer.Option(help="Write the markdown table here.")] = None,
    baselines_only: Annotated[bool, typer.Option(help="Only the trivial baselines (no model).")] = False,
    train_data: Annotated[Optional[Path], typer.Option(
        help="The model's training scenes: the baselines' mean albedo / metallic / roughness come from them "
             "(default: from the evaluation scenes themselves, an oracle).")] = None,
) -> None:
    """Albedo (scale-invariant rel. L1, PSNR, SSIM), metallic / roughness RMSE, normal angles and
    cross-view consistency by reprojection (seed Tables 1-4) of MVInverse on held-out rendered
    views, beside trivial baselines (training-set means, flat normals, the input image as albedo)
    and the model's margin over the best of them per figure; prints the markdown table. A
    constant is trivially consistent across views (0), so consistency is compared with the
    input-image baseline only."""
    import json

    from ..fileio import OutputPathError, atomic_write_bytes, check_output_path
    from ..inverse.dataset import read_scene, scene_folders
    from ..inverse.evaluate import baselines, evaluate as run_eval, margins, markdown_table, training_constants
    from ..inverse.predictor import WeightsNotFound, load_model, predict

    setup_logging()
    try:
        for path, suffix, what in ((json_out, ".json", "--json"), (markdown, ".md", "--markdown")):
            if path is not None:
                check_output_path(path, (suffix,), what)
        scenes = [read_scene(f) for f in scene_folders(data)]
        source = scenes if train_data is None else [read_scene(f) for f in scene_folders(train_data)]
        constants = training_constants(source)
        methods = baselines(constants)
        if not baselines_only:
            net, description = load_model(weights, model, random_init)
            log.info("%s", description)
            methods = {"mvinverse": lambda scene: predict(net, scene.arrays["image"]), **methods}
    except (OutputPathError, WeightsNotFound, ValueError, OSError) as e:
        raise typer.BadParameter(str(e)) from None
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("evaluate", total=len(scenes))
        report = run_eval(scenes, methods, on_scene=lambda: bar.advance(task))
    report["data"] = str(data)
    report["constants"] = constants
    report["constants_from"] = (f"the training set {train_data}" if train_data is not None
                                else "the evaluation set itself (oracle; give --train-data)")
    if "mvinverse" in methods:
        report["margins"], report["margins_posed"] = margins(report), margins(report, against=("flat",))
    report["weights"] = str(weights) if weights else ("random" if random_init else None)
    table = markdown_table(report)
    if json_out is not None:
        atomic_write_bytes(json_out, json.dumps(report, indent=1).encode())
    if markdown is not None:
        atomic_write_bytes(markdown, table.encode())
    typer.echo(table)


app.command("eval", short_help="Seed figures on held-out rendered views, beside baselines.")(evaluate)


def train(
    data: Annotated[Path, typer.Argument(help="Rendered scenes (`neumat inverse render-data`).")],
    out: Annotated[Path, typer.Option(help="Run directory: config.json, ckpt_*.pt, history.json.")],
    model: Annotated[str, typer.Option(help="Architecture: full (the seed's) or tiny (CPU runs).")] = "full",
    minutes: Annotated[Optional[float], typer.Option(min=0, help="Wall-time budget, minutes (0: none).")] = None,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Pretraining steps.")] = None,
    heads_steps: Annotated[Optional[int], typer.Option(min=0, help="Heads-only steps after them.")] = None,
    pretrained: Annotated[Optional[Path], typer.Option(
        help="Folder of pretrained weights: pi3.safetensors (Pi3's model.safetensors: encoder + decoder) or "
             "dinov2.safetensors, and resnext.safetensors (.pth / .pt / .bin too); local files only.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint in --out.")] = False,
    start_at_mean: Annotated[bool, typer.Option(
        help="Start the heads at the training set's mean albedo / metallic / roughness (zeroed output layers) "
             "instead of random output layers (the seed's start).")] = False,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override a field of neumat.inverse.config.InverseTrainConfig: field=value, repeatable.")] = None,
) -> None:
    """Train MVInverse on rendered scenes (both stages of the seed; checkpoints, exact --resume,
    time budget), from random weights or from --pretrained (the seed's Pi3 / DINOv2 / ResNeXt
    start; neumat.inverse.weights documents the accepted key layouts); with --start-at-mean the
    untrained network predicts the training set's means (neumat.inverse.model.start_at_constants)."""
    import json

    from ..train.config_io import ConfigError, apply_overrides, load_config
    from ..inverse.config import InverseTrainConfig
    from ..inverse.dataset import dataset_batches, read_scene, scene_folders
    from ..inverse.evaluate import training_constants
    from ..inverse.train import run_training
    from ..inverse.weights import WeightsError, find_weight_files

    setup_logging()
    if model not in ("tiny", "full"):
        raise typer.BadParameter(f"--model must be tiny or full, got {model!r}")
    try:
        saved = out / "config.json"
        if resume and saved.is_file():
            cfg = load_config(saved, InverseTrainConfig)
        else:
            cfg = InverseTrainConfig.tiny(progress=True) if model == "tiny" else InverseTrainConfig()
        given = {"out": str(out), "max_minutes": minutes, "steps": steps, "heads_steps": heads_steps,
                 "pretrained": None if pretrained is None else str(pretrained)}
        cfg = apply_overrides(cfg, [f"{k}={json.dumps(v)}" for k, v in given.items() if v is not None] + list(set_ or []))
        cfg.validate()
        if cfg.pretrained and not resume:
            find_weight_files(cfg.pretrained)  # the folder's layout, checked before any work
        batches = dataset_batches(data)
        constants = training_constants(read_scene(f) for f in scene_folders(data)) if start_at_mean else None
    except (ConfigError, ValueError, OSError) as e:
        raise typer.BadParameter(str(e)) from None
    try:
        result = run_training(cfg, batches, resume=resume, constants=constants)
    except WeightsError as e:  # raised while the run is set up, before its directory is written
        raise typer.BadParameter(str(e)) from None
    last = next((h for h in reversed(result.history) if h.get("kind") == "train"), {})
    log.info("%d steps in %.1f s%s; last loss %.4f; weights in %s", result.steps_done, result.seconds,
             " (stopped by the time budget)" if result.stopped_by_budget else "", last.get("loss", float("nan")), out)


app.command("train", short_help="Train MVInverse on rendered scenes.")(train)


from .inverse_finetune_cmd import consistency, finetune  # noqa: E402  (it reads capture_errors from here)

app.command("finetune", short_help="Consistency finetuning on unlabeled videos (flow + anchor).")(finetune)
app.command("consistency", short_help="Reprojection error between adjacent frames (seed Table 4).")(consistency)
