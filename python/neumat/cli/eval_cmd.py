"""``neumat eval X.nmat [--ckpt CKPT] [--json]``: held-out error of a material, as rendered."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..train.sources import MAX_TEXTURE_RESOLUTION


def evaluate(
    bundle_path: Annotated[Path, typer.Argument(metavar="BUNDLE", help="A triple-plane .nmat bundle.")],
    ckpt: Annotated[Optional[Path], typer.Option(
        help="Training checkpoint or run directory: also report the FP32 model (needs torch).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    material: Annotated[Optional[str], typer.Option(help="Evaluate against this registry material instead.")] = None,
    maps: Annotated[Optional[Path], typer.Option(help="... against a synthetic BTF of this PBR map folder.")] = None,
    btf: Annotated[Optional[Path], typer.Option(help="... against this UBO2014 BTF file.")] = None,
    resolution: Annotated[Optional[int], typer.Option(
        min=0, max=MAX_TEXTURE_RESOLUTION,
        help="Override the source's texels per tile side (0 with maps: the files' own).")] = None,
    height_scale: Annotated[Optional[float], typer.Option(
        min=0, help="Override the maps source's displacement of height 1, in UV units (tile widths).")] = None,
) -> None:
    """Render the held-out directions through the INT8 reference: relative L1, PSNR, L1.

    The data source is rebuilt from the bundle's provenance (with the options it was trained
    with, e.g. the maps' height scale). --material/--maps/--btf name another one; a source of
    the recorded kind keeps the recorded options (e.g. --maps NEW_DIR for a moved folder).
    Figures are in BTF value units, PSNR with peak 1 — the same function and data as the
    trainer's final figures (provenance "metrics"). INT8 needs no torch, FP32 (--ckpt) does.

    The recorded source is checked before anything is built: only the fields the trainer
    records, each of its type and within its bound; a recorded maps folder or BTF file is read
    if it exists, never written. Exit 2 for a bad option, 1 when the bundle, its record or the
    data fail.
    """
    from ..bundle import BundleError, load_bundle
    from ..data import DataError
    from ..material import EvalError
    from ..train.sources import SourceError
    from .train_cmd import source_choice

    choice = source_choice(material, maps, btf)
    if height_scale is not None and not math.isfinite(height_scale):
        raise typer.BadParameter(f"must be a finite number of UV units, got {height_scale}",
                                 param_hint="--height-scale")
    errors: tuple[type[Exception], ...] = (BundleError, EvalError, SourceError, DataError)
    if ckpt is not None:  # the FP32 figures need torch; the INT8 ones do not
        from ..train.checkpoint import CheckpointError
        from ..train.config_io import ConfigError

        errors += (CheckpointError, ConfigError)
    console = Console()
    try:
        bundle = load_bundle(bundle_path)
        report = evaluation_report(bundle, choice, {"resolution": resolution, "height_scale": height_scale}, ckpt)
    except errors as e:
        console.print(f"[red]eval failed:[/] {e}")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    table = Table(title=f"{bundle_path}: {report['directions']} held-out directions, {report['pixels']} pixels")
    for col in ("model", "relative L1", "PSNR [dB]", "L1"):
        table.add_column(col)
    rows = [("INT8 (as rendered)", report["int8"])]
    if report["fp32"]:
        rows.append((f"FP32 (checkpoint step {report['fp32']['step']})", report["fp32"]))
    for label, m in rows:
        table.add_row(label, f"{m['rel_l1']:.2%}", f"{m['psnr']:.2f}", f"{m['l1']:.5f}")
    console.print(table)


def evaluation_spec(bundle, choice: dict[str, str] | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """The source spec ``neumat eval`` rebuilds: the bundle's recorded one, or ``choice`` (from
    --material/--maps/--btf) on top of the recorded options when the kinds agree, then the
    ``overrides`` that are not None (spec keys, e.g. ``height_scale``)."""
    from ..material import SOURCE_KEY, require_source_spec

    recorded = bundle.provenance.get(SOURCE_KEY)
    if choice is None:
        spec = dict(require_source_spec(bundle))
    elif isinstance(recorded, dict) and recorded.get("kind") == choice["kind"]:
        spec = {k: v for k, v in recorded.items() if k not in ("name", "path", "files")} | choice
    else:
        spec = dict(choice)
    return spec | {k: v for k, v in overrides.items() if v is not None}


def evaluation_report(bundle, choice: dict[str, str] | None, overrides: dict[str, Any],
                      ckpt: Optional[Path]) -> dict[str, Any]:
    """``{"int8", "fp32", "pixels", "directions", "per_direction", "source"}`` (see ``neumat eval``).

    ``int8``/``fp32`` hold :data:`neumat.metrics.HEADLINE_KEYS` (relative L1, PSNR, L1, MSE,
    valid pixels) over the valid held-out pixels; ``fp32`` is None without ``ckpt``;
    ``per_direction`` lists the INT8 figures per direction pair. ``choice``/``overrides``: see
    :func:`evaluation_spec`.
    """
    from ..material.triple_plane import bundle_relief
    from ..metrics import evaluate_heldout, headline_metrics
    from ..train import sources

    spec = evaluation_spec(bundle, choice, overrides)
    images = sources.make_source(spec).heldout_images()
    int8 = evaluate_heldout(bundle, images)
    report: dict[str, Any] = {
        "int8": headline_metrics(int8), "fp32": None, "pixels": int8["pixels"],
        "directions": len(images), "per_direction": int8["per_direction"], "source": spec,
    }
    if ckpt is not None:
        from ..train.checkpoint import resolve_checkpoint
        from ..train.evaluate import checkpoint_fp32

        report["fp32"] = checkpoint_fp32(resolve_checkpoint(ckpt), images, bundle_relief(bundle))
    return report
