"""``neumat lrm``: the large reconstruction model of the VideoNeuMat seed (:mod:`neumat.lrm`).

* ``train`` — train it on a data set of posed videos (``<material>/video`` + ``<material>/cross``,
  as ``neumat video render-dataset`` writes) on the training engine: progress bar, ``--minutes``
  budget, checkpoints and bit-identical ``--resume``, validation images and figures in
  ``<run>/val/``; the trained LRM in ``<run>/weights/``. Multi-GPU launch lines (8 and 64 GPUs):
  :mod:`neumat.lrm.train`.
* ``reconstruct`` — one forward pass: a trajectory video (file or frame folder) → ``.nmat``.
* ``eval`` — held-out figures of a trained LRM against the mean-texture baseline and direct fitting,
  and a picture grid of a novel view and light (ground truth / LRM / direct fit / T_off).

Everything a command reads is checked before any network is built: output paths, the data set
(frame counts, sizes, poses), the weights folders (their JSON and safetensors headers against
the network built on the meta device), the config.

Examples::

    neumat lrm train dataset/ --out runs/lrm --steps 2000                   # tiny network, CPU
    neumat lrm train dataset/ --out runs/lrm --model full --wan-weights Wan2.1-T2V-1.3B-Diffusers \\
        --set model.frame_size=256 --set model.texture_resolution=256
    neumat lrm train dataset/ --out runs/lrm --resume
    neumat lrm reconstruct out/videos/leather_rot000/video --weights runs/lrm/weights --out leather.nmat
    neumat lrm eval heldout/ --weights runs/lrm/weights --out eval/
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from .neumip_cmd import _is_main, _training_errors
from .train_cmd import setup_logging
from .video_fit_cmd import DEFAULT_DECODERS

log = logging.getLogger(__name__)

app = typer.Typer(help="The LRM: posed material video -> NeuMIP textures in one forward pass (train, reconstruct, "
                       "eval).", no_args_is_help=True)
SIZES = ("tiny", "full")
"""``--model`` choices: :meth:`~neumat.lrm.config.LrmModelConfig.tiny` / ``full``."""
FREE_AT_INIT = ("frame_size", "texture_resolution", "precision")
"""Model fields a run started from a trained LRM (``--init``) may change."""


def _config(out: Path, model: str, resume: bool, options: dict, config: Optional[Path], sets: Optional[list[str]]):
    """The run's :class:`~neumat.lrm.config.LrmTrainConfig`: ``--model``'s network, then ``--config`` or,
    resuming, the run's ``config.json``, then the options given (None: not given), then ``--set``."""
    from ..lrm.config import LrmModelConfig, LrmTrainConfig
    from ..train.config_io import ConfigError, layered_config

    if model not in SIZES:
        raise ConfigError(f"--model must be one of {SIZES}, got {model!r}")
    cfg = LrmTrainConfig(model=LrmModelConfig.tiny() if model == "tiny" else LrmModelConfig.full())
    return layered_config(cfg, config, out, resume, options, sets)


