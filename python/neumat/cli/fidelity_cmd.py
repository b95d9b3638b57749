"""``neumat fidelity``: the held-out fidelity suite against Mitsuba 3 (see :mod:`neumat.fidelity`).

Examples::

    neumat fidelity --quick --map-resolution 256                 # smoke run, every material
    neumat fidelity --materials hammered_copper,basket_weave --set max_minutes=10
    neumat fidelity --bundles out/fidelity_before/bundles --out out/fidelity_before_eval

Exit codes: 0 success, 1 a run that failed (missing bundle, no render device, training
error), 2 a bad argument.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ..fidelity.materials import SUITE
from ..fidelity.pairs import PAIRS
from ..fidelity.run import QUICK_OVERRIDES


def fidelity(
    materials: Annotated[Optional[str], typer.Option(
        help=f"Comma-separated materials (default all): {', '.join(SUITE)}.")] = None,
    pairs: Annotated[Optional[str], typer.Option(
        help=f"Comma-separated light/view pairs (default all): {', '.join(p.name for p in PAIRS)}.")] = None,
    map_resolution: Annotated[int, typer.Option(min=8, help="Texels per side of the generated texture maps.")] = 1024,
    out: Annotated[Path, typer.Option(help="Output folder (materials, runs, bundles, Mitsuba cache, reports).")] = Path(
        "out/fidelity"),
    quick: Annotated[bool, typer.Option(
        "--quick", help=f"Short smoke training ({' '.join(QUICK_OVERRIDES)}); the numbers are not converged.")] = False,
    bundles: Annotated[Optional[Path], typer.Option(
        help="Evaluate DIR/NAME.nmat for every material instead of training (before/after comparisons); the "
             "bundles must come from this suite's maps at the same --map-resolution and --seed (e.g. OUT/bundles "
             "of an earlier run).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Training config override section.field=value (as `neumat train --set`), repeatable; "
                      "applied after --quick.")] = None,
    image_size: Annotated[int, typer.Option(min=8, help="Side of each compared image, pixels.")] = 128,
    supersample: Annotated[int, typer.Option(
        min=1, help="neumat sub-pixels per pixel side (box-averaged; 8 = as many samples as Mitsuba's 64 spp: "
                    "fewer measure aliasing of the maps' texels, not the material).")] = 8,
    spp: Annotated[int, typer.Option(min=1, help="Mitsuba samples per pixel of the image reference (a perfect "
                                                 "square).")] = 64,
    reference: Annotated[str, typer.Option(
        help="Ground truth: 'same-rays' (Mitsuba evaluated at neumat's own sub-pixel rays, so the figures carry no "
             "Monte Carlo noise; needs Mitsuba's llvm_ad_rgb, i.e. libLLVM >= 16, which `make setup` installs), "
             "'image' (Mitsuba's own render at --spp; glints of glossy metal then add noise) or 'auto' (same-rays "
             "where it runs).")] = "auto",
    extent: Annotated[float, typer.Option(help="Texture tiles across the image at a head-on view.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the generated materials.")] = 0,
) -> None:
    """Train materials from PBR texture sets (real-world file names) and measure their rendered fidelity against
    Mitsuba 3 at held-out light/view pairs.

    Per material and pair: relative L1, HDR-FLIP, PSNR and mean-colour ratio of neumat's Renderer (INT8,
    height-field tracing and traced shadows on, synthesis off) against Mitsuba 3 renders of the displaced maps
    with the project's BRDF, same camera and light. Writes OUT/fidelity.json (schema neumat.fidelity/1),
    OUT/fidelity.md and OUT/fidelity.png (contact sheet: Mitsuba, neumat, FLIP map per pair).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..data import DataError
    from ..fidelity.report import write_outputs
    from ..fidelity.run import FidelityConfig, FidelityError, run_fidelity
    from ..device import DeviceError
    from ..train import ConfigError
    from .train_cmd import setup_logging

    setup_logging()
    console = Console(stderr=True)
    cfg = FidelityConfig(out=out, materials=materials or "", pairs=pairs or "", map_resolution=map_resolution,
                         image_size=image_size, extent=extent, supersample=supersample, spp=spp,
                         reference=reference, bundles=bundles, quick=quick, overrides=list(set_ or []), seed=seed)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console)
    tasks: dict[str, int] = {}

    def on_event(message: str) -> None:
        progress.stop()  # the trainer shows its own progress bar
        console.print(f"[bold]fidelity[/bold] {message}")

    def on_pair(material: str, done: int, total: int) -> None:
        if material not in tasks:
            tasks[material] = progress.add_task(f"{material}: pairs", total=total)
            progress.start()
        progress.update(tasks[material], completed=done)

    try:
        report, images = run_fidelity(cfg, on_event=on_event, on_pair=on_pair)
    except (FidelityError, ConfigError) as e:
        raise typer.BadParameter(str(e)) from None
    except (DataError, DeviceError, OSError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from None
    finally:
        progress.stop()
    paths = write_outputs(report, images, out)
    s = report["summary"]
    console.print(f"mean relative L1 {100 * s['mean_rel_l1']:.1f} %, mean FLIP {s['mean_flip']:.3f}; worst "
                  f"{s['worst']['material']} / {s['worst']['pair']} ({100 * s['worst']['rel_l1']:.1f} %)")
    for kind, path in paths.items():
        console.print(f"{kind}: {path}")
