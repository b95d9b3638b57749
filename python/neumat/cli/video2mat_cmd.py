"""``neumat video2mat VIDEO_OR_FRAMES --out X.nmat [--weights DIR]``: a material video to a NeuMIP
bundle in one command.

The input is a video file (PyAV / imageio-ffmpeg) or a frame folder, with ``poses.json`` or else
on the default trajectory (:mod:`neumat.lrm.inputs`). With ``--weights`` (a trained LRM folder) it
runs one LRM forward pass (:mod:`neumat.lrm.reconstruct`); without, direct fitting with the
shipped universal decoders (:mod:`neumat.video.fit`, as ``neumat video fit``; its run directory
is ``--out`` with ``.run``). It prints what it did and how long it took, and the ``neumat view``
line. Everything is checked before the work starts: the output path, the weights folder or the
decoder file, the frames (count, size, poses; for the LRM its frame count, resolution and
trajectory). Exit 2 for bad input, 1 for a failed run or write.

Examples::

    neumat video2mat clip.mp4 --out clip.nmat --weights runs/lrm/weights      # LRM, ~1 forward pass
    neumat video2mat out/videos/leather_rot000/video --out leather.nmat --minutes 5   # direct fit
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from .lrm_cmd import load_checked
from .neumip_cmd import _is_main, _training_errors
from .train_cmd import setup_logging
from .video_fit_cmd import DEFAULT_DECODERS, RUN_SUFFIX


def _fit(video, out: Path, decoders: Path, steps: Optional[int], minutes: Optional[float], progress: bool):
    """Direct fit of ``video`` written to ``out``: (steps done, seconds)."""
    from ..train.neumip import load_decoders
    from ..video.fit import VideoFitConfig, fit_video

    nets, max_offset, info = load_decoders(decoders)
    res = info["config"].get("texture_resolution")
    cfg = VideoFitConfig(steps=steps or VideoFitConfig.steps, max_minutes=minutes or 0.0,
                         out=str(out.with_suffix(RUN_SUFFIX)), export=str(out), progress=progress,
                         **({"texture_resolution": int(res)} if res else {}))
    result = fit_video(cfg, video, nets, max_offset,
                       bundle_extra={"decoders": str(decoders), "pretrained_on": info["materials"]})
    if result.export_error:
        raise OSError(result.export_error)
    return result.steps_done, result.seconds


def video2mat(
    video: Annotated[Path, typer.Argument(help="Video file, or folder of frames (frames/*.png or *.png; poses.json optional).")],
    out: Annotated[Path, typer.Option(help="The .nmat (kind neumip) to write.")],
    weights: Annotated[Optional[Path], typer.Option(
        help="Trained LRM folder: one forward pass. Without it: direct fitting.")] = None,
    decoders: Annotated[Path, typer.Option(help="Universal decoder file of direct fitting.")] = DEFAULT_DECODERS,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Direct fitting: texture steps (default 1000).")] = None,
    minutes: Annotated[Optional[float], typer.Option(min=0, help="Direct fitting: wall-time budget, minutes.")] = None,
    device: Annotated[str, typer.Option(help="LRM: auto, cpu, cuda or cuda:N.")] = "auto",
    progress: Annotated[bool, typer.Option(help="Direct fitting: show a progress bar.")] = True,
) -> None:
    """A material video → a NeuMIP bundle: the LRM with --weights, direct fitting without."""
    from ..bundle import save_bundle
    from ..fileio import check_output_path
    from ..lrm.inputs import read_input
    from ..lrm.reconstruct import reconstruct

    setup_logging()
    start = time.perf_counter()
    with _training_errors():
        if weights is not None:
            lrm, posed = load_checked(weights, video, out, device)
            bundle, forward = reconstruct(lrm, posed)
            save_bundle(bundle, out)
            did = (f"LRM reconstruction ({lrm.info.model.frames} of {len(posed.poses)} frames, "
                   f"{posed.size[0]}x{posed.size[1]} px, forward pass {forward:.2f} s)")
        else:
            check_output_path(out, (".nmat",), "--out")
            posed = read_input(video)
            done, seconds = _fit(posed, out, decoders, steps, minutes, progress)
            did = (f"direct fit, no --weights ({len(posed.poses)} frames of {posed.size[0]}x{posed.size[1]} px, "
                   f"{done} steps in {seconds:.1f} s)")
    if not _is_main():
        return
    typer.echo(f"{video} -> {out}: {did}; {time.perf_counter() - start:.1f} s in all")
    typer.echo(f"view it: neumat view {out}")