def _start(cfg, wan_weights: Optional[Path], init: Optional[Path], decoders: Path, resuming: bool):
    """(network or None, decoders, max_offset, provenance) the run starts from, every file checked
    before anything is loaded."""
    from dataclasses import asdict

    from ..lrm.model import LrmNetwork
    from ..lrm.weights import check_lrm, check_wan_weights, load_lrm, load_wan_weights
    from ..train.config_io import ConfigError
    from ..train.engine import seed_everything
    from ..train.neumip import load_decoders

    if wan_weights is not None and init is not None:
        raise ConfigError("give --wan-weights or --init, not both")
    if init is not None:
        info = check_lrm(init)
        fixed = {k: v for k, v in asdict(info.model).items() if k not in FREE_AT_INIT}
        differ = sorted(k for k, v in fixed.items() if getattr(cfg.model, k) != v)
        if differ:
            raise ConfigError(f"--init {init}: its network differs in {differ}; only {FREE_AT_INIT} may change")
        if resuming:
            return None, *load_decoders(info.folder / "decoders.safetensors")[:2], {"init": str(init)}
        trained, nets, _ = load_lrm(init)
        seed_everything(cfg.seed)
        net = LrmNetwork(cfg.model)
        net.load_state_dict(trained.state_dict())
        return net, nets.requires_grad_(True), info.max_offset, {"init": str(init)}
    nets, max_offset, meta = load_decoders(decoders)
    extra = {"decoders": str(decoders), "decoders_pretrained_on": meta["materials"]}
    if wan_weights is None:
        return None, nets, max_offset, {**extra, "wan_weights": ""}
    check_wan_weights(wan_weights, cfg.model)
    if resuming:
        return None, nets, max_offset, {**extra, "wan_weights": str(wan_weights)}
    seed_everything(cfg.seed)
    net = LrmNetwork(cfg.model)
    load_wan_weights(net, wan_weights)
    return net, nets, max_offset, {**extra, "wan_weights": str(wan_weights)}


