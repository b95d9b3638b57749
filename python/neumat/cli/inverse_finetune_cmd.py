"""``neumat inverse finetune`` and ``neumat inverse consistency``: consistency finetuning of a trained
MVInverse on unlabeled videos (seed 002 §3.3, :mod:`neumat.inverse.finetune`) and its figure,
the reprojection error between adjacent frames before and after (Table 4,
:mod:`neumat.inverse.consistency`). Registered on ``neumat inverse`` (:mod:`.inverse_cmd`).

Examples::

    neumat inverse finetune --frames clips/a.mp4 --frames clips/b/ --weights runs/mvinv --out runs/mvinv_ft
    neumat inverse finetune --out runs/mvinv_ft --resume          # the weights and frames as before
    neumat inverse consistency heldout/c.mp4 heldout/d/ --weights runs/mvinv --weights runs/mvinv_ft
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from .train_cmd import setup_logging

log = logging.getLogger(__name__)

FRAMES_FILE = "finetune_frames.json"
"""Run-directory record of the sequences a finetuning run reads (``--resume`` reads them again)."""


def _sequences(paths: list[Path], long_side: int, max_frames: int, flow: str) -> list:
    """Every path read as a :class:`~neumat.inverse.finetune.FlowSequence` (a progress line each)."""
    from rich.progress import Progress

    from ..inverse.finetune import read_sequence

    out = []
    with Progress(transient=True) as bar:
        task = bar.add_task("flow", total=len(paths))
        for p in paths:
            out.append(read_sequence(p, long_side, max_frames, flow))
            bar.advance(task)
    return out


def finetune(
    out: Annotated[Path, typer.Option(help="Run directory: config.json, ckpt_*.pt, history.json (the finetuned "
                                           "weights: --weights of the other commands).")],
    frames: Annotated[Optional[list[Path]], typer.Option(
        help="Unlabeled sequence: folder of frames, video file or posed video folder (repeatable).")] = None,
    weights: Annotated[Optional[Path], typer.Option(
        help="The pretrained MVInverse: a `neumat inverse train` run directory or one of its ckpt_*.pt.")] = None,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Optimizer steps.")] = None,
    minutes: Annotated[Optional[float], typer.Option(min=0, help="Wall-time budget, minutes (0: none).")] = None,
    long_side: Annotated[Optional[int], typer.Option(min=14, help="Long side of the frames, px (multiple of 14).")
                         ] = None,
    max_frames: Annotated[int, typer.Option(min=2, help="Frames read per sequence, evenly spaced (give at least its "
                                                         "length for truly adjacent frames).")] = 1000,
    resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint in --out (its weights and "
                                              "frames).")] = False,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override a field of neumat.inverse.config.FinetuneConfig: field=value, repeatable.")] = None,
) -> None:
    """Finetune a trained MVInverse for temporal consistency on unlabeled videos: flow-warped
    agreement of adjacent frames' predictions (OpenCV optical flow, occlusions masked by
    forward-backward consistency) plus an anchor to the pretrained prediction of each clip's
    first frame. Checkpoints and exact --resume as `neumat inverse train`."""
    from ..fileio import atomic_write_bytes
    from ..inverse.config import FinetuneConfig
    from ..inverse.finetune import run_finetune
    from ..inverse.predictor import load_model
    from ..train.checkpoint import resolve_checkpoint
    from ..train.config_io import ConfigError, apply_overrides, load_config
    from .inverse_cmd import capture_errors

    setup_logging()
    saved, recorded = out / "config.json", out / FRAMES_FILE
    try:
        if resume and saved.is_file():
            cfg = load_config(saved, FinetuneConfig)
            paths = frames or [Path(p) for p in json.loads(recorded.read_text())]
            weights = weights or Path(cfg.weights)
        elif weights is None or not frames:
            raise typer.BadParameter("give --weights (the pretrained run) and at least one --frames sequence")
        else:
            cfg, paths = None, list(frames)
        net, description = load_model(weights)
        if cfg is None:
            cfg = FinetuneConfig(model=net.cfg, weights=str(resolve_checkpoint(weights)))
        given = {"out": str(out), "steps": steps, "max_minutes": minutes, "long_side": long_side}
        overrides = [f"{k}={json.dumps(v)}" for k, v in given.items() if v is not None]
        cfg = apply_overrides(cfg, overrides + list(set_ or []))
        cfg.validate()
        log.info("%s; %d sequence(s)", description, len(paths))
        sequences = _sequences(paths, cfg.long_side, max_frames, cfg.flow)
    except (ConfigError, OSError, *capture_errors()) as e:
        raise typer.BadParameter(str(e)) from None
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(recorded, json.dumps([str(p) for p in paths], indent=1).encode())
    result, _ = run_finetune(cfg, sequences, net, resume=resume)
    last = next((h for h in reversed(result.history) if h.get("kind") == "train"), {})
    log.info("%d steps in %.1f s; last anchor %.4g, consistency %.4g; weights in %s", result.steps_done,
             result.seconds, last.get("anchor", float("nan")), last.get("consistency", float("nan")), out)
    typer.echo(f"finetuned weights in {out}; compare: neumat inverse consistency HELDOUT... --weights {weights} "
               f"--weights {out}")


def consistency(
    sequences: Annotated[list[Path], typer.Argument(help="Held-out unlabeled sequences: frame folders, videos or "
                                                         "posed video folders.")],
    weights: Annotated[list[Path], typer.Option(help="Trained MVInverse (run directory or ckpt_*.pt), repeatable: "
                                                     "one row each (e.g. before and after finetuning).")],
    long_side: Annotated[int, typer.Option(min=14, help="Long side of the frames, px (multiple of 14).")] = 518,
    max_frames: Annotated[int, typer.Option(min=2, help="Frames read per sequence, evenly spaced.")] = 1000,
    flow: Annotated[str, typer.Option(help="Optical flow: dis or tvl1.")] = "dis",
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the report as JSON here.")] = None,
) -> None:
    """Reprojection error between adjacent frames' predictions (albedo, metallic, roughness,
    shading RMSE through optical flow, occlusions masked; seed Table 4), one row per --weights;
    prints the markdown table."""
    from ..fileio import OutputPathError, atomic_write_bytes, check_output_path
    from ..inverse.consistency import markdown_table, temporal_report
    from ..inverse.predictor import load_model, predict
    from .inverse_cmd import capture_errors

    setup_logging()
    try:
        if json_out is not None:
            check_output_path(json_out, (".json",), "--json")
        methods = {}
        for w in weights:
            net, description = load_model(w)
            log.info("%s", description)
            methods[str(w)] = lambda f, net=net: predict(net, f)
        loaded = _sequences(list(sequences), long_side, max_frames, flow)
    except (OutputPathError, ValueError, OSError, *capture_errors()) as e:
        raise typer.BadParameter(str(e)) from None
    report = temporal_report([(s.frames, s.pairs) for s in loaded], methods)
    table = markdown_table(report)
    if json_out is not None:
        doc = {"sequences": [s.name for s in loaded], "frames": [len(s.frames) for s in loaded], "flow": flow,
               "long_side": long_side, "rmse": report}
        atomic_write_bytes(json_out, json.dumps(doc, indent=1).encode())
    typer.echo(table)
