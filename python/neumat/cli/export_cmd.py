"""``neumat export CKPT --out X.nmat [--layout inm DIR]``: checkpoint -> INT8 bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

LAYOUTS = ("inm",)
"""Extra directory layouts ``--layout`` writes beside the .nmat."""


def export(
    ckpt: Annotated[Path, typer.Argument(help="A training checkpoint (ckpt_*.pt) or a run directory (newest checkpoint).")],
    out: Annotated[Path, typer.Option("--out", help="The .nmat bundle to write (atomically).")],
    layout: Annotated[Optional[tuple[str, Path]], typer.Option(
        help="Also write another layout: 'inm DIR' = InstantNeuralMaterial/Falcor files in DIR.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Material name in INM file names (default: the --out stem).")] = None,
) -> None:
    """Export a trained checkpoint as an INT8 .nmat bundle (optionally also the INM layout).

    The decoder is quantized with the checkpoint's frozen observer scales; planes are stored
    float32; provenance records the output encoding and its scale(s), data source, config and
    last validation.

    --out (a .nmat) and the --layout folder are checked before the checkpoint is read: exit 2
    for a bad path or option, 1 when the checkpoint cannot be exported or a write fails.
    """
    from ..bundle import BundleError
    from ..fileio import OutputPathError, check_output_dir, check_output_path
    from ..material.triple_plane import bundle_output_encoding
    from ..output_encoding import LINEAR
    from ..train.checkpoint import CheckpointError, resolve_checkpoint
    from ..train.export import export_checkpoint
    from ..train.guards import BUNDLE_SUFFIXES

    if layout is not None and layout[0] not in LAYOUTS:
        raise typer.BadParameter(f"unknown layout {layout[0]!r}; valid: {list(LAYOUTS)}", param_hint="--layout")
    try:
        check_output_path(out, BUNDLE_SUFFIXES, "--out")
        if layout is not None:
            check_output_dir(layout[1], "--layout inm DIR")
    except OutputPathError as e:
        raise typer.BadParameter(str(e)) from None
    try:
        path = resolve_checkpoint(ckpt)
    except CheckpointError as e:
        raise typer.BadParameter(str(e), param_hint="CKPT") from None
    console = Console()
    try:
        bundle = export_checkpoint(path, out, layout[1] if layout else None, name or out.stem)
    except (CheckpointError, BundleError, ValueError, OSError) as e:
        console.print(f"[red]export failed:[/] {e}")
        raise typer.Exit(1) from None
    widths = "x".join(map(str, bundle.mlps["rgb"].widths))
    console.print(f"wrote {out} (step {bundle.provenance['step']}, MLP {widths}, "
                  f"output {bundle_output_encoding(bundle).provenance()})")
    if layout:
        console.print(f"wrote INM layout to {layout[1]}")
        encoding = bundle_output_encoding(bundle)
        if encoding.id != LINEAR:
            console.print(f"[yellow]warning:[/yellow] the bundle decodes its MLP output as {encoding.id!r} "
                          "(recorded in ModelInfo's provenance); InstantNeuralMaterial's own Falcor shader "
                          "multiplies it linearly, so it shows other colours — neumat's passes decode it")
