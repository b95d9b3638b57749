"""``neumat eval X.nmat [--ckpt CKPT] [--json]``: held-out error of a material, as rendered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table


def evaluate(
    bundle_path: Annotated[Path, typer.Argument(metavar="BUNDLE", help="A triple-plane .nmat bundle.")],
    ckpt: Annotated[Optional[Path], typer.Option(
        help="Training checkpoint or run directory: also report the FP32 model (needs torch).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    material: Annotated[Optional[str], typer.Option(help="Evaluate against this registry material instead.")] = None,
    maps: Annotated[Optional[Path], typer.Option(help="... against a synthetic BTF of this PBR map folder.")] = None,
    btf: Annotated[Optional[Path], typer.Option(help="... against this UBO2014 BTF file.")] = None,
    resolution: Annotated[Optional[int], typer.Option(help="Synthetic material resolution (with --material/--maps).")] = None,
) -> None:
    """Render the held-out directions through the INT8 reference and report L1 and PSNR.

    The data source is rebuilt from the bundle's provenance unless --material/--maps/--btf
    say otherwise. Figures are in BTF value units, PSNR with peak 1; the INT8 figures need
    no torch (numpy reference), the FP32 ones (--ckpt) do.
    """
    from ..bundle import BundleError, load_bundle
    from ..data import DataError
    from ..eval import EvalError
    from ..train.sources import SourceError
    from .train_cmd import source_choice

    choice = source_choice(material, maps, btf)
    errors: tuple[type[Exception], ...] = (BundleError, EvalError, SourceError, DataError)
    if ckpt is not None:  # the FP32 figures need torch; the INT8 ones do not
        from ..train.checkpoint import CheckpointError

        errors += (CheckpointError,)
    console = Console()
    try:
        bundle = load_bundle(bundle_path)
        report = evaluation_report(bundle, choice, resolution, ckpt)
    except errors as e:
        console.print(f"[red]eval failed:[/] {e}")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    table = Table(title=f"{bundle_path}: {report['directions']} held-out directions, {report['pixels']} pixels")
    for col in ("model", "L1", "relative L1", "PSNR [dB]"):
        table.add_column(col)
    rows = [("INT8 (as rendered)", report["int8"])]
    if report["fp32"]:
        rows.append((f"FP32 (checkpoint step {report['fp32']['step']})", report["fp32"]))
    for label, m in rows:
        table.add_row(label, f"{m['l1']:.5f}", f"{m['rel_l1']:.2%}", f"{m['psnr']:.2f}")
    console.print(table)


def evaluation_report(bundle, choice: dict[str, str] | None, resolution: Optional[int],
                      ckpt: Optional[Path]) -> dict[str, Any]:
    """``{"int8", "fp32", "pixels", "directions", "per_direction", "source"}`` (see ``neumat eval``).

    ``int8``/``fp32`` hold ``l1``, ``rel_l1``, ``mse``, ``psnr``, ``valid`` over the valid
    held-out pixels; ``fp32`` is None without ``ckpt``; ``per_direction`` lists the INT8
    figures per direction pair.
    """
    from ..eval import evaluate_heldout, require_source_spec
    from ..train import sources

    spec = dict(choice) if choice else dict(require_source_spec(bundle))
    if resolution is not None:
        spec["resolution"] = resolution
    images = sources.make_source(spec).heldout_images()
    int8 = evaluate_heldout(bundle, images)
    report: dict[str, Any] = {
        "int8": {k: int8[k] for k in ("l1", "rel_l1", "mse", "psnr", "valid")}, "fp32": None, "pixels": int8["pixels"],
        "directions": len(images), "per_direction": int8["per_direction"], "source": spec,
    }
    if ckpt is not None:
        from ..train.checkpoint import resolve_checkpoint
        from ..train.evaluate import checkpoint_fp32

        report["fp32"] = checkpoint_fp32(resolve_checkpoint(ckpt), images)
    return report
