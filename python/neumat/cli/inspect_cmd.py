"""``neumat inspect FILE.nmat``: manifest, tensors, sizes and checksum status of a bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table


def inspect(
    path: Annotated[Path, typer.Argument(help="A .nmat bundle file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of tables.")] = False,
) -> None:
    """Describe a .nmat bundle: manifest, tensors, sizes, checksum, validity.

    The checksum line says what the stored checksum covers: the manifest and the tensors
    (format version 2), or the tensors only (version 1: re-export to cover the manifest).
    Broken files are described as far as they can be read; the exit code is 1 when the
    bundle does not load.
    """
    from ..bundle import inspect_bundle

    report = inspect_bundle(path)
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        raise typer.Exit(0 if report["valid"] else 1)
    console = Console(highlight=False)
    manifest = report["manifest"] or {}
    size = report["file_size"]
    console.print(f"[bold]{escape(report['path'])}[/]  {size if size is not None else '?'} bytes")
    for key in ("format", "version", "kind", "colour_space", "angle_param", "height"):
        if key in manifest:  # the file's own text: printed, never read as markup
            console.print(f"  {key}: {escape(str(manifest[key]))}")
    table = Table(title="tensors")
    for col in ("name", "dtype", "shape", "bytes"):
        table.add_column(col)
    for t in report["tensors"]:
        shape = "x".join(map(str, t["shape"])) if isinstance(t["shape"], list) else str(t["shape"])
        table.add_row(*(escape(str(v)) for v in (t["name"], t["dtype"], shape, t["bytes"])))
    console.print(table)
    cs = report["checksum"]
    colour = {"OK": "green", "MISMATCH": "red"}.get(cs["status"], "yellow")
    scope = f"{cs['scope']}; " if cs["scope"] else ""
    console.print(f"checksum: [{colour}]{cs['status']}[/] ({scope}stored {escape(str(cs['stored']))})")
    if report["valid"]:
        console.print("[green]loads and validates[/]")
    else:
        console.print(f"[red]does not load:[/] {escape(str(report['error']))}")
        raise typer.Exit(1)
