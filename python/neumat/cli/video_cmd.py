"""``neumat video``: the video → material pipeline (VideoNeuMat seed), one command per step.

* ``render-dataset`` — Mitsuba videos of materials along the gonioreflectometer trajectories
  (:mod:`neumat.video.dataset`), on Ray when ``--workers`` or ``--address`` is given;
* ``rpc`` — Residual Parallax Coherence of posed video folders (:mod:`neumat.video.metrics`);
* ``finetune``, ``generate``, ``tiny-weights`` — the Wan2.1 model (:mod:`.video_wan_cmd`);
* ``fit`` — a NeuMIP material fitted directly to a posed video's frames (:mod:`.video_fit_cmd`).

Each command is one function registered on :data:`app` (``app.command(NAME)(function)``); a
new step adds its module's command the same way. Heavy dependencies are imported inside the
commands, so ``neumat render`` never loads them.

Examples::

    neumat video render-dataset out/videos                          # shipped procedural materials
    neumat video render-dataset out/videos --material leather --size 256 --spp 16 --workers 2
    neumat video render-dataset out/videos --maps textures/rock --height-scale 0.02 --not-tileable
    neumat video render-dataset out/videos --address ray://head:10001      # a Ray cluster
    neumat video render-dataset out/videos --captioner models/blip-large   # captions by a local BLIP
    neumat video rpc out/videos/leather_rot000/video --json rpc.json
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import video_fit_cmd, video_wan_cmd
from .train_cmd import setup_logging

log = logging.getLogger(__name__)

app = typer.Typer(help="Video -> material: render trajectory datasets, score posed videos (RPC), fit NeuMIP "
                       "materials to them.",
                  no_args_is_help=True)


def _split(text: str, kind=str) -> list:
    return [kind(x) for x in text.split(",") if x.strip()]


def render_dataset(
    out: Annotated[Path, typer.Argument(help="Dataset folder: <out>/<material_id>/<trajectory>/.")],
    material: Annotated[Optional[list[str]], typer.Option(
        help="Procedural material name (repeatable); default: all of neumat.data.MATERIALS.")] = None,
    maps: Annotated[Optional[list[Path]], typer.Option(help="PBR texture-set folder (repeatable).")] = None,
    height_scale: Annotated[float, typer.Option(min=0, help="--maps displacement of height 1, UV units.")] = 0.02,
    tileable: Annotated[bool, typer.Option("--tileable/--not-tileable", help="Whether --maps sets tile.")] = True,
    tileable_only: Annotated[bool, typer.Option(help="Render only tileable materials.")] = False,
    trajectories: Annotated[str, typer.Option(help="Comma list of: video, cross.")] = "video,cross",
    rotations: Annotated[str, typer.Option(help="Comma list of rotations, degrees (multiples of 90).")] = "0,90,180,270",
    frames: Annotated[int, typer.Option(min=2, help="Frames of the two-phase video (seed: 81).")] = 81,
    per_axis: Annotated[int, typer.Option(min=1, help="Cross set positions per axis (seed: 3 -> 81).")] = 3,
    size: Annotated[int, typer.Option(min=8, help="Frame width and height, pixels (seed: 512, 1024).")] = 512,
    spp: Annotated[int, typer.Option(min=1, help="Samples per pixel.")] = 64,
    resolution: Annotated[int, typer.Option(min=8, help="Texels per side of procedural maps.")] = 256,
    sample_size: Annotated[float, typer.Option(min=1e-6, help="Sample side, scene units.")] = 1.0,
    variant: Annotated[str, typer.Option(help="Mitsuba variant: auto, scalar_rgb, llvm_ad_rgb.")] = "auto",
    workers: Annotated[int, typer.Option(min=0, help="Local Ray workers (0: render in this process).")] = 0,
    address: Annotated[Optional[str], typer.Option(help="Ray cluster address (default: local).")] = None,
    captioner: Annotated[Optional[Path], typer.Option(
        help="Local image-to-text model folder (e.g. BLIP, saved with save_pretrained; never downloaded) that "
             "captions each video; default: metadata templates.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Render materials along the gonioreflectometer trajectories with Mitsuba 3 (true
    displacement, traced soft shadows). Finished videos are skipped; a killed run resumes."""
    from ..data import DataError, MATERIALS, PbrLoadError, load_pbr_maps, make_material
    from ..fileio import OutputPathError, check_output_dir
    from ..video.captioner import load_captioner
    from ..video.dataset import dataset_jobs, render_dataset as render
    from ..video.scene import RenderSettings

    setup_logging()
    try:
        if captioner is not None:
            captioner = load_captioner(captioner).path
        check_output_dir(out, "OUT")
        settings = RenderSettings(size, size, spp, sample_size)
        names = material if material is not None else ([] if maps else sorted(MATERIALS))
        materials = [make_material(n, resolution) for n in names]
        for folder in maps or []:
            m = load_pbr_maps(folder, height_scale=height_scale)
            m.meta["tileable"] = tileable
            materials.append(m)
        jobs = dataset_jobs(materials, settings, _split(trajectories), _split(rotations, int), frames, per_axis,
                            tileable_only)
    except (DataError, PbrLoadError, OutputPathError, ValueError) as e:
        raise typer.BadParameter(str(e)) from None
    results = render(jobs, out, settings, variant, workers, address, progress, captioner)
    done = [r for r in results if not r["cached"]]
    for r in done:
        log.info("%s: %d frames in %.1f s (%.3f s/frame)", r["video"], r["frames"], r["seconds"],
                 r["seconds"] / r["frames"])
    log.info("%d videos rendered, %d already finished, in %s", len(done), len(results) - len(done), out)


def rpc(
    videos: Annotated[list[Path], typer.Argument(help="Posed video folders (frames/, poses.json).")],
    lags: Annotated[str, typer.Option(help="Comma list of frame lags of the pairs.")] = "1,2,4,8,16",
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the figures as JSON here.")] = None,
) -> None:
    """Residual Parallax Coherence (lower is better) of each posed video, with Dual TV-L1 flow."""
    from ..video.folder import VideoFolderError
    from ..video.metrics import rpc_folder

    setup_logging()
    report = {}
    for video in videos:
        try:
            result = rpc_folder(video, _split(lags, int))
        except (VideoFolderError, ValueError) as e:
            raise typer.BadParameter(str(e)) from None
        report[str(video)] = result.summary()
        typer.echo(f"{video}: RPC {result.loss:.4f} (Spearman rho {result.rho:.4f}, {len(result.pairs)} pairs)")
    if json_out is not None:
        from ..fileio import atomic_write_bytes

        atomic_write_bytes(json_out, json.dumps(report, indent=1).encode())


app.command("render-dataset")(render_dataset)
app.command("rpc")(rpc)
app.command("finetune")(video_wan_cmd.finetune)
app.command("generate")(video_wan_cmd.generate)
app.command("tiny-weights")(video_wan_cmd.tiny_weights)
app.command("fit")(video_fit_cmd.fit)