@app.command("train")
def train(
    data: Annotated[Path, typer.Argument(help="Data set folder: <material>/video and <material>/cross posed folders.")],
    out: Annotated[Path, typer.Option(help="Run directory: config.json, checkpoints, val/, loss.png, weights/.")],
    model: Annotated[str, typer.Option(help="Network to start from: tiny (CPU) or full (Wan2.1 1.3B DiT).")] = "tiny",
    wan_weights: Annotated[Optional[Path], typer.Option(
        help="Local diffusers Wan2.1 folder (transformer/, vae/) to initialise from; heads stay random.")] = None,
    init: Annotated[Optional[Path], typer.Option(
        help="A trained LRM folder to continue from (e.g. the 256² stage's weights for the 1024² stage).")] = None,
    decoders: Annotated[Path, typer.Option(help="Universal NeuMIP decoder file to start from.")] = DEFAULT_DECODERS,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Optimizer steps (default 2000).")] = None,
    minutes: Annotated[Optional[float], typer.Option(min=0, help="Wall-time budget, minutes (0: none).")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda or cuda:N.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint in --out.")] = False,
    config: Annotated[Optional[Path], typer.Option(help="Config file: fields of neumat.lrm.config.LrmTrainConfig.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override a config field: field=value or model.field=value, repeatable.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train the LRM (module docstring). Exit 2 for a bad option, config, data set, weights folder or
    run directory (checked before training); exit 1 for an unreadable checkpoint or a diverged run."""
    from ..fileio import check_output_dir
    from ..lrm.data import scan_dataset
    from ..lrm.train import run_training
    from ..train.checkpoint import latest_checkpoint

    setup_logging()
    with _training_errors():
        check_output_dir(out, "--out")
        options = {"steps": steps, "max_minutes": minutes, "device": device, "out": str(out),
                   "progress": None if progress else False}
        cfg = _config(out, model, resume, options, config, set_)
        materials = scan_dataset(data, cfg.model)
        resuming = resume and latest_checkpoint(out) is not None
        network, nets, max_offset, extra = _start(cfg, wan_weights, init, decoders, resuming)
        outcome = run_training(cfg, materials, nets, max_offset, network, resume=resume,
                               training={"data": str(Path(data).resolve()), **extra})
    if not _is_main():
        return
    losses = [h["loss"] for h in outcome.history if h.get("kind") == "train"]
    typer.echo(f"trained {outcome.steps_done} steps in {outcome.seconds:.1f} s"
               + (f" (loss {losses[0]:.4f} -> {losses[-1]:.4f})" if losses else "")
               + (", stopped by the time budget" if outcome.stopped_by_budget else ""))
    if outcome.metrics:
        typer.echo(f"validation: relative L1 {outcome.metrics['val_rel_l1']:.4f}, PSNR {outcome.metrics['val_psnr']:.2f} "
                   f"dB, {outcome.metrics['val_perceptual_metric']} {outcome.metrics['val_perceptual']:.4f}")
    typer.echo(f"weights: {out / 'weights'}  (neumat lrm reconstruct VIDEO --weights {out / 'weights'} --out X.nmat)")


def load_checked(weights: Path, frames: Path, out: Path, device: str):
    """(trained LRM, posed video): ``out`` writable (.nmat), the weights folder and the video
    checked before the network is loaded."""
    from ..fileio import check_output_path
    from ..lrm.inputs import check_for_lrm, read_input
    from ..lrm.reconstruct import TrainedLrm
    from ..lrm.weights import check_lrm

    check_output_path(out, (".nmat",), "--out")
    info = check_lrm(weights)
    video = read_input(frames)
    check_for_lrm(video, info.model)
    return TrainedLrm.load(weights, _device(device)), video


def _device(name: str):
    from ..train.distributed import resolve_device

    return resolve_device(name)


@app.command("reconstruct")
def reconstruct(
    frames: Annotated[Path, typer.Argument(help="Trajectory video: a video file or a frame folder (poses.json optional).")],
    weights: Annotated[Path, typer.Option(help="Trained LRM folder (<run>/weights of `neumat lrm train`).")],
    out: Annotated[Path, typer.Option(help="The .nmat (kind neumip) to write.")],
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """One LRM forward pass: the video's 17 frames → a NeuMIP bundle that `neumat view` and
    `neumat render` open. Exit 2 for a bad weights folder, video or output path."""
    from ..bundle import save_bundle
    from ..lrm.reconstruct import reconstruct as run

    setup_logging()
    with _training_errors():
        lrm, video = load_checked(weights, frames, out, device)
        bundle, seconds = run(lrm, video)
        save_bundle(bundle, out)
    typer.echo(f"reconstructed {frames} with the LRM in {seconds:.2f} s (one forward pass); wrote {out}")
    typer.echo(f"view it: neumat view {out}")


@app.command("eval")
def evaluate(
    data: Annotated[Path, typer.Argument(help="Data set of held-out materials (<material>/video + /cross).")],
    weights: Annotated[Path, typer.Option(help="Trained LRM folder.")],
    out: Annotated[Path, typer.Option(help="Folder for eval.json, eval.md and grid.png.")],
    frames: Annotated[int, typer.Option(min=1, help="Frames per material, evenly spread over the 162.")] = 162,
    fit_steps: Annotated[int, typer.Option(min=0, help="Direct-fitting steps of the baseline (0: no fit).")] = 500,
    decoders: Annotated[Path, typer.Option(help="Universal decoders of the direct fit.")] = DEFAULT_DECODERS,
    lpips_weights: Annotated[Optional[Path], typer.Option(help="TorchScript LPIPS file (else the MS-SSIM substitute).")] = None,
    device: Annotated[str, typer.Option(help="LRM: auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Held-out figures of the LRM against the mean-texture baseline and direct fitting (JSON +
    markdown; :mod:`neumat.lrm.evaluate`) and the picture grid of the first materials
    (:mod:`neumat.lrm.grid`)."""
    from ..fileio import check_output_dir
    from ..lrm.data import scan_dataset
    from ..lrm.evaluate import evaluate as run, markdown, write_report
    from ..lrm.loss import make_perceptual
    from ..lrm.reconstruct import TrainedLrm
    from ..lrm.weights import check_lrm
    from ..train.neumip import load_decoders

    setup_logging()
    with _training_errors():
        check_output_dir(out, "--out")
        info = check_lrm(weights)
        materials = scan_dataset(data, info.model)
        if fit_steps:
            load_decoders(decoders)
        perceptual = make_perceptual("auto", lpips_weights or "", info.model.frame_size)
        grid: list = []
        report = run(TrainedLrm.load(weights, _device(device)), materials, frames, perceptual, fit_steps, decoders,
                     grid)
        paths = write_report(report, out, grid)
    typer.echo(markdown(report))
    typer.echo(f"wrote {', '.join(map(str, paths))}")
