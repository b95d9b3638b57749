"""``neumat falcor``: render a bundle through Falcor (``falcorcomp``) and write its graph scripts.

``neumat falcor render X.nmat --scene sphere --out frame.png`` renders one view headless through
:class:`neumat.falcor.driver.FalcorRenderer` and writes ``frame.png`` (display image), the linear
radiance as ``frame.npy`` (float32 [H, W, 3]) and, with ``--exr``, ``frame.exr``; with
``--reference`` also ``frame_falcor_reference.png`` (Falcor's own path tracer + ToneMapper).
``neumat falcor bench X.nmat --out falcor.json`` writes profiler frame times in the shape of
``neumat bench frames`` (``neumat bench --compare frames.json falcor.json``).
``neumat falcor graphs --out DIR`` writes the render-graph scripts (works without Falcor).
Where Falcor cannot be imported the Falcor commands exit with code 2 and one line saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import parse_size

app = typer.Typer(
    help="Falcor integration (needs a GPU machine with an NVIDIA driver and `pip install falcorcomp`): "
         "neumat's Slang passes run as falcor.ComputePass after Falcor's own render graph. "
         "`graphs` writes the render-graph scripts and works anywhere.",
    no_args_is_help=True,
)


def _falcor():
    """The Falcor module, or exit 2 with the one-line reason."""
    from ..falcor import FalcorUnavailable, import_falcor

    try:
        return import_falcor()
    except FalcorUnavailable as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


@app.command("graphs")
def graphs(out: Annotated[Path, typer.Option("--out", help="Folder to write <graph>.py scripts into.")]) -> None:
    """Write neumat's Falcor render-graph scripts (NeuMat: GBufferRaster; NeuMatReference:
    VBufferRT -> PathTracer -> AccumulatePass -> ToneMapper), loadable by Mogwai or Testbed."""
    from ..falcor.graphs import write_graphs

    for path in write_graphs(out):
        typer.echo(str(path))


@app.command("render")
def render(
    bundle: Annotated[Path, typer.Argument(help="The .nmat bundle to render.")],
    out: Annotated[Path, typer.Option("--out", help="PNG to write (radiance beside it as .npy).")],
    scene: Annotated[str, typer.Option("--scene", help="Built-in shape (plane, sphere, cube, cloth) or mesh file; "
                                                       "written out as OBJ + .pyscene for Falcor.")] = "sphere",
    size: Annotated[str, typer.Option("--size", help="WIDTHxHEIGHT pixels.")] = "512x512",
    precision: Annotated[str, typer.Option("--precision", help="MLP: int8, fp32 or fp16.")] = "int8",
    exr: Annotated[bool, typer.Option("--exr", help="Also write the linear radiance as OpenEXR.")] = False,
    reference: Annotated[bool, typer.Option("--reference", help="Also write Falcor's path-traced, "
                                                                "ToneMapper view of the scene.")] = False,
) -> None:
    """Render one view of BUNDLE through Falcor: Falcor loads the scene and runs its graph, then
    neumat's shell -> infer -> compose passes (the same Slang modules as `neumat render`, without
    height-field tracing, synthesis or shadows) run as compute passes on Falcor's buffers."""
    width, height = parse_size(size)
    falcor = _falcor()
    import numpy as np

    from ..falcor.driver import FalcorRenderer
    from ..video.folder import write_exr, write_png

    fr = FalcorRenderer(bundle, scene, (width, height), falcor=falcor, workdir=out.parent / f"{out.stem}_falcor_scene")
    camera = fr.renderer.default_camera()
    frame = fr.render(camera, None, precision=precision)
    write_png(out, frame.srgb)
    np.save(out.with_suffix(".npy"), frame.image)
    if exr:
        write_exr(out.with_suffix(".exr"), frame.image)
    if frame.falcor_mask is not None:
        typer.echo(f"coverage: neumat {float(np.mean(frame.image.sum(-1) > 0)):.4f}, "
                   f"Falcor GBufferRaster {float(np.mean(frame.falcor_mask > 0.5)):.4f}")
    if reference:
        ref = fr.reference(camera, None)
        rgb = np.clip(np.asarray(ref, np.float32)[..., :3], 0.0, 1.0) if ref.dtype != np.uint8 else ref[..., :3]
        write_png(out.with_name(f"{out.stem}_falcor_reference.png"),
                  rgb if rgb.dtype == np.uint8 else np.floor(rgb * 255 + 0.5).astype(np.uint8))
    typer.echo(str(out))


@app.command("bench")
def bench(
    bundle: Annotated[Path, typer.Argument(help="The .nmat bundle to render.")],
    out: Annotated[Path, typer.Option("--out", help="JSON report (shape of `neumat bench frames`).")],
    scene: Annotated[str, typer.Option("--scene", help="Built-in shape or mesh file.")] = "sphere",
    resolutions: Annotated[str, typer.Option("--resolutions", help="Comma-separated WIDTHxHEIGHT.")] = "1920x1080",
    frames: Annotated[int, typer.Option("--frames", min=1, help="Timed frames.")] = 20,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed frames first.")] = 3,
    precision: Annotated[str, typer.Option("--precision", help="MLP: int8, fp32 or fp16.")] = "int8",
) -> None:
    """Falcor-profiler frame times (GPU time per neumat pass, host time per frame) as JSON."""
    import json

    from ..bench.frames import parse_resolutions
    from ..falcor.profile import falcor_frame_report

    res = parse_resolutions(resolutions)
    falcor = _falcor()
    report = falcor_frame_report(bundle, scene, res, frames, warmup, precision, falcor=falcor)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    typer.echo(str(out))
